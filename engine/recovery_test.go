package engine_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

// tornBase is a closed cache directory whose last segment ends with three
// records that change keys already stored: an overwrite, a delete and a new
// key. before is the cache's state without them; last is their ops.
type tornBase struct {
	dir     string
	lastSeg string      // file name of the last segment
	recs    []segRecord // its records
	before  map[string]string
	last    []lastOp
}

type lastOp struct {
	key, value string
	del        bool
}

func (op lastOp) apply(m map[string]string) {
	if op.del {
		delete(m, op.key)
	} else {
		m[op.key] = op.value
	}
}

func makeTornBase(tb testing.TB) *tornBase {
	tb.Helper()
	b := &tornBase{dir: tb.TempDir(), before: map[string]string{}}
	c := openCache(tb, b.dir, smallOptions())
	for i := range 80 {
		k := fmt.Sprintf("k%03d", i)
		b.before[k] = value(k, i, 30)
		mustSet(tb, c, k, b.before[k])
	}
	b.last = []lastOp{
		{key: "k005", value: value("k005", 1000, 30)}, // overwrite of a key in an earlier segment
		{key: "k079", del: true},                      // delete of a key in this segment
		{key: "new", value: value("new", 0, 40)},      // a new key
	}
	for _, op := range b.last {
		if op.del {
			mustDelete(tb, c, op.key)
		} else {
			mustSet(tb, c, op.key, op.value)
		}
	}
	mustClose(tb, c)
	segs := files(tb, b.dir, ".seg")
	if len(segs) < 2 {
		tb.Fatalf("%d segments: the base should have a sealed one", len(segs))
	}
	b.lastSeg = segs[len(segs)-1]
	b.recs = scanFile(tb, filepath.Join(b.dir, b.lastSeg))
	if len(b.recs) < len(b.last)+1 {
		tb.Fatalf("last segment holds %d records", len(b.recs))
	}
	for i, op := range b.last {
		r := b.recs[len(b.recs)-len(b.last)+i]
		if r.key != op.key || (r.kind == segment.KindDelete) != op.del {
			tb.Fatalf("record %d of the last segment is %s %q, want the op on %q", i, r.kind, r.key, op.key)
		}
	}
	return b
}

// want returns the state the cache must recover when the last segment is
// cut at offset cut: every op whose record ends at or before it.
func (b *tornBase) want(cut int) map[string]string {
	m := maps.Clone(b.before)
	for i, op := range b.last {
		if b.recs[len(b.recs)-len(b.last)+i].end <= cut {
			op.apply(m)
		}
	}
	return m
}

// recoverAndCheck opens a damaged copy, checks it holds want, writes to it,
// and checks the write and want survive a second reopen, with hints and
// without.
func recoverAndCheck(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	c := openCache(t, dir, smallOptions())
	checkModel(t, c, want)
	mustSet(t, c, "after-recovery", "written")
	mustClose(t, c)

	want = maps.Clone(want)
	want["after-recovery"] = "written"
	c = openCache(t, dir, smallOptions())
	checkModel(t, c, want)
	mustClose(t, c)

	removeHints(t, dir)
	c = openCache(t, dir, smallOptions())
	checkModel(t, c, want)
	mustClose(t, c)
}

// TestTornTail cuts the last segment at every byte offset inside its last
// three records. Open keeps every record before the cut, and never returns
// the cut one: its key has its previous value (or none). The cut segment is
// sealed, not truncated; a new write lands in a new segment and survives
// further reopens.
func TestTornTail(t *testing.T) {
	b := makeTornBase(t)
	first := b.recs[len(b.recs)-len(b.last)].off
	end := b.recs[len(b.recs)-1].end
	for cut := first; cut < end; cut++ {
		t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
			t.Parallel()
			dir := copyDir(t, b.dir)
			seg := filepath.Join(dir, b.lastSeg)
			if err := os.Truncate(seg, int64(cut)); err != nil {
				t.Fatal(err)
			}
			c := openCache(t, dir, smallOptions())
			checkModel(t, c, b.want(cut))
			if s := c.Stats(); s.Corruptions != 0 {
				t.Fatalf("a torn tail counted as %d corruptions", s.Corruptions)
			}
			mustClose(t, c)
			if fi, err := os.Stat(seg); err != nil || fi.Size() != int64(cut) {
				t.Fatalf("the torn segment was changed: %v, %v", fi.Size(), err)
			}
			recoverAndCheck(t, dir, b.want(cut))
		})
	}
}

