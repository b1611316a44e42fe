package inspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/segment"
)

// TestVerify runs testdata/script/verify.txtar.
func TestVerify(t *testing.T) { runScript(t, "verify") }

// TestVerifyFindings damages a directory in each way verify knows and
// checks exactly what it reports: severity, file, offset and message. The
// directory is 60 keys of 100-byte values unless the case says otherwise:
// records of 144 bytes, 27 to a 4 KiB segment (which keeps room for the
// 44-byte seal), so segments 1 and 2 are sealed (3964 bytes: the last
// record at 3776, the seal at 3920, naming segments 2 and 3; with hints)
// and segment 3 is the last (6 records, 896 bytes). Seqs 1 to 27 are
// segment 1's records, 28 its seal. Cases about compaction start from a copy
// of fixtureCompacted instead (see makeCompactedFixture): log segments 3
// (sealed, naming 6) and 6 (the last, 17 records, 2480 bytes), and between
// them segments 4 (16 records, 2336 bytes) and 5 (27 records, 3920 bytes),
// which compaction wrote, with their hints. Cases about sidecar files fill
// 10 keys, the last 4 (key-0006 to key-0009) in sidecar files of 100 bytes:
// one segment of 6 records of 144 bytes, then 4 put-sidecar records of 77
// (key-0006's at 896). Sidecar file names are random, so a finding's file
// is a pattern (path.Match).
func TestVerifyFindings(t *testing.T) {
	seg := func(id uint64) string { return segment.FileName(id) }
	hint := func(id uint64) string { return segment.HintFileName(id) }
	type want struct {
		sev, file string
		off       int64
		msg       string // a substring of the message
	}
	tests := []struct {
		name   string
		fill   fillOptions // zero: the default directory
		base   string      // a fixture to start from instead of a fill
		damage func(t *testing.T, dir string)
		code   int
		want   []want
	}{
		{
			name: "clean",
			code: exitOK,
		},
		{
			name:   "flipped byte in a sealed segment",
			damage: flip(seg(1), 500),
			code:   exitFailed,
			want:   []want{{sevProblem, seg(1), 464, "record checksum mismatch; 144 bytes skipped to the next record, at 608"}},
		},
		{
			name:   "flipped byte in the last segment, records after it",
			damage: flip(seg(3), 100),
			code:   exitFailed,
			want:   []want{{sevProblem, seg(3), 32, "record checksum mismatch; 144 bytes skipped to the next record, at 176"}},
		},
		{
			name:   "damage in the last record of a sealed segment",
			damage: flip(seg(1), 3900),
			code:   exitFailed,
			// The hint entry for 3776 points into the damage: not reported twice.
			want: []want{{sevProblem, seg(1), 3776, "record checksum mismatch; 144 bytes skipped to the next record, at 3920"}},
		},
		{
			name:   "damaged seal",
			damage: flip(seg(1), 3950),
			code:   exitFailed,
			want:   []want{{sevProblem, seg(1), 3920, "record checksum mismatch; no record follows in the 44 bytes its hint seals"}},
		},
		{
			name: "damaged seal of a segment without a hint",
			damage: func(t *testing.T, dir string) {
				remove(hint(1))(t, dir)
				flip(seg(1), 3950)(t, dir)
			},
			code: exitFailed,
			want: []want{{sevProblem, seg(1), 3920, "record checksum mismatch; no record follows in the last 44 bytes"}},
		},
		{
			name:   "torn tail of the last segment",
			damage: tear(seg(3), 20),
			code:   exitOK,
			want:   []want{{sevWarning, seg(3), 896, "torn tail of the last segment, 20 bytes"}},
		},
		{
			// What a writer that died mid-append leaves once the next one
			// sealed the segment where the log ended.
			name: "bytes after the seal of a segment without a hint",
			damage: func(t *testing.T, dir string) {
				remove(hint(1))(t, dir)
				tear(seg(1), 20)(t, dir)
			},
			code: exitOK,
			want: []want{{sevWarning, seg(1), 3964, "20 bytes after the seal are not records: what a writer that died mid-append left (never read)"}},
		},
		{
			name:   "bytes after the seal of a segment with a hint",
			damage: tear(seg(1), 20),
			code:   exitOK,
			want:   []want{{sevWarning, seg(1), 3964, "20 bytes past the length its hint seals are not records"}},
		},
		{
			// A segment that a kennel before seals rolled, or whose seal
			// could not be written.
			name: "torn tail of an earlier segment without a seal or hint",
			damage: func(t *testing.T, dir string) {
				remove(hint(1))(t, dir)
				truncate(seg(1), 3920)(t, dir)
				tear(seg(1), 20)(t, dir)
			},
			code: exitOK,
			want: []want{{sevWarning, seg(1), 3920, "the segment ends with a torn tail of 20 bytes"}},
		},
		{
			name:   "orphan segment",
			damage: makeOrphan,
			code:   exitOK,
			want: []want{{sevWarning, seg(4), -1, "orphan segment: the seal of segment 3 says the log continues in segment 5, " +
				"so a writer created this one and died before publishing it; its records are never read, " +
				"and the next read-write open of the directory while no other process has it open deletes it"}},
		},
		{
			// The seal is found through the segment's hint too.
			name:   "orphan after a segment with a hint",
			damage: writeAt(seg(1), 3920, sealBytes(28, 3)),
			code:   exitOK,
			want:   []want{{sevWarning, seg(2), -1, "orphan segment: the seal of segment 1 says the log continues in segment 3"}},
		},
		{
			name:   "seal naming its own segment",
			damage: writeAt(seg(1), 3920, sealBytes(28, 1)),
			code:   exitFailed,
			want:   []want{{sevProblem, seg(1), 3920, "the seal says the log continues in segment 1, which is not after this one"}},
		},
		{
			name:   "seal naming an earlier segment",
			damage: writeAt(seg(2), 3920, sealBytes(56, 1)),
			code:   exitFailed,
			want:   []want{{sevProblem, seg(2), 3920, "the seal says the log continues in segment 1, which is not after this one"}},
		},
		{
			name:   "hint entry with another seq",
			damage: editHint(1, func(es []segment.HintEntry) []segment.HintEntry { es[2].Seq++; return es }),
			code:   exitFailed,
			want:   []want{{sevProblem, hint(1), 320, "entry 2 does not match the record at offset 320 of 0000000000000001.seg: seq 4, record 3"}},
		},
		{
			name: "hint entry with another kind, key and expiry",
			damage: editHint(1, func(es []segment.HintEntry) []segment.HintEntry {
				es[1].Kind, es[1].Key, es[1].Expiry = segment.KindDelete, []byte("key-9999"), 7
				return es
			}),
			code: exitFailed,
			want: []want{{sevProblem, hint(1), 176, `kind delete, record put; key "key-9999", record "key-0001"; expiry 7, record 0`}},
		},
		{
			name:   "record missing from the hint",
			damage: editHint(1, func(es []segment.HintEntry) []segment.HintEntry { return append(es[:3], es[4:]...) }),
			code:   exitFailed,
			want:   []want{{sevProblem, hint(1), 464, `the record at offset 464 of 0000000000000001.seg (key "key-0003", seq 4) is not in the hint`}},
		},
		{
			// One byte later and one shorter, so that the next entry
			// still starts where this one ends: a hint stores where each
			// record starts as the gap after the one before.
			name:   "hint entry naming no record",
			damage: editHint(1, func(es []segment.HintEntry) []segment.HintEntry { es[5].Offset++; es[5].Size--; return es }),
			code:   exitFailed,
			want: []want{
				{sevProblem, hint(1), 753, `entry 5 (key "key-0005") names offset 753 of 0000000000000001.seg, where no record starts`},
				{sevProblem, hint(1), 752, "is not in the hint"},
			},
		},
		{
			name:   "damaged hint",
			damage: flip(hint(1), 100),
			code:   exitFailed,
			want:   []want{{sevProblem, hint(1), 0, "hint checksum mismatch; the engine scans the segment instead"}},
		},
		{
			name: "hint of another segment",
			damage: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, hint(2)), filepath.Join(dir, hint(1)))
			},
			code: exitFailed,
			want: []want{{sevProblem, hint(1), 0, "the hint is of segment 2"}},
		},
		{
			name:   "hint sealing more than the file holds",
			damage: rehint(1, 3964, 5000),
			code:   exitFailed,
			want:   []want{{sevProblem, hint(1), 0, "the hint seals its segment at 5000 bytes, but the file has 3964"}},
		},
		{
			name:   "hint sealing less than the file holds",
			damage: rehint(1, 3776, 3776),
			code:   exitOK,
			want:   []want{{sevWarning, seg(1), 3776, "188 bytes past the length its hint seals are not records"}},
		},
		{
			name:   "segment header of another segment",
			damage: writeAt(seg(2), 0, segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, ID: 7})),
			code:   exitFailed,
			want:   []want{{sevProblem, seg(2), 0, "the header says segment 7; the engine skips this segment"}},
		},
		{
			name:   "segment header of another version",
			damage: writeAt(seg(2), 0, segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion + 1, ID: 2})),
			code:   exitFailed,
			want:   []want{{sevProblem, seg(2), 0, "header: kennel: unsupported format version: segment format version 2"}},
		},
		{
			name:   "damaged segment header",
			damage: flip(seg(2), 3),
			code:   exitFailed,
			want:   []want{{sevProblem, seg(2), 0, "header: kennel: not a kennel file: bad segment magic"}},
		},
		{
			name:   "last segment shorter than a header",
			damage: writeAt(seg(4), 0, []byte("kennel")),
			code:   exitOK,
			want:   []want{{sevWarning, seg(4), 0, "6 bytes, shorter than a header: a write in flight, or a crash interrupted its creation"}},
		},
		{
			name:   "earlier segment shorter than a header",
			damage: writeAt(seg(0), 0, []byte("kennel")),
			code:   exitFailed,
			want:   []want{{sevProblem, seg(0), 0, "6 bytes, shorter than a header"}},
		},
		{
			name:   "state file never written",
			damage: writeFile(stateFile, make([]byte, sharedstate.Size)),
			code:   exitOK,
		},
		{
			name:   "no state file",
			damage: remove(stateFile),
			code:   exitOK,
		},
		{
			name:   "damaged state file",
			damage: flip(stateFile, 0),
			code:   exitOK,
			want:   []want{{sevWarning, stateFile, 0, `bad magic "\x94ennelSF"; the next process to open the directory read-write rewrites it`}},
		},
		{
			name: "damaged state file while the directory is open",
			damage: func(t *testing.T, dir string) {
				openWriter(t, dir)
				flip(stateFile, 0)(t, dir)
			},
			code: exitFailed,
			want: []want{{sevProblem, stateFile, 0, "bad magic \"\\x94ennelSF\"; while processes have the directory open, no other can open it read-write, and read-only ones do not follow its writes"}},
		},
		{
			name:   "short state file",
			damage: writeFile(stateFile, []byte("kennelSF")),
			code:   exitOK,
			want:   []want{{sevWarning, stateFile, 0, "shared state file corrupt: 8 bytes, want 4096; the next process"}},
		},
		{
			name:   "state file of another version",
			damage: writeAt(stateFile, 8, []byte{2}),
			code:   exitOK,
			want:   []want{{sevWarning, stateFile, 0, "shared state file has another version: version 2, this kennel reads 1"}},
		},
		{
			name: "state file that is not a file",
			damage: func(t *testing.T, dir string) {
				remove(stateFile)(t, dir)
				if err := os.Mkdir(filepath.Join(dir, stateFile), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			code: exitFailed,
			want: []want{{sevProblem, stateFile, -1, "is not a regular file: the engine cannot open the directory read-write"}},
		},
		{
			name:   "published position past the end of its segment",
			damage: editState(func(s *sharedstate.File) { s.Publish(sharedstate.MakePosition(3, 5000)) }),
			code:   exitOK,
			want:   []want{{sevWarning, stateFile, -1, "the published position 3:5000 is past the end of 0000000000000003.seg, which has 896 bytes"}},
		},
		{
			name:   "published position in a segment that does not exist",
			damage: editState(func(s *sharedstate.File) { s.Publish(sharedstate.MakePosition(9, 100)) }),
			code:   exitOK,
			want:   []want{{sevWarning, stateFile, -1, "the published position 9:100 names segment 9, which does not exist"}},
		},
		{
			name:   "writer died mid-append",
			damage: editState(func(s *sharedstate.File) { s.SetWriting(true) }),
			code:   exitOK,
			want: []want{{sevWarning, stateFile, -1, "a writer died mid-append (the writing flag is set and no process holds the append lock) " +
				"past offset 896 of segment 3: the next process to open the directory read-write recovers it"}},
		},
		{
			name: "writer died mid-append while the directory is open",
			damage: func(t *testing.T, dir string) {
				openWriter(t, dir)
				editState(func(s *sharedstate.File) { s.SetWriting(true) })(t, dir)
			},
			code: exitOK,
			want: []want{{sevWarning, stateFile, -1, "the next append seals segment 3 at offset 896, and what it wrote past there is never read"}},
		},
		{
			name:   "failed sync",
			damage: editState(func(s *sharedstate.File) { s.SetFailedSync(2) }),
			code:   exitOK,
			want:   []want{{sevWarning, stateFile, -1, "an fdatasync of segment 2 failed"}},
		},
		{
			name: "segments compaction wrote, between a seal and the segment it names",
			base: fixtureCompacted,
			code: exitOK,
		},
		{
			name:   "flipped byte in a segment compaction wrote",
			base:   fixtureCompacted,
			damage: flip(seg(4), 100),
			code:   exitFailed,
			// The hint entry for 32 points into the damage: not reported twice.
			want: []want{{sevProblem, seg(4), 32, "record checksum mismatch; 144 bytes skipped to the next record, at 176"}},
		},
		{
			name:   "hint entry of a segment compaction wrote, with another seq",
			base:   fixtureCompacted,
			damage: editHint(4, func(es []segment.HintEntry) []segment.HintEntry { es[0].Seq++; return es }),
			code:   exitFailed,
			want:   []want{{sevProblem, hint(4), 32, "entry 0 does not match the record at offset 32 of 0000000000000004.seg: seq 13, record 12"}},
		},
		{
			// A compaction writes the hint once it has finished the
			// segment: until then it may be appending to it.
			name:   "segment compaction wrote, without its hint",
			base:   fixtureCompacted,
			damage: remove(hint(5)),
			code:   exitOK,
		},
		{
			name: "torn tail of a segment compaction has not finished",
			base: fixtureCompacted,
			damage: func(t *testing.T, dir string) {
				remove(hint(5))(t, dir)
				tear(seg(5), 20)(t, dir)
			},
			code: exitOK,
			want: []want{{sevWarning, seg(5), 3920, "torn tail of a segment compaction has not finished, 20 bytes: a copy in flight or cut when the compaction was interrupted"}},
		},
		{
			name:   "bytes past the length the hint of a segment compaction wrote seals",
			base:   fixtureCompacted,
			damage: tear(seg(5), 20),
			code:   exitOK,
			want:   []want{{sevWarning, seg(5), 3920, "20 bytes past the length its hint seals are not records"}},
		},
		{
			// Its seal must not make an orphan of segment 6.
			name: "seal in a segment compaction wrote",
			base: fixtureCompacted,
			damage: func(t *testing.T, dir string) {
				remove(hint(5))(t, dir)
				writeAt(seg(5), 3920, sealBytes(100, 9))(t, dir)
			},
			code: exitFailed,
			want: []want{{sevProblem, seg(5), 3920, "a seal record in a segment compaction wrote, which never holds one: readers take it for the end of the segment"}},
		},
		{
			// The newest segment is compaction's: the log's last is still
			// the one a torn tail is expected in.
			name: "torn tail of the log's last segment, a compaction's newer",
			base: fixtureCompacted,
			damage: func(t *testing.T, dir string) {
				b := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, Flags: segment.HeaderCompacted, ID: 7})
				b = segment.AppendRecord(b, &segment.Record{Kind: segment.KindPut, Seq: 80, Key: []byte("key-0068"), Value: []byte("v")})
				writeAt(seg(7), 0, b)(t, dir)
				tear(seg(6), 20)(t, dir)
			},
			code: exitOK,
			want: []want{{sevWarning, seg(6), 2480, "torn tail of the last segment, 20 bytes"}},
		},
		{
			name:   "new segment shorter than a header, after a compaction's",
			base:   fixtureCompacted,
			damage: writeAt(seg(7), 0, []byte("kennel")),
			code:   exitOK,
			want:   []want{{sevWarning, seg(7), 0, "6 bytes, shorter than a header: a write in flight"}},
		},
		{
			name:   "compaction interrupted",
			base:   fixtureCompacted,
			damage: editState(func(s *sharedstate.File) { s.SetCompacting(true) }),
			code:   exitOK,
			want: []want{{sevWarning, stateFile, -1, "the last compaction was interrupted (the compacting flag is set and no process holds the compaction lock: " +
				"its process died, or the run failed or was closed mid-run): the next process to open the directory read-write recovers it"}},
		},
		{
			name: "compaction interrupted while the directory is open",
			base: fixtureCompacted,
			damage: func(t *testing.T, dir string) {
				openWriter(t, dir)
				editState(func(s *sharedstate.File) { s.SetCompacting(true) })(t, dir)
			},
			code: exitOK,
			want: []want{{sevWarning, stateFile, -1, "the next compaction reloads the directory before it rewrites anything"}},
		},
		{
			name: "sidecar files of live values",
			fill: withSidecars,
			code: exitOK,
		},
		{
			name:   "truncated sidecar file",
			fill:   withSidecars,
			damage: onSidecar("key-0006", func(path string) error { return os.Truncate(path, 60) }),
			code:   exitFailed,
			want:   []want{{sevProblem, "sidecars/*", -1, `60 bytes, but the live record of key "key-0006" says 100: reads of the key fail`}},
		},
		{
			name:   "flipped byte in a sidecar file",
			fill:   withSidecars,
			damage: onSidecar("key-0007", func(path string) error { return flipByte(path, 50) }),
			code:   exitFailed,
			want:   []want{{sevProblem, "sidecars/*", -1, `checksum mismatch: xxhash64 `}},
		},
		{
			name:   "missing sidecar file",
			fill:   withSidecars,
			damage: onSidecar("key-0006", os.Remove),
			code:   exitFailed,
			want: []want{{sevProblem, "sidecars/*", -1,
				`missing, though the live record of key "key-0006" (offset 896 of 0000000000000001.seg) names it: reads of the key fail`}},
		},
		{
			// The engine opens sidecar files with O_NOFOLLOW: a symlink is
			// refused even to a file of the right bytes.
			name: "sidecar file replaced by a symlink",
			fill: withSidecars,
			damage: onSidecar("key-0008", func(path string) error {
				if err := os.Rename(path, path+".real"); err != nil {
					return err
				}
				return os.Symlink(filepath.Base(path)+".real", path)
			}),
			code: exitFailed,
			want: []want{
				{sevProblem, "sidecars/*", -1, `a symlink, not a regular file (named by the live record of key "key-0008"): the engine does not follow it: reads of the key fail`},
				{sevWarning, "sidecars/*.real", -1, "not a kennel file (compaction's sweep leaves it alone)"},
			},
		},
		{
			name:   "put-sidecar record whose descriptor does not decode",
			fill:   withSidecars,
			damage: editSidecarRecord("key-0009", func(desc []byte) { desc[0] = 0x80 }),
			code:   exitFailed,
			want: []want{
				{sevProblem, seg(1), 1127, `the put-sidecar record of key "key-0009" holds no valid sidecar descriptor: kennel: corrupt data: sidecar descriptor flags 0x80: reads of the key fail`},
				// Its file is no longer known to be the key's.
				{sevWarning, "sidecars/*", -1, "named by no live record, 100 bytes"},
			},
		},
		{
			name:   "sidecar file no live record names",
			fill:   withSidecars,
			damage: onSidecar("key-0006", func(path string) error { return copySidecar(path, time.Unix(0, 0)) }),
			code:   exitOK,
			want: []want{{sevWarning, "sidecars/*", -1, "named by no live record, 100 bytes: an old value " +
				"(written over, deleted, expired or evicted), or a write in flight; its path was never handed out, " +
				"so compaction's next sweep deletes it"}},
		},
		{
			name:   "sidecar file no live record names, its path handed out",
			fill:   withSidecars,
			damage: onSidecar("key-0006", func(path string) error { return copySidecar(path, time.Now().Add(time.Hour)) }),
			code:   exitOK,
			want:   []want{{sevWarning, "sidecars/*", -1, "; its path was handed out, and it stays another 1h0m0s (its grace period)"}},
		},
		{
			name:   "sidecar file no live record names, its grace over",
			fill:   withSidecars,
			damage: onSidecar("key-0006", func(path string) error { return copySidecar(path, time.Now().Add(-time.Hour)) }),
			code:   exitOK,
			want:   []want{{sevWarning, "sidecars/*", -1, "; its path was handed out and its grace period is over, so compaction's next sweep deletes it"}},
		},
		{
			name:   "temporary file in the sidecar folder",
			fill:   withSidecars,
			damage: writeFile("sidecars/value.tmp-123", []byte("half a value")),
			code:   exitOK,
			want:   []want{{sevWarning, "sidecars/value.tmp-123", -1, "temporary file: a sidecar write in flight, or left by a crash"}},
		},
		{
			name:   "foreign file in the sidecar folder",
			fill:   withSidecars,
			damage: writeFile("sidecars/notes.txt", []byte("mine")),
			code:   exitOK,
			want:   []want{{sevWarning, "sidecars/notes.txt", -1, "not a kennel file (compaction's sweep leaves it alone)"}},
		},
		{
			name: "sidecar folder replaced by a symlink",
			fill: withSidecars,
			damage: func(t *testing.T, dir string) {
				path := filepath.Join(dir, segment.SidecarDir)
				if err := os.Rename(path, path+".real"); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(segment.SidecarDir+".real", path); err != nil {
					t.Fatal(err)
				}
			},
			code: exitFailed,
			want: []want{
				{sevWarning, "sidecars.real", -1, "a directory kennel does not use"},
				{sevProblem, "sidecars", -1, "a symlink, not a folder: the engine refuses to open the directory read-write, and reads no sidecar value"},
			},
		},
		{
			name:   "no sidecar folder",
			fill:   fillOptions{n: 3, sidecars: 1},
			damage: removeAll(segment.SidecarDir),
			code:   exitFailed,
			want:   []want{{sevProblem, "sidecars/*", -1, `missing, though the live record of key "key-0002" (offset 320 of 0000000000000001.seg) names it`}},
		},
		{
			// The engine keeps an expired value's file until compaction
			// drops its record, but no reader gets the value any more.
			name:   "missing sidecar file of an expired value",
			fill:   fillOptions{n: 3, expired: 3, sidecars: 3},
			damage: onSidecar("key-0001", os.Remove),
			code:   exitOK,
			want:   []want{{sevWarning, "sidecars/*", -1, `missing, though the live record of key "key-0001" (offset 109 of 0000000000000001.seg) names it; the value has expired, so nothing is lost`}},
		},
		{
			name: "more findings in a file than are listed",
			fill: fillOptions{n: 100, valueSize: 10}, // records of 54 bytes, 74 to a segment
			damage: func(t *testing.T, dir string) {
				for i := range 30 {
					flip(seg(1), int64(segment.HeaderSize+2*i*54+50))(t, dir)
				}
			},
			code: exitFailed,
			want: append(repeat(want{sevProblem, seg(1), -2, "record checksum mismatch; 54 bytes skipped"}, maxFindingsPerFile),
				want{sevNote, seg(1), -1, "10 more findings in this file not listed (counted in the totals)"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dir string
			switch o := tt.fill; {
			case tt.base != "":
				dir = filepath.Join(t.TempDir(), "c")
				if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "fixtures", tt.base))); err != nil {
					t.Fatal(err)
				}
			case o.n == 0:
				dir = testDir(t, fillOptions{n: 60})
			default:
				dir = testDir(t, o)
			}
			if tt.damage != nil {
				tt.damage(t, dir)
			}
			var r verifyReport
			var res result
			requireNoChange(t, dir, func() { res = run("verify", "--json", dir) })
			if err := json.Unmarshal([]byte(res.stdout), &r); err != nil {
				t.Fatalf("%v\n%s%s", err, res.stdout, res.stderr)
			}
			if res.code != tt.code {
				t.Errorf("exit status %d, want %d", res.code, tt.code)
			}
			if len(r.Findings) != len(tt.want) {
				t.Fatalf("%d findings, want %d:\n%s", len(r.Findings), len(tt.want), res.stdout)
			}
			problems := 0
			for i, w := range tt.want {
				f := r.Findings[i]
				if match, _ := path.Match(w.file, f.File); f.Severity != w.sev || !match || (w.off != -2 && f.Offset != w.off) || !strings.Contains(f.Message, w.msg) {
					t.Errorf("finding %d: %+v\nwant %+v", i, f, w)
				}
				if w.sev == sevProblem {
					problems++
				}
			}
			if tt.name != "more findings in a file than are listed" && r.Problems != problems {
				t.Errorf("%d problems counted, %d listed", r.Problems, problems)
			}
			if tt.name == "more findings in a file than are listed" && r.Problems != 30 {
				t.Errorf("%d problems counted, want 30", r.Problems)
			}
		})
	}
}

