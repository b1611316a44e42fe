package inspect

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/segment"
)

var verifyCmd = &command{
	name:    "verify",
	args:    "DIR",
	summary: "check every record, header and hint file; exit status 1 on damage",
	help: `
Verify checks every file of the cache directory DIR: the header of each
segment; the checksum of each of its records, resynchronising past damage to
check the rest; each hint file, whole (checksums) and entry by entry against
the record at the offset it names (kind, key, sequence number, expiry, size),
and that no record is missing from it; the shared state file, and that the
end of the log it publishes lies in an existing segment; the sidecar file of
every live value kept in one (a regular file, of the size its record gives,
and of its checksum when it has one); and that no file is out of place.

Segments written by compaction (header flag compacted) are checked like
the others, hint included, but they are not part of the log: they have no
seal record, and their ids may lie anywhere among the log's.

Each finding is printed with its file and offset. Problems are damage: data
the engine would skip or could not vouch for, a seal that names a segment
that is not after its own, a seal in a segment compaction wrote, or a value
in a sidecar file that cannot be read (the file missing, not a regular file,
of another size or checksum, or its record's descriptor damaged). Warnings
are not damage: a torn tail at the end of the last segment of the log (a
write in flight, or interrupted by a crash, which the next writer seals) or
of a segment compaction has not finished, bytes after a seal record, an
orphan segment (a log segment whose id lies between a sealed segment and the
segment its seal says the log continues in: a writer created it and died
before publishing it), a writer that died in the middle of an append, a
compaction that was interrupted, a temporary file left by a crash, a file
kennel does not know, a file that compaction deleted while verify ran, a
sidecar file that no live record names (an old value, which compaction's
sweep deletes, after the writers' grace period if its path was handed out).
The exit status is 0 when there is no problem, 1 when there is, 2 when DIR
could not be verified at all.

Verify reads the files directly, without opening the cache, so it also
reports what would keep the engine from opening it. Only to learn which
records are the live values of their keys, and so which sidecar files must
be there, does it open the cache read-only, when the directory has sidecar
records or files. On a terminal, a progress bar on standard error follows
the work through big directories, sidecar files included.`,
	setup: func(e *env, fs *flag.FlagSet) func([]string) error {
		return func(args []string) error { return runVerify(e, args[0]) }
	},
}

// formatFile is the directory's format file (engine/dir.go), which
// engine.CheckDir checks.
const formatFile = "KENNEL"

// maxFindingsPerFile bounds the findings listed for one file, so that one
// wrecked file shows its pattern without burying the others; the rest are
// counted.
const maxFindingsPerFile = 20

// Finding severities. Problems are damage, and make the exit status 1;
// warnings are not damage; a note says how many findings a file had past
// maxFindingsPerFile.
const (
	sevProblem = "problem"
	sevWarning = "warning"
	sevNote    = "note"
)

// finding is one thing verify found. Offset is a byte offset in File, or
// for a hint entry the offset in its segment that the entry names; -1 when
// the finding is about the file as a whole.
type finding struct {
	Severity string `json:"severity"`
	File     string `json:"file"`
	Offset   int64  `json:"offset"`
	Message  string `json:"message"`
}

// verifyReport is verify's JSON output; the human output shows the same.
type verifyReport struct {
	Dir           string    `json:"dir"`
	FormatVersion int       `json:"format_version"`
	Segments      int       `json:"segments"`
	Hints         int       `json:"hints"`
	Records       int       `json:"records"`
	Sidecars      int       `json:"sidecars"` // sidecar files of live records checked
	Bytes         int64     `json:"bytes"`    // segments, hints and those sidecar files
	Problems      int       `json:"problems"`
	Warnings      int       `json:"warnings"`
	Findings      []finding `json:"findings"`
}

// A check verifies one kind of file and adds what it finds to the report.
// It returns an error only when it could not run at all.
type check func(v *verifier) error

// verifyChecks run in this order.
var verifyChecks = []check{
	(*verifier).checkSegments,
	(*verifier).checkState,
	(*verifier).checkOtherFiles,
	(*verifier).checkSidecars,
}

