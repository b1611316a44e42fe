package inspect

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kennel-cache/kennel/segment"
)

var dumpCmd = &command{
	name:    "dump",
	args:    "FILE",
	summary: "print every record of a segment file (or entry of a hint file)",
	help: `
Dump prints the records of one segment file in file order: offset, size,
checksum status, kind, codec, sequence number, expiry, value length and key
(quoted, truncated), and a FRESH column with the time a value turns stale
when a record has one. A stretch of bytes that is not a valid record is
printed as BAD with the reason, and dump carries on at the next valid
record, the way a reader resynchronises. A seal record ends the segment and
names the segment the log continues in ("→ segment N" in the KEY column):
bytes after it (what a writer that died mid-append left) are never read as
records, and dump shows them as one stretch. A put-sidecar record, whose
value is kept in a sidecar file, shows after its key the descriptor its
value holds: the file (sidecars/NAME, in the cache directory), the value's
size and its xxhash64, or "not hashed" for a file moved in, which readers
check by size only. The last line says how the file ends (clean, sealed, a
torn tail, or damage).

The header line names the header's flags: compacted marks a segment that
compaction wrote, which holds copies of records (with the sequence numbers
they had) and the tombstones compaction keeps, and has no seal: it is not
part of the log.

Given a hint file (NNNN.hint) instead, dump prints its header and entries.
Dump reads the file only; it needs no cache directory, and a segment a writer
is appending to shows as it was when dump opened it.`,
	setup: func(e *env, fs *flag.FlagSet) func([]string) error {
		hexOn := fs.Bool("hex", false, "add a hex dump of each record")
		hexMax := fs.Int("hex-max", 1024, "hex dump at most `N` bytes of each record (0: all)")
		return func(args []string) error {
			if *hexMax < 0 {
				return usageError{fmt.Errorf("--hex-max %d is negative", *hexMax)}
			}
			if !*hexOn {
				*hexMax = -1
			}
			return runDump(e, args[0], *hexMax)
		}
	},
}

// dumpKeyMax is how much of a key a dump row shows: enough to recognise
// it, little enough to keep rows on one line.
const dumpKeyMax = 40