// withSidecars is the directory of the sidecar cases of TestVerifyFindings.
var withSidecars = fillOptions{n: 10, sidecars: 4}

// onSidecar applies damage to the sidecar file that holds key's value.
func onSidecar(key string, damage func(path string) error) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := damage(sidecarPath(t, dir, key)); err != nil {
			t.Fatal(err)
		}
	}
}

// sidecarPath returns the path of the sidecar file that holds key's value.
func sidecarPath(t testing.TB, dir, key string) string {
	t.Helper()
	c, err := engine.Open(dir, engine.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, err := c.Stat([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := sidecarOf(c, dir, k)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, sidecarFile(d.Name))
}

// editSidecarRecord rewrites key's put-sidecar record in place, with a
// valid checksum, after edit changed its descriptor.
func editSidecarRecord(key string, edit func(desc []byte)) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		c, err := engine.Open(dir, engine.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		k, err := c.Stat([]byte(key))
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		r, err := readRecord(dir, k)
		if err != nil {
			t.Fatal(err)
		}
		edit(r.Value)
		writeAt(segment.FileName(k.Segment), k.Offset, segment.AppendRecord(nil, &r))(t, dir)
	}
}

// copySidecar copies the sidecar file at path under a new name, with
// keptUntil for its mtime: until when a hand-out of its path keeps it (the
// Unix epoch: never handed out).
func copySidecar(path string, keptUntil time.Time) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cp := filepath.Join(filepath.Dir(path), segment.NewSidecarName().String())
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		return err
	}
	return os.Chtimes(cp, keptUntil, keptUntil)
}