// TestBadTail appends what a crash or a bad disk can leave past the last
// record of the active segment: every record is kept, and the tail is never
// read as one.
func TestBadTail(t *testing.T) {
	b := makeTornBase(t)
	garbage := make([]byte, 1000)
	for i := range garbage {
		garbage[i] = byte(i*151+3) | 1
	}
	lastRec := b.recs[len(b.recs)-1]
	seg, err := os.ReadFile(filepath.Join(b.dir, b.lastSeg))
	if err != nil {
		t.Fatal(err)
	}
	tails := []struct {
		name string
		tail []byte
	}{
		{"zeroed tail", make([]byte, 4096)},
		{"short zeroed tail", make([]byte, 5)},
		{"garbage tail", garbage},
		{"marker then garbage lengths", append([]byte{segment.Marker, byte(segment.KindPut), 0, 0, 0xFF, 0x7F, 0, 0, 0, 0, 1, 0}, garbage[:100]...)},
		{"header of a record, then zeros", append(append([]byte(nil), seg[lastRec.off:lastRec.off+segment.RecordHeaderSize]...), make([]byte, 4096)...)},
		{"half a record, then garbage", append(append([]byte(nil), seg[lastRec.off:lastRec.off+(lastRec.end-lastRec.off)/2]...), garbage...)},
	}
	for _, tt := range tails {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyDir(t, b.dir)
			f, err := os.OpenFile(filepath.Join(dir, b.lastSeg), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(tt.tail); err != nil {
				t.Fatal(err)
			}
			f.Close()
			recoverAndCheck(t, dir, b.want(len(seg)))
		})
	}
}

// corruptBase is a closed cache of unique keys over several segments.
func corruptBase(tb testing.TB) (string, map[string]string) {
	tb.Helper()
	dir := tb.TempDir()
	c := openCache(tb, dir, smallOptions())
	model := map[string]string{}
	for i := range 150 {
		k := fmt.Sprintf("k%03d", i)
		model[k] = value(k, i, 30)
		mustSet(tb, c, k, model[k])
	}
	mustClose(tb, c)
	if segs := files(tb, dir, ".seg"); len(segs) < 3 {
		tb.Fatalf("%d segments, want at least 3", len(segs))
	}
	return dir, model
}

// recordDamage names bytes of a record to damage, relative to its start
// (negative: from its end), and how.
var recordDamage = []struct {
	name string
	at   int
	xor  byte
}{
	{"marker", 0, 0x01},
	{"marker zeroed", 0, segment.Marker},
	{"kind", 1, 0x02},
	{"codec", 2, 0x01},
	{"reserved", 3, 0x80},
	{"key length low", 4, 0x01},
	{"key length high", 7, 0xFF},
	{"value length low", 8, 0x04},
	{"value length mid", 10, 0x01},
	{"value length high", 11, 0xFF},
	{"seq", 12, 0x01},
	{"seq high", 19, 0x80},
	{"expiry", 20, 0x01},
	{"checksum", 28, 0x01},
	{"key", 36, 0x01},
	{"value first", 40, 0x20},
	{"value last", -1, 0x01},
}