type verifier struct {
	dir     string
	entries []os.DirEntry // the directory as listed when verify began
	segIDs  []uint64      // in id order
	hints   map[uint64]bool
	report  verifyReport

	// The sidecar folder as listed when verify began, before the index
	// is read (checkSidecars), and how many put-sidecar records the scan
	// of the segments found.
	sidecarDir     sidecarDir
	sidecarRecords int

	// The seal, of the segments checked so far, that names the highest
	// next segment: segments between the two are orphans.
	skipFrom, skipTo uint64

	perFile  map[string]int // findings listed per file
	omitted  map[string]int // findings past maxFindingsPerFile, per file
	omitOrd  []string       // files with omitted findings, in order
	prog     *progress
	progBase int64 // bytes of the files already checked
}

func runVerify(e *env, dir string) error {
	version, err := engine.CheckDir(dir)
	if err != nil {
		return cannotRun(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return cannotRun(err)
	}
	v := &verifier{
		dir: dir, entries: entries, hints: make(map[uint64]bool),
		report:  verifyReport{Dir: dir, FormatVersion: version, Findings: []finding{}},
		perFile: make(map[string]int), omitted: make(map[string]int),
	}
	var total int64
	for _, de := range entries {
		name := de.Name()
		id, isSeg := segment.ParseFileName(name)
		hid, isHint := segment.ParseHintFileName(name)
		switch {
		case isSeg:
			v.segIDs = append(v.segIDs, id)
		case isHint:
			v.hints[hid] = true
		default:
			continue
		}
		if fi, err := de.Info(); err == nil {
			total += fi.Size()
		}
	}
	slices.Sort(v.segIDs)
	v.sidecarDir = listSidecarDir(dir)
	total += bytesOf(v.sidecarDir.named) // read to check their sums
	v.prog = newProgress(e, "verify", total)
	for _, c := range verifyChecks {
		if err := c(v); err != nil {
			v.prog.finish()
			return cannotRun(err)
		}
	}
	v.prog.finish()
	for _, name := range v.omitOrd {
		v.report.Findings = append(v.report.Findings, finding{Severity: sevNote, File: name, Offset: -1,
			Message: fmt.Sprintf("%s in this file not listed (counted in the totals)", plural(v.omitted[name], "more finding"))})
	}

	if e.json {
		if err := writeJSON(e.stdout, v.report); err != nil {
			return err
		}
	} else {
		printVerify(e.stdout, &v.report)
	}
	if v.report.Problems > 0 {
		return &exitError{code: exitFailed} // the report said it all
	}
	return nil
}

func printVerify(w io.Writer, r *verifyReport) {
	fmt.Fprintf(w, "verified %s: %s, %s, %s, %s, %s\n", r.Dir, plural(r.Segments, "segment"), plural(r.Hints, "hint"),
		plural(r.Records, "record"), plural(r.Sidecars, "sidecar file"), formatSize(r.Bytes))
	if len(r.Findings) > 0 {
		fmt.Fprintln(w)
		tw := newTable(w)
		row(tw, "SEVERITY", "FILE", "OFFSET", "FINDING")
		for _, f := range r.Findings {
			off := "-"
			if f.Offset >= 0 {
				off = fmt.Sprint(f.Offset)
			}
			row(tw, f.Severity, f.File, off, f.Message)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	switch {
	case r.Problems == 0 && r.Warnings == 0:
		fmt.Fprintln(w, "no problems found")
	case r.Problems == 0:
		fmt.Fprintf(w, "no problems, %s\n", plural(r.Warnings, "warning"))
	default:
		fmt.Fprintf(w, "%s, %s\n", plural(r.Problems, "problem"), plural(r.Warnings, "warning"))
	}
}

// plural counts things whose plural takes an s.
func plural(n int, what string) string { return pluralize(n, what, what+"s") }

func pluralize(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func (v *verifier) add(sev, file string, off int64, format string, args ...any) {
	if sev == sevProblem {
		v.report.Problems++
	} else {
		v.report.Warnings++
	}
	if v.perFile[file] == maxFindingsPerFile {
		if v.omitted[file] == 0 {
			v.omitOrd = append(v.omitOrd, file)
		}
		v.omitted[file]++
		return
	}
	v.perFile[file]++
	v.report.Findings = append(v.report.Findings, finding{Severity: sev, File: file, Offset: off, Message: fmt.Sprintf(format, args...)})
}

func (v *verifier) problem(file string, off int64, format string, args ...any) {
	v.add(sevProblem, file, off, format, args...)
}

func (v *verifier) warn(file string, off int64, format string, args ...any) {
	v.add(sevWarning, file, off, format, args...)
}

// checkSegments checks every segment in id order. Compaction takes its
// segments' ids from the log's counter, so the newest segment may be one it
// wrote, and one may lie between a log segment and the segment that one's
// seal names; their headers say which segments are compaction's, and the
// newest of the others is the log's last, the one a writer may be appending
// to.
func (v *verifier) checkSegments() error {
	compacted := make(map[uint64]bool)
	var lastLog uint64
	for _, id := range v.segIDs {
		switch h, err := readSegmentHeader(filepath.Join(v.dir, segment.FileName(id))); {
		case err != nil:
			// Damage or a file deleted meanwhile, which checkSegment
			// reports, or a segment being created.
		case h.Compacted():
			compacted[id] = true
		default:
			lastLog = id
		}
	}
	for _, id := range v.segIDs {
		v.checkSegment(id, compacted[id], lastLog)
	}
	return nil
}

// readSegmentHeader reads and decodes the header of the segment file at path.
func readSegmentHeader(path string) (segment.Header, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return segment.Header{}, err
	}
	defer f.Close()
	return segment.ReadHeader(f)
}

// record is what the hint check needs of a record found by the scan. key
// aliases the segment's mapping.
type record struct {
	off, size int
	kind      segment.Kind
	key       []byte
	seq       uint64
	expiry    int64
}

// span is a stretch of bytes [start, end) that holds no valid record.
type span struct{ start, end int }

// checkSegment checks one segment: header, records, and its hint if it has
// one. compacted says whether compaction wrote it, lastLog is the id of the
// log's last segment.
func (v *verifier) checkSegment(id uint64, compacted bool, lastLog uint64) {
	name := segment.FileName(id)
	f, err := os.OpenFile(filepath.Join(v.dir, name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// Compaction deletes segments it has replaced; a reader treats a
		// segment missing by name as a reason to reload, not as damage.
		v.warn(name, -1, "removed while verify ran")
		return
	}
	if err != nil {
		v.problem(name, -1, "cannot open: %v", err)
		return
	}
	defer f.Close()
	if !compacted && id < v.skipTo {
		// Segments are checked in id order, so every seal of a segment
		// before this one is known.
		v.warn(name, -1, "orphan segment: the seal of segment %d says the log continues in segment %d, so a writer created this one "+
			"and died before publishing it; its records are never read, and the next read-write open of the directory "+
			"while no other process has it open deletes it", v.skipFrom, v.skipTo)
	}
	fi, err := f.Stat()
	if err != nil {
		v.problem(name, -1, "cannot stat: %v", err)
		return
	}
	size := fi.Size()
	v.report.Segments++
	v.report.Bytes += size
	defer func() { v.progBase += size; v.prog.set(v.progBase) }()

	if size < segment.HeaderSize {
		// A roll or a compaction creates a segment with a higher id than
		// the log's last.
		if id > lastLog {
			v.warn(name, 0, "%d bytes, shorter than a header: a write in flight, or a crash interrupted its creation (the next process to open the directory alone removes it)", size)
		} else {
			v.problem(name, 0, "%d bytes, shorter than a header", size)
		}
		return
	}
	hdr := make([]byte, segment.HeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		v.problem(name, 0, "cannot read the header: %v", err)
		return
	}
	h, err := segment.DecodeHeader(hdr)
	if err != nil {
		v.problem(name, 0, "header: %v; the engine skips this segment", err)
		return
	}
	if h.ID != id {
		v.problem(name, 0, "the header says segment %d; the engine skips this segment", h.ID)
		return
	}

	var hint *hintFile
	if v.hints[id] {
		hint = v.loadHint(id, size)
	}
	end := size
	if hint != nil {
		end = hint.length
	}
	m, err := segment.MapFile(f, id, size)
	if err != nil {
		v.problem(name, -1, "cannot map: %v", err)
		return
	}
	defer m.Release()
	// The log's last segment may be appended to, and so may one that
	// compaction has not finished: it writes the hint when it is done.
	var tail tailKind
	switch {
	case hint != nil:
		tail = tailSealed
	case compacted:
		tail = tailCompacting
	case id == lastLog:
		tail = tailLastLog
	default:
		tail = tailUnsealed
	}
	recs, bad := v.scanRecords(id, m.Bytes(int(end)), compacted, tail)
	if hint != nil {
		v.compareHint(hint, name, recs, bad)
		if end < size {
			v.warn(name, end, "%d bytes past the length its hint seals are not records (a torn tail sealed in place)", size-end)
		}
	}
}

// tailKind says what the end of a segment may hold, and so how verify
// judges bytes there that are not a whole record.
type tailKind int

const (
	// tailSealed: its hint seals the segment; every byte up to the length
	// the hint gives must be records.
	tailSealed tailKind = iota
	// tailLastLog: the log's last segment, which a writer may be appending
	// to.
	tailLastLog
	// tailCompacting: a segment compaction wrote and has not finished (no
	// hint yet), which it may be appending to.
	tailCompacting
	// tailUnsealed: a log segment before the last without a hint; a torn
	// tail is what a kennel without seals, or a seal that could not be
	// written, left.
	tailUnsealed
)

// scanRecords checks every record of segment id's data (its bytes up to its
// end or the length its hint seals), resynchronising past damage, and the
// segment its seal, if any, says the log continues in. It returns the
// records it found when its hint seals it (the hint is compared with them),
// and the stretches that hold no record.
func (v *verifier) scanRecords(id uint64, data []byte, compacted bool, tail tailKind) ([]record, []span) {
	name := segment.FileName(id)
	var (
		recs []record
		bad  []span
		n    int
	)
	s := segment.NewScanner(data, segment.HeaderSize)
	for {
		for s.Next() {
			n++
			v.report.Records++
			r := s.Record()
			if r.Kind == segment.KindPutSidecar {
				v.sidecarRecords++
			}
			if tail == tailSealed {
				recs = append(recs, record{off: s.Offset(), size: s.Size(), kind: r.Kind, key: r.Key, seq: r.Seq, expiry: r.Expiry})
			}
			if n%1024 == 0 {
				v.prog.set(v.progBase + int64(s.Offset()))
			}
		}
		stop, err := s.Stop()
		if err == nil && s.Sealed() && compacted {
			// Not part of the seal chain: its seal names nothing.
			if stop < len(data) {
				bad = append(bad, span{stop, len(data)})
			}
			v.problem(name, int64(stop-segment.SealRecordSize), "a seal record in a segment compaction wrote, which never holds one: readers take it for the end of the segment")
			return recs, bad
		}
		if err == nil {
			if s.Sealed() {
				v.checkSeal(id, stop-segment.SealRecordSize, s.ContinuesIn())
			}
			if s.Sealed() && stop < len(data) {
				// A seal ends the segment: what follows it is not records,
				// and no reader takes it for any. A writer that dies in
				// the middle of an append leaves bytes past the published
				// end, which the next appender seals there.
				bad = append(bad, span{stop, len(data)})
				v.warn(name, int64(stop), "%d bytes after the seal are not records: what a writer that died mid-append left (never read)", len(data)-stop)
			}
			return recs, bad
		}
		if next := s.Resync(); next >= 0 {
			bad = append(bad, span{stop, next})
			v.problem(name, int64(stop), "%v; %d bytes skipped to the next record, at %d", err, next-stop, next)
			continue
		}
		bad = append(bad, span{stop, len(data)})
		rest := len(data) - stop
		switch {
		case tail == tailSealed:
			v.problem(name, int64(stop), "%v; no record follows in the %d bytes its hint seals", err, rest)
		case tail == tailLastLog:
			v.warn(name, int64(stop), "torn tail of the last segment, %d bytes: a write in flight or cut by a crash (%v)", rest, err)
		case tail == tailCompacting:
			v.warn(name, int64(stop), "torn tail of a segment compaction has not finished, %d bytes: a copy in flight or cut when the compaction was interrupted (%v)", rest, err)
		case segment.Torn(err):
			v.warn(name, int64(stop), "the segment ends with a torn tail of %d bytes (%v)", rest, err)
		default:
			v.problem(name, int64(stop), "%v; no record follows in the last %d bytes", err, rest)
		}
		return recs, bad
	}
}

// checkSeal checks the id that the seal at off of segment id names, and
// notes the segments it skips: a seal names the segment the log continues
// in, always a later one, and the segments between the two are orphans.
func (v *verifier) checkSeal(id uint64, off int, next uint64) {
	if next <= id {
		v.problem(segment.FileName(id), int64(off), "the seal says the log continues in segment %d, which is not after this one: "+
			"no writer seals a segment so (the engine ignores the id, and skips no segment for it)", next)
		return
	}
	if next > v.skipTo {
		v.skipFrom, v.skipTo = id, next
	}
}

// checkState checks the shared state file: that it decodes, and that the
// end of the log it publishes lies in an existing segment. A directory
// without one, or with one no process has finished writing, has never been
// opened read-write by a kennel that shares it: nothing to check.
func (v *verifier) checkState() error {
	locks, st := probeState(v.dir)
	switch st.status {
	case stateMissing, stateUninit:
		return nil
	case stateUnusable:
		v.problem(stateFile, -1, "%v: the engine cannot open the directory read-write", st.err)
		return nil
	case stateCorrupt:
		if locks.open() || !locks.known() {
			v.problem(stateFile, 0, "%v; while processes have the directory open, no other can open it read-write, and read-only ones do not follow its writes",
				st.err)
		} else {
			v.warn(stateFile, 0, "%v; the next process to open the directory read-write rewrites it", st.err)
		}
		return nil
	}
	h := st.hdr
	if msg := v.checkPosition(h.Position); msg != "" {
		// Appenders move the position on: a position read before a roll
		// and a segment looked at after it do not disagree. Only a
		// position that stays wrong is reported.
		if again := readState(v.dir); again.ok() && again.hdr.Position != h.Position {
			msg = v.checkPosition(again.hdr.Position)
		}
		if msg != "" {
			v.warn(stateFile, -1, "%s", msg)
		}
	}
	if st.writerDied {
		v.warn(stateFile, -1, "%s", describeWriterDied(locks, h.Position))
	}
	if st.compactionInterrupted {
		v.warn(stateFile, -1, "%s", describeCompactionInterrupted(locks))
	}
	if h.FailedSync != 0 {
		v.warn(stateFile, -1, "an fdatasync of segment %d failed: what was written to it before may not survive a power cut (it is sealed, never synced or appended to again)",
			h.FailedSync)
	}
	return nil
}

// checkPosition says what is wrong with a published position, or "".
func (v *verifier) checkPosition(pos sharedstate.Position) string {
	name := segment.FileName(uint64(pos.Segment()))
	fi, err := os.Stat(filepath.Join(v.dir, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("the published position %v names segment %d, which does not exist", pos, pos.Segment())
	case err != nil:
		return fmt.Sprintf("the published position %v names segment %d, which cannot be read: %v", pos, pos.Segment(), err)
	case int64(pos.End()) > fi.Size():
		return fmt.Sprintf("the published position %v is past the end of %s, which has %d bytes", pos, name, fi.Size())
	case pos.End() < segment.HeaderSize:
		return fmt.Sprintf("the published position %v is inside the header of %s", pos, name)
	}
	return ""
}

// hintFile is a decoded hint file. Entry keys alias the file's bytes.
type hintFile struct {
	name    string
	length  int64 // the segment length it seals
	entries []segment.HintEntry
}

// loadHint reads and checks segment id's hint file; nil when it cannot be
// used (reported: the engine then scans the segment instead).
func (v *verifier) loadHint(id uint64, segSize int64) *hintFile {
	name := segment.HintFileName(id)
	// A hint entry is smaller than its record, so a hint larger than its
	// segment plus its own header and trailer is damaged; never read more.
	b, err := segment.ReadFileBounded(filepath.Join(v.dir, name), segSize+64)
	if errors.Is(err, fs.ErrNotExist) {
		v.warn(name, -1, "removed while verify ran")
		return nil
	}
	v.report.Hints++
	if err != nil {
		v.problem(name, -1, "%v; the engine scans the segment instead", err)
		return nil
	}
	v.report.Bytes += int64(len(b))
	v.progBase += int64(len(b))
	h := &hintFile{name: name}
	hh, err := segment.DecodeHint(b, func(e segment.HintEntry) error {
		h.entries = append(h.entries, e)
		return nil
	})
	switch {
	case err != nil:
		v.problem(name, 0, "%v; the engine scans the segment instead", err)
		return nil
	case hh.ID != id:
		v.problem(name, 0, "the hint is of segment %d; the engine scans the segment instead", hh.ID)
		return nil
	case hh.Length > segSize:
		v.problem(name, 0, "the hint seals its segment at %d bytes, but the file has %d; the engine scans the segment instead", hh.Length, segSize)
		return nil
	}
	h.length = hh.Length
	return h
}

// compareHint checks that every hint entry matches the record at the offset
// it names, and that every record is in the hint: the engine reads the hint
// instead of the segment, so a record missing from it is lost to the engine.
// Entries that point into damage already reported are not reported again.
func (v *verifier) compareHint(h *hintFile, segName string, recs []record, bad []span) {
	at := make(map[int]int, len(recs)) // offset -> index in recs
	for i, r := range recs {
		at[r.off] = i
	}
	seen := make([]bool, len(recs))
	for k, e := range h.entries {
		off := int(e.Offset)
		i, ok := at[off]
		if !ok {
			if !inSpans(bad, off) {
				v.problem(h.name, int64(off), "entry %d (key %s) names offset %d of %s, where no record starts", k, quoteKey(e.Key, dumpKeyMax), off, segName)
			}
			continue
		}
		seen[i] = true
		if d := hintDiff(e, recs[i]); d != "" {
			v.problem(h.name, int64(off), "entry %d does not match the record at offset %d of %s: %s", k, off, segName, d)
		}
	}
	for i, r := range recs {
		if !seen[i] {
			v.problem(h.name, int64(r.off), "the record at offset %d of %s (key %s, seq %d) is not in the hint: the engine does not see it",
				r.off, segName, quoteKey(r.key, dumpKeyMax), r.seq)
		}
	}
}

// hintDiff lists how a hint entry differs from its record; "" if it does not.
func hintDiff(e segment.HintEntry, r record) string {
	var d []string
	if e.Kind != r.kind {
		d = append(d, fmt.Sprintf("kind %s, record %s", e.Kind, r.kind))
	}
	if !bytes.Equal(e.Key, r.key) {
		d = append(d, fmt.Sprintf("key %s, record %s", quoteKey(e.Key, dumpKeyMax), quoteKey(r.key, dumpKeyMax)))
	}
	if e.Seq != r.seq {
		d = append(d, fmt.Sprintf("seq %d, record %d", e.Seq, r.seq))
	}
	if e.Expiry != r.expiry {
		d = append(d, fmt.Sprintf("expiry %d, record %d", e.Expiry, r.expiry))
	}
	if int(e.Size) != r.size {
		d = append(d, fmt.Sprintf("size %d, record %d", e.Size, r.size))
	}
	return strings.Join(d, "; ")
}

// inSpans reports whether off lies in one of spans, which are sorted and
// disjoint.
func inSpans(spans []span, off int) bool {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].end > off })
	return i < len(spans) && spans[i].start <= off
}

// checkOtherFiles reports files that are neither segments nor hints of
// existing segments nor the directory's own files. The sidecar folder is
// checkSidecars'.
func (v *verifier) checkOtherFiles() error {
	segs := make(map[uint64]bool, len(v.segIDs))
	for _, id := range v.segIDs {
		segs[id] = true
	}
	for _, de := range v.entries {
		name := de.Name()
		if _, ok := segment.ParseFileName(name); ok || name == formatFile || name == lockFile || name == stateFile || name == segment.SidecarDir {
			continue
		}
		if id, ok := segment.ParseHintFileName(name); ok {
			if !segs[id] {
				v.warn(name, -1, "hint of segment %d, which does not exist", id)
			}
			continue
		}
		switch {
		case strings.Contains(name, segment.TempInfix):
			if _, err := os.Lstat(filepath.Join(v.dir, name)); errors.Is(err, fs.ErrNotExist) {
				continue // a write in flight when verify began, since renamed
			}
			v.warn(name, -1, "temporary file: a write in flight, or left by a crash (the next writer's open removes it)")
		case de.IsDir():
			v.warn(name, -1, "a directory kennel does not use")
		default:
			v.warn(name, -1, "not a kennel file")
		}
	}
	return nil
}