// removeAll removes dir/name and everything in it.
func removeAll(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func repeat[T any](v T, n int) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func flip(name string, off int64) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := flipByte(filepath.Join(dir, name), off); err != nil {
			t.Fatal(err)
		}
	}
}

func tear(name string, n int) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := tearTail(filepath.Join(dir, name), n); err != nil {
			t.Fatal(err)
		}
	}
}

func remove(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// openWriter opens the cache in dir read-write until the test ends, with
// compaction off, so that the directory stays as the test made it.
func openWriter(t *testing.T, dir string) {
	t.Helper()
	c, err := engine.Open(dir, engine.Options{ManualCompaction: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

// writeFile replaces dir/name with a file holding b.
func writeFile(name string, b []byte) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// truncate cuts dir/name to size bytes.
func truncate(name string, size int64) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Truncate(filepath.Join(dir, name), size); err != nil {
			t.Fatal(err)
		}
	}
}

// writeAt writes b at off in dir/name, creating the file if need be.
func writeAt(name string, off int64, b []byte) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

// makeOrphan leaves in the default directory what a writer that died
// before publishing a segment leaves: it took id 4, created segment 4 and
// appended to it; the next writer found the log ending in segment 3, sealed
// it there naming the next id it took, 5, and went on in segment 5.
func makeOrphan(t *testing.T, dir string) {
	t.Helper()
	writeAt(segment.FileName(3), 896, sealBytes(64, 5))(t, dir)
	b := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, ID: 4})
	b = segment.AppendRecord(b, &segment.Record{Kind: segment.KindPut, Seq: 63, Key: []byte("key-0060"), Value: []byte("v")})
	writeAt(segment.FileName(4), 0, b)(t, dir)
	writeAt(segment.FileName(5), 0, segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, ID: 5}))(t, dir)
	editState(func(s *sharedstate.File) { s.Publish(sharedstate.MakePosition(5, segment.HeaderSize)) })(t, dir)
}