func damageRecord(tb testing.TB, path string, r segRecord, at int, xor byte) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	pos := r.off + at
	if at < 0 {
		pos = r.end + at
	}
	b[pos] ^= xor
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// TestCorruptSealedSegment damages one record in the middle of a sealed
// segment, byte by byte. With its hint, Open trusts the index and the read
// finds the damage: Get returns ErrCorrupt (never a value), counted in
// Stats; other keys are served. Without its hint, Open scans the segment,
// reports the damage, skips the record and resynchronises on the next one:
// the damaged key is not found, every other key is served.
func TestCorruptSealedSegment(t *testing.T) {
	base, model := corruptBase(t)
	first := files(t, base, ".seg")[0]
	recs := scanFile(t, filepath.Join(base, first))
	victim := recs[len(recs)/2]
	others := maps.Clone(model)
	delete(others, victim.key)

	for _, d := range recordDamage {
		t.Run("hint/"+d.name, func(t *testing.T) {
			t.Parallel()
			dir := copyDir(t, base)
			damageRecord(t, filepath.Join(dir, first), victim, d.at, d.xor)
			c := openCache(t, dir, smallOptions())
			v, err := c.Get([]byte(victim.key))
			if !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("Get of the damaged record = %.30q, %v; want ErrCorrupt", v, err)
			}
			if s := c.Stats(); s.Corruptions == 0 {
				t.Fatalf("Stats.Corruptions = 0 after reading a damaged record")
			}
			for k, v := range others {
				wantValue(t, c, k, v)
			}
			// A Scan over the damage reports it and yields nothing wrong.
			err = c.Scan(nil, func(k, v []byte) error {
				if model[string(k)] != string(v) {
					t.Fatalf("Scan yielded %q = %.30q", k, v)
				}
				return nil
			})
			if !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("Scan over a damaged record: %v, want ErrCorrupt", err)
			}
			// Writing the key again heals it.
			mustSet(t, c, victim.key, "rewritten")
			wantValue(t, c, victim.key, "rewritten")
		})
		t.Run("scan/"+d.name, func(t *testing.T) {
			t.Parallel()
			dir := copyDir(t, base)
			damageRecord(t, filepath.Join(dir, first), victim, d.at, d.xor)
			removeHints(t, dir)
			c := openCache(t, dir, smallOptions())
			if s := c.Stats(); s.Corruptions == 0 {
				t.Fatalf("Open scanned a damaged record and reported nothing")
			}
			wantMissing(t, c, victim.key)
			checkModel(t, c, others)
			mustClose(t, c)
			c = openCache(t, dir, smallOptions())
			checkModel(t, c, others)
		})
	}
}

// TestCorruptActiveSegment damages a record in the middle of the active
// segment: Open reports it, keeps the records on both sides, seals the
// segment and writes on in a new one.
func TestCorruptActiveSegment(t *testing.T) {
	base, model := corruptBase(t)
	segs := files(t, base, ".seg")
	last := segs[len(segs)-1]
	recs := scanFile(t, filepath.Join(base, last))
	if len(recs) < 5 {
		t.Fatalf("active segment holds %d records", len(recs))
	}
	victim := recs[len(recs)/2]
	others := maps.Clone(model)
	delete(others, victim.key)
	for _, d := range recordDamage {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			dir := copyDir(t, base)
			damageRecord(t, filepath.Join(dir, last), victim, d.at, d.xor)
			c := openCache(t, dir, smallOptions())
			if s := c.Stats(); s.Corruptions == 0 {
				t.Fatalf("damage inside the active segment not reported")
			}
			wantMissing(t, c, victim.key)
			checkModel(t, c, others)
			mustClose(t, c)
			recoverAndCheck(t, dir, others)
		})
	}
}

// TestCorruptSegmentHeader: a sealed segment whose header is damaged is
// reported and skipped, never deleted or rewritten; the other segments are
// served.
func TestCorruptSegmentHeader(t *testing.T) {
	base, model := corruptBase(t)
	first := files(t, base, ".seg")[0]
	recs := scanFile(t, filepath.Join(base, first))
	for _, at := range []int{0, 17, 30} {
		t.Run(fmt.Sprintf("byte=%d", at), func(t *testing.T) {
			t.Parallel()
			dir := copyDir(t, base)
			path := filepath.Join(dir, first)
			damageRecord(t, path, segRecord{}, at, 0x01)
			damaged, _ := os.ReadFile(path)
			c := openCache(t, dir, smallOptions())
			if s := c.Stats(); s.Corruptions == 0 {
				t.Fatalf("damaged segment header not reported")
			}
			lost := map[string]bool{}
			for _, r := range recs {
				lost[r.key] = true
				wantMissing(t, c, r.key)
			}
			for k, v := range model {
				if !lost[k] {
					wantValue(t, c, k, v)
				}
			}
			mustClose(t, c)
			if now, err := os.ReadFile(path); err != nil || string(now) != string(damaged) {
				t.Fatalf("the damaged segment was changed or removed: %v", err)
			}
		})
	}
}

// TestSegmentOfAnotherVersion: a segment in a format version this kennel
// does not read makes the whole directory incompatible; it is refused and
// left untouched.
func TestSegmentOfAnotherVersion(t *testing.T) {
	dir, _ := corruptBase(t)
	first := files(t, dir, ".seg")[0]
	b, err := os.ReadFile(filepath.Join(dir, first))
	if err != nil {
		t.Fatal(err)
	}
	h, err := segment.DecodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	h.Version = segment.FormatVersion + 1
	copy(b, segment.AppendHeader(nil, h))
	if err := os.WriteFile(filepath.Join(dir, first), b, 0o600); err != nil {
		t.Fatal(err)
	}
	requireOpenRefused(t, dir, engine.ErrIncompatible, fmt.Sprintf("with a segment of version %d", h.Version))
}