func runDump(e *env, path string, hexMax int) error {
	f, err := os.Open(path)
	if err != nil {
		return cannotRun(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return cannotRun(err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return cannotRun(fmt.Errorf("%s is not a regular file", path))
	case fi.Size() < segment.HeaderSize:
		return cannotRun(fmt.Errorf("%s is %d bytes, too short for a kennel segment or hint file", path, fi.Size()))
	}
	m, err := segment.MapFile(f, 0, fi.Size())
	if err != nil {
		return cannotRun(err)
	}
	defer m.Release()
	d := &dumper{e: e, path: path, data: m.Bytes(int(fi.Size())), hexMax: hexMax, now: time.Now()}

	hdr, herr := segment.DecodeHeader(d.data)
	if errors.Is(herr, segment.ErrNotSegment) {
		err := d.hint()
		if errors.Is(err, segment.ErrNotSegment) {
			return cannotRun(fmt.Errorf("%s is neither a kennel segment nor a hint file", path))
		}
		return err
	}
	return d.segment(hdr, herr)
}

type dumper struct {
	e      *env
	path   string
	data   []byte
	hexMax int // < 0: no hex dump
	now    time.Time
}

// dumpItem is a record (a seal included), a stretch of bytes that is not
// one, or the bytes after a seal.
type dumpItem struct {
	off, size int
	rec       segment.Record
	err       error // nil: a good record, or pastSeal
	next      int   // after a bad stretch: the next good record, or -1
	pastSeal  bool  // bytes after a seal record: never read as records
}

// errSealed is walk's reason for an end at a seal record.
var errSealed = errors.New("sealed")

// walk calls fn for each record, seal and bad stretch of the segment's
// bytes, and for the bytes after a seal. It returns the offset where the
// records end, and why: nil at the end of the file, errSealed after a seal,
// else the error of the bad stretch that runs to the end.
func (d *dumper) walk(fn func(dumpItem)) (end int, why error) {
	if len(d.data) <= segment.HeaderSize {
		return len(d.data), nil
	}
	s := segment.NewScanner(d.data, segment.HeaderSize)
	for {
		for s.Next() {
			fn(dumpItem{off: s.Offset(), size: s.Size(), rec: s.Record()})
		}
		stop, err := s.Stop()
		if err == nil && s.Sealed() {
			// The scanner stopped just past the seal, and yields none.
			off := stop - segment.SealRecordSize
			seal, _, _ := segment.DecodeRecord(d.data[off:stop])
			fn(dumpItem{off: off, size: segment.SealRecordSize, rec: seal})
			if stop < len(d.data) {
				fn(dumpItem{off: stop, size: len(d.data) - stop, pastSeal: true, next: -1})
			}
			return stop, errSealed
		}
		if err == nil {
			return stop, nil
		}
		it := dumpItem{off: stop, err: err, next: s.Resync()}
		it.size = len(d.data) - stop
		if it.next >= 0 {
			it.size = it.next - stop
		}
		fn(it)
		if it.next < 0 {
			return stop, err
		}
	}
}

// dumpColumns are the columns of a segment dump. FRESH is left out when no
// record has a fresh-until time.
var dumpColumns = []string{"OFFSET", "SIZE", "CHECK", "KIND", "CODEC", "SEQ", "EXPIRY", "FRESH", "VALLEN", "KEY"}

const dumpFreshColumn = 7

// cells are an item's table cells, FRESH included; a bad stretch has a
// reason instead of the record's fields, and a seal "-" for the fields it
// does not have and, instead of a key, the segment the log continues in.
func (d *dumper) cells(it dumpItem) []string {
	switch {
	case it.pastSeal:
		return []string{fmt.Sprint(it.off), fmt.Sprint(it.size), "-", badReason(it)}
	case it.err != nil:
		return []string{fmt.Sprint(it.off), fmt.Sprint(it.size), "BAD", badReason(it)}
	}
	r := it.rec
	if r.Kind == segment.KindSeal {
		return []string{fmt.Sprint(it.off), fmt.Sprint(it.size), "ok", r.Kind.String(), "-", fmt.Sprint(r.Seq), "-", "-", "-",
			fmt.Sprintf("→ segment %d", r.SealNext())}
	}
	key := quoteKey(r.Key, dumpKeyMax)
	if r.Kind == segment.KindPutSidecar {
		if desc, err := segment.DecodeSidecar(r.Value); err != nil {
			key += fmt.Sprintf(" → bad sidecar descriptor: %v", err)
		} else {
			key += " → " + describeSidecar(desc)
		}
	}
	return []string{fmt.Sprint(it.off), fmt.Sprint(it.size), "ok", r.Kind.String(), r.Codec.String(), fmt.Sprint(r.Seq),
		formatExpiryNanos(r.Expiry, d.now), formatFreshNanos(r.Fresh, d.now), fmt.Sprint(len(r.Value)), key}
}

// withoutFresh drops the FRESH cell from a record's cells.
func withoutFresh(cells []string) []string {
	if len(cells) <= dumpFreshColumn {
		return cells // a bad stretch: no such column
	}
	return append(cells[:dumpFreshColumn:dumpFreshColumn], cells[dumpFreshColumn+1:]...)
}

func badReason(it dumpItem) string {
	switch {
	case it.pastSeal:
		return fmt.Sprintf("%d bytes after the seal: not records, never read (what a writer that died mid-append left)", it.size)
	case it.next >= 0:
		return fmt.Sprintf("%v; next record at %d", it.err, it.next)
	case segment.Torn(it.err):
		return fmt.Sprintf("torn tail: %v", it.err)
	}
	return fmt.Sprintf("%v; no record follows", it.err)
}

// dumpRecord is one item of dump's JSON output.
type dumpRecord struct {
	Offset int    `json:"offset"`
	Size   int    `json:"size"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Next   *int   `json:"next,omitempty"` // after a bad stretch: where records resume
	// PastSeal marks the bytes after a seal record: not records, not damage.
	PastSeal bool `json:"past_seal,omitempty"`
	// Key and KeyHex are jsonKey's, empty for a bad stretch.
	Key      string `json:"key,omitempty"`
	KeyHex   string `json:"key_hex,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Codec    string `json:"codec,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	Expiry   string `json:"expiry,omitempty"`
	Fresh    string `json:"fresh,omitempty"` // when the value turns stale; absent: when it expires
	ValueLen *int   `json:"value_len,omitempty"`
	// ContinuesIn is, for a seal, the id of the segment the log continues in.
	ContinuesIn *uint64 `json:"continues_in,omitempty"`
	// For a put-sidecar record: the descriptor its value holds, or why it
	// does not decode.
	Sidecar      *sidecarJSON `json:"sidecar,omitempty"`
	SidecarError string       `json:"sidecar_error,omitempty"`
}

type dumpHeader struct {
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	ID        uint64 `json:"id"`
	Version   uint32 `json:"version"`
	Flags     uint32 `json:"flags"`
	Compacted bool   `json:"compacted"` // flag segment.HeaderCompacted: written by compaction
}

type dumpEnd struct {
	Offset   int    `json:"offset"`
	State    string `json:"state"` // "clean", "sealed", "torn" or "damaged"
	Error    string `json:"error,omitempty"`
	Good     int    `json:"good"`      // records, the seal included
	Bad      int    `json:"bad"`       // stretches of damage
	PastSeal int    `json:"past_seal"` // bytes after the seal
}

func (d *dumper) segment(hdr segment.Header, herr error) error {
	w := d.e.stdout
	var good, bad, pastSeal int
	count := func(it dumpItem) {
		switch {
		case it.pastSeal:
			pastSeal += it.size
		case it.err == nil:
			good++
		default:
			bad++
		}
	}
	// Records of another format version cannot be read as these: show the
	// header only.
	readRecords := !errors.Is(herr, segment.ErrVersion)
	walk := func(fn func(dumpItem)) (int, error) {
		if !readRecords {
			return segment.HeaderSize, nil
		}
		return d.walk(fn)
	}

	if d.e.json {
		h := dumpHeader{OK: herr == nil, ID: hdr.ID, Version: hdr.Version, Flags: hdr.Flags, Compacted: hdr.Compacted()}
		if herr != nil {
			h.Error = herr.Error()
		}
		fmt.Fprintf(w, "{\n  \"file\": ")
		writeInline(w, d.path)
		fmt.Fprintf(w, ",\n  \"type\": \"segment\",\n  \"size\": %d,\n  \"header\": ", len(d.data))
		writeInline(w, h)
		fmt.Fprintf(w, ",\n  \"records\": ")
		arr := &jsonArray{w: w, indent: "  "}
		var werr error // the first write error; the walk then only counts
		end, why := walk(func(it dumpItem) {
			count(it)
			if werr == nil {
				werr = arr.add(d.jsonRecord(it))
			}
		})
		if werr != nil {
			return werr
		}
		if err := arr.close(); err != nil {
			return err
		}
		fmt.Fprintf(w, ",\n  \"end\": ")
		var reason error
		if !errors.Is(why, errSealed) {
			reason = why
		}
		writeInline(w, dumpEnd{Offset: end, State: endState(why), Error: errString(reason), Good: good, Bad: bad, PastSeal: pastSeal})
		_, err := fmt.Fprintf(w, "\n}\n")
		return err
	}

	fmt.Fprintf(w, "file    %s\ntype    segment\nsize    %d bytes\n", d.path, len(d.data))
	switch {
	case herr != nil:
		fmt.Fprintf(w, "header  BAD: %v\n", herr)
	default:
		fmt.Fprintf(w, "header  segment %d, format %d, flags %s: ok", hdr.ID, hdr.Version, describeFlags(hdr.Flags))
		if id, ok := segment.ParseFileName(filepath.Base(d.path)); ok && id != hdr.ID {
			fmt.Fprintf(w, ", but the file name says segment %d", id)
		}
		fmt.Fprintln(w)
	}
	if !readRecords {
		return nil
	}
	// Two passes over the mapped file: the first measures the columns (and
	// finds out whether any record has a fresh-until time), so that the
	// second streams rows that line up, however long the segment.
	all, lean := newColumns(dumpColumns...), newColumns(withoutFresh(dumpColumns)...)
	fresh := false
	d.walk(func(it dumpItem) {
		cells := d.cells(it)
		all.measure(cells)
		lean.measure(withoutFresh(cells))
		fresh = fresh || it.rec.Fresh != 0
	})
	cols, cells := lean, func(it dumpItem) []string { return withoutFresh(d.cells(it)) }
	if fresh {
		cols, cells = all, d.cells
	}
	fmt.Fprintln(w)
	cols.print(w, cols.head)
	end, why := d.walk(func(it dumpItem) {
		count(it)
		cols.print(w, cells(it))
		if d.hexMax >= 0 {
			hexDump(w, d.data[it.off:it.off+it.size], int64(it.off), d.hexMax)
		}
	})
	_, err := fmt.Fprintf(w, "\nend     offset %d: %s; %s, %s\n", end, describeEnd(why, len(d.data)-end),
		pluralize(good, "good record", "good records"), pluralize(bad, "bad stretch", "bad stretches"))
	return err
}

// describeFlags prints segment header flags in hex, with the names of those
// this kennel knows: "0x0", "0x1 (compacted)". Other bits are 0 in format 4
// (segment/FORMAT.md), but the engine refuses no header for its flags, so
// any other bit is shown, not judged.
func describeFlags(flags uint32) string {
	var names []string
	if flags&segment.HeaderCompacted != 0 {
		names = append(names, "compacted")
	}
	if rest := flags &^ segment.HeaderCompacted; rest != 0 {
		names = append(names, fmt.Sprintf("unknown %#x", rest))
	}
	if len(names) == 0 {
		return fmt.Sprintf("%#x", flags)
	}
	return fmt.Sprintf("%#x (%s)", flags, strings.Join(names, ", "))
}

func (d *dumper) jsonRecord(it dumpItem) dumpRecord {
	r := dumpRecord{Offset: it.off, Size: it.size, OK: it.err == nil && !it.pastSeal}
	switch {
	case it.pastSeal:
		r.Error, r.PastSeal = badReason(it), true
		return r
	case it.err != nil:
		r.Error = badReason(it)
		if it.next >= 0 {
			r.Next = &it.next
		}
		return r
	}
	rec := &it.rec
	r.Kind, r.Seq = rec.Kind.String(), rec.Seq
	if rec.Kind == segment.KindSeal {
		next := rec.SealNext()
		r.ContinuesIn = &next
		return r
	}
	k := newJSONKey(rec.Key)
	n := len(rec.Value)
	r.Key, r.KeyHex, r.ValueLen = k.Key, k.KeyHex, &n
	r.Codec, r.Expiry, r.Fresh = rec.Codec.String(), jsonTimeNanos(rec.Expiry), jsonTimeNanos(rec.Fresh)
	if rec.Kind == segment.KindPutSidecar {
		if desc, err := segment.DecodeSidecar(rec.Value); err != nil {
			r.SidecarError = err.Error()
		} else {
			r.Sidecar = newSidecarJSON(desc)
		}
	}
	return r
}

func endState(err error) string {
	switch {
	case err == nil:
		return "clean"
	case errors.Is(err, errSealed):
		return "sealed"
	case segment.Torn(err):
		return "torn"
	}
	return "damaged"
}

func describeEnd(err error, tail int) string {
	switch endState(err) {
	case "clean":
		return "clean end"
	case "sealed":
		if tail > 0 {
			return fmt.Sprintf("sealed, %d bytes after the seal", tail)
		}
		return "sealed"
	case "torn":
		return fmt.Sprintf("torn tail of %d bytes", tail)
	}
	return fmt.Sprintf("%d damaged bytes to the end of the file", tail)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// hint dumps a hint file. It returns segment.ErrNotSegment when the file is
// not one either.
func (d *dumper) hint() error {
	var entries []segment.HintEntry
	hh, herr := segment.DecodeHint(d.data, func(he segment.HintEntry) error {
		entries = append(entries, he)
		return nil
	})
	if errors.Is(herr, segment.ErrNotSegment) {
		return herr
	}
	w := d.e.stdout
	if d.e.json {
		type hintHeader struct {
			OK            bool   `json:"ok"`
			Error         string `json:"error,omitempty"`
			Segment       uint64 `json:"segment"`
			SegmentLength int64  `json:"segment_length"`
		}
		type hintEntry struct {
			Offset uint32 `json:"offset"`
			Size   uint32 `json:"size"`
			jsonKey
			Kind   string `json:"kind"`
			Seq    uint64 `json:"seq"`
			Expiry string `json:"expiry,omitempty"`
		}
		fmt.Fprintf(w, "{\n  \"file\": ")
		writeInline(w, d.path)
		fmt.Fprintf(w, ",\n  \"type\": \"hint\",\n  \"size\": %d,\n  \"header\": ", len(d.data))
		writeInline(w, hintHeader{OK: herr == nil, Error: errString(herr), Segment: hh.ID, SegmentLength: hh.Length})
		fmt.Fprintf(w, ",\n  \"entries\": ")
		arr := &jsonArray{w: w, indent: "  "}
		for _, he := range entries {
			if err := arr.add(hintEntry{Offset: he.Offset, Size: he.Size, jsonKey: newJSONKey(he.Key),
				Kind: he.Kind.String(), Seq: he.Seq, Expiry: jsonTimeNanos(he.Expiry)}); err != nil {
				return err
			}
		}
		if err := arr.close(); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "\n}\n")
		return err
	}

	fmt.Fprintf(w, "file    %s\ntype    hint\nsize    %d bytes\n", d.path, len(d.data))
	if herr != nil {
		fmt.Fprintf(w, "header  BAD: %v\n", herr)
	} else {
		fmt.Fprintf(w, "header  segment %d, sealed length %d bytes, %d entries: ok\n", hh.ID, hh.Length, len(entries))
	}
	if len(entries) == 0 {
		return nil
	}
	cols := newColumns("OFFSET", "SIZE", "KIND", "SEQ", "EXPIRY", "KEY")
	cells := func(he segment.HintEntry) []string {
		return []string{fmt.Sprint(he.Offset), fmt.Sprint(he.Size), he.Kind.String(), fmt.Sprint(he.Seq),
			formatExpiryNanos(he.Expiry, d.now), quoteKey(he.Key, dumpKeyMax)}
	}
	for _, he := range entries {
		cols.measure(cells(he))
	}
	fmt.Fprintln(w)
	cols.print(w, cols.head)
	for _, he := range entries {
		cols.print(w, cells(he))
	}
	return nil
}

// writeInline writes v as the value of a top-level field of a streamed
// document.
func writeInline(w io.Writer, v any) {
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		b = []byte("null") // the types written here always marshal
	}
	w.Write(b)
}

// columns lines up rows whose widths were measured in a first pass, so
// that they can be printed as they come. The last cell of a row is never
// padded: it may be a key or a reason of any length.
type columns struct {
	head   []string
	widths []int
}

func newColumns(head ...string) *columns {
	c := &columns{head: head, widths: make([]int, len(head))}
	c.measure(head)
	return c
}

func (c *columns) measure(cells []string) {
	for i, s := range cells[:len(cells)-1] {
		c.widths[i] = max(c.widths[i], len(s))
	}
}

func (c *columns) print(w io.Writer, cells []string) {
	var b strings.Builder
	for i, s := range cells {
		b.WriteString(s)
		if i < len(cells)-1 {
			b.WriteString(strings.Repeat(" ", c.widths[i]-len(s)+2))
		}
	}
	b.WriteByte('\n')
	io.WriteString(w, b.String())
}