// TestVerifyOrphanDeletedOnOpen checks what verify says of an orphan
// segment against the engine: its records are not read, and a read-write
// open of the directory, the only one, deletes it.
func TestVerifyOrphanDeletedOnOpen(t *testing.T) {
	dir := testDir(t, fillOptions{n: 60})
	makeOrphan(t, dir)
	if r := mustRun(t, exitOK, "verify", dir); !strings.Contains(r.stdout, "orphan segment") {
		t.Fatalf("verify does not report the orphan:\n%s", r.stdout)
	}
	c, err := engine.Open(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get([]byte("key-0060")); err == nil {
		t.Error("the orphan's record is read")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, segment.FileName(4))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the orphan after a read-write open: %v; want it deleted", err)
	}
	if r := mustRun(t, exitOK, "verify", dir); strings.Contains(r.stdout, "orphan") || !strings.Contains(r.stdout, "no problems found") {
		t.Errorf("verify after the open:\n%s", r.stdout)
	}
}

// sealBytes encodes a seal record of sequence number seq naming segment next.
func sealBytes(seq, next uint64) []byte {
	r := segment.SealRecord(seq, next)
	return segment.AppendRecord(nil, &r)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// editHint rewrites segment id's hint file, well formed, with the entries
// edit returns.
func editHint(id uint64, edit func([]segment.HintEntry) []segment.HintEntry) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		path := filepath.Join(dir, segment.HintFileName(id))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var entries []segment.HintEntry
		hh, err := segment.DecodeHint(b, func(e segment.HintEntry) error {
			e.Key = bytes.Clone(e.Key)
			entries = append(entries, e)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		hb := segment.NewHintBuilder(id)
		for _, e := range edit(entries) {
			hb.Add(e)
		}
		if err := os.WriteFile(path, hb.Finish(hh.Length), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// rehint rewrites segment id's hint from the records in its first scan
// bytes, sealing the segment at length.
func rehint(id uint64, scan, length int64) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, segment.FileName(id)))
		if err != nil {
			t.Fatal(err)
		}
		hb := segment.NewHintBuilder(id)
		s := segment.NewScanner(data[:scan], segment.HeaderSize)
		for s.Next() {
			r := s.Record()
			hb.Add(segment.HintEntry{Kind: r.Kind, Key: r.Key, Offset: uint32(s.Offset()), Size: uint32(s.Size()), Seq: r.Seq, Expiry: r.Expiry})
		}
		if err := os.WriteFile(filepath.Join(dir, segment.HintFileName(id)), hb.Finish(length), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerifyFixture verifies the committed corrupted fixture where it lies,
// proving on the way that verify writes nothing, not even into testdata.
func TestVerifyFixture(t *testing.T) {
	dir := filepath.Join("testdata", "fixtures", fixtureCorrupt)
	var r result
	requireNoChange(t, dir, func() { r = run("verify", dir) })
	if r.code != exitFailed {
		t.Fatalf("exit status %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"problem   0000000000000001.seg  464     kennel: corrupt data: record checksum mismatch",
		"warning   0000000000000002.seg  1948    torn tail of the last segment, 20 bytes",
		"1 problem, 1 warning",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestVerifyProgress checks the progress bar verify draws when stderr is a
// terminal: none in the first moments, then a bar, erased at the end, and
// the same report on stdout as without a terminal.
func TestVerifyProgress(t *testing.T) {
	dir := testDir(t, fillOptions{n: 3000, valueSize: 50})
	plain := mustRun(t, exitOK, "verify", dir)

	var out, errb bytes.Buffer
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tick := func() time.Time { clock = clock.Add(20 * time.Millisecond); return clock }
	e := &env{stdout: &out, stderr: &errb, terminal: true, now: tick}
	if code := e.run([]string{"verify", dir}); code != exitOK {
		t.Fatalf("exit status %d: %s", code, errb.String())
	}
	if out.String() != plain.stdout {
		t.Errorf("stdout with a terminal:\n%s\nwithout:\n%s", out.String(), plain.stdout)
	}
	bar := errb.String()
	if !strings.HasPrefix(bar, "\rverify ") || !strings.Contains(bar, "% [") || !strings.Contains(bar, "KiB / ") ||
		!strings.HasSuffix(bar, "\r\x1b[K") {
		t.Errorf("progress output %q", bar)
	}

	// A clock that does not move: the work ends before a bar is due.
	errb.Reset()
	e = &env{stdout: io.Discard, stderr: &errb, terminal: true, now: func() time.Time { return clock }}
	if code := e.run([]string{"verify", dir}); code != exitOK || errb.Len() != 0 {
		t.Errorf("exit status %d, progress %q: want no bar", code, errb.String())
	}
}