// TestDamagedHint: a hint that fails its checks is not used; Open scans its
// segment instead and loses nothing.
func TestDamagedHint(t *testing.T) {
	base, model := corruptBase(t)
	hint := files(t, base, ".hint")[0]
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(base, hint))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}()
	for _, at := range []int64{0, 9, 20, 33, 40, 60, size / 2, size - 9, size - 1} {
		t.Run(fmt.Sprintf("byte=%d", at), func(t *testing.T) {
			t.Parallel()
			dir := copyDir(t, base)
			damageRecord(t, filepath.Join(dir, hint), segRecord{}, int(at), 0x10)
			c := openCache(t, dir, smallOptions())
			checkModel(t, c, model)
		})
	}
	t.Run("truncated", func(t *testing.T) {
		dir := copyDir(t, base)
		if err := os.Truncate(filepath.Join(dir, hint), size-5); err != nil {
			t.Fatal(err)
		}
		c := openCache(t, dir, smallOptions())
		checkModel(t, c, model)
	})
	t.Run("another segment's hint", func(t *testing.T) {
		dir := copyDir(t, base)
		hints := files(t, dir, ".hint")
		b, err := os.ReadFile(filepath.Join(dir, hints[1]))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, hints[0]), b, 0o600); err != nil {
			t.Fatal(err)
		}
		c := openCache(t, dir, smallOptions())
		checkModel(t, c, model)
	})
}

// TestInterruptedSegmentCreation: a crash while creating a segment leaves a
// last segment shorter than its header; Open removes it and goes on.
func TestInterruptedSegmentCreation(t *testing.T) {
	base, model := corruptBase(t)
	segs := files(t, base, ".seg")
	id, ok := segment.ParseFileName(segs[len(segs)-1])
	if !ok {
		t.Fatal(segs)
	}
	for _, size := range []int{0, 10, segment.HeaderSize} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			dir := copyDir(t, base)
			if err := os.WriteFile(filepath.Join(dir, segment.FileName(id+1)), make([]byte, size), 0o600); err != nil {
				t.Fatal(err)
			}
			recoverAndCheck(t, dir, model)
		})
	}
}

// TestTruncatedSealedSegment: a sealed segment shorter than its hint says
// (a lost tail, a bad copy) must not be read past its end through the hint:
// Open notices, scans what is there, and serves the records it holds.
func TestTruncatedSealedSegment(t *testing.T) {
	base, model := corruptBase(t)
	first := files(t, base, ".seg")[0]
	recs := scanFile(t, filepath.Join(base, first))
	cutRec := recs[len(recs)/2]
	for _, cut := range []int{cutRec.off, cutRec.off + 7, cutRec.end - 1} {
		t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
			dir := copyDir(t, base)
			if err := os.Truncate(filepath.Join(dir, first), int64(cut)); err != nil {
				t.Fatal(err)
			}
			want := maps.Clone(model)
			for _, r := range recs {
				if r.end > cut {
					delete(want, r.key)
				}
			}
			c := openCache(t, dir, smallOptions())
			checkModel(t, c, want)
			for _, r := range recs {
				if r.end > cut {
					wantMissing(t, c, r.key)
				}
			}
		})
	}
}

// TestSegmentTruncatedUnderReader: another program cuts a sealed segment
// short while the cache has it mapped. Reads of the lost records fail with
// ErrCorrupt instead of killing the process with SIGBUS; other keys still
// read.
func TestSegmentTruncatedUnderReader(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	for i := range 200 {
		mustSet(t, c, fmt.Sprintf("k%03d", i), value("k", i, 100))
	}
	segs := files(t, dir, ".seg")
	if len(segs) < 3 {
		t.Fatalf("want several segments, have %v", segs)
	}
	if err := os.Truncate(filepath.Join(dir, segs[0]), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get([]byte("k000")); !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("Get of a record in a truncated segment: %v, want ErrCorrupt", err)
	}
	wantValue(t, c, "k199", value("k", 199, 100))
	if got := c.Stats().Corruptions; got == 0 {
		t.Fatal("the fault was not counted")
	}
}
