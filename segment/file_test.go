package segment

import (
	"bytes"
	"errors"
	"github.com/kennel-cache/kennel/internal/vfs"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileNames(t *testing.T) {
	for _, id := range []uint64{0, 1, 0xabc, 1<<64 - 1} {
		name := FileName(id)
		if len(name) != 16+len(Suffix) {
			t.Fatalf("FileName(%d) = %q", id, name)
		}
		got, ok := ParseFileName(name)
		if !ok || got != id {
			t.Fatalf("ParseFileName(%q) = %d, %v", name, got, ok)
		}
	}
	if FileName(2) >= FileName(10) {
		t.Fatalf("file names do not sort in id order")
	}
	for _, bad := range []string{"", ".seg", "1.seg", "000000000000000g.seg", "0000000000000001.hint",
		"0000000000000001.seg.tmp-1", "00000000000000001.seg", "+000000000000001.seg"} {
		if id, ok := ParseFileName(bad); ok {
			t.Errorf("ParseFileName(%q) = %d, true", bad, id)
		}
	}
}

// openSegment creates segment id in a fresh directory and returns the writer
// and the directory; both are cleaned up with the test.
func openSegment(tb testing.TB, id uint64) (*Writer, string) {
	tb.Helper()
	dir := tb.TempDir()
	w, err := Create(vfs.OS{}, dir, id, 0, 0o600)
	if err != nil {
		tb.Fatalf("Create: %v", err)
	}
	tb.Cleanup(func() { w.Close() })
	return w, dir
}

func mapSegment(tb testing.TB, path string, id uint64, length int64) *Map {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	m, err := MapFile(f, id, length)
	if err != nil {
		tb.Fatalf("MapFile: %v", err)
	}
	tb.Cleanup(func() { m.Release() })
	return m
}

func TestWriterAppendFlushMap(t *testing.T) {
	w, dir := openSegment(t, 7)
	path := filepath.Join(dir, FileName(7))
	if w.ID() != 7 || w.Size() != HeaderSize || w.Buffered() != 0 {
		t.Fatalf("new writer: id %d size %d buffered %d", w.ID(), w.Size(), w.Buffered())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != HeaderSize || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new segment: %v, %v", fi, err)
	}
	if _, err := Create(vfs.OS{}, dir, 7, 0, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create of an existing id: %v, want fs.ErrExist", err)
	}

	recs := numbered(5)
	offs := make([]int64, len(recs))
	for i := range recs {
		offs[i] = w.Append(&recs[i])
	}
	if offs[0] != HeaderSize || w.Size() != HeaderSize {
		t.Fatalf("first record at %d, size before flush %d", offs[0], w.Size())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, wantOffs := buildSegment(t, 7, recs)
	if !bytes.Equal(data, want) || w.Size() != int64(len(want)) || w.Buffered() != 0 {
		t.Fatalf("file holds %d bytes (writer size %d), want %d", len(data), w.Size(), len(want))
	}
	for i := range offs {
		if offs[i] != int64(wantOffs[i]) {
			t.Fatalf("Append offset %d = %d, want %d", i, offs[i], wantOffs[i])
		}
	}

	// A mapping longer than the file, as the active segment has.
	m := mapSegment(t, path, 7, 64<<10)
	if m.ID() != 7 || m.Len() != 64<<10 {
		t.Fatalf("map id %d len %d", m.ID(), m.Len())
	}
	for i := range recs {
		got, err := m.Record(uint32(offs[i]), uint32(recs[i].Size()))
		if err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
		sameRecord(t, got, recs[i])
		if m.Seq(uint32(offs[i])) != recs[i].Seq {
			t.Fatalf("Seq(%d) = %d, want %d", offs[i], m.Seq(uint32(offs[i])), recs[i].Seq)
		}
	}
	// Bytes written after mapping are visible through it.
	more := Record{Kind: KindPut, Seq: 99, Key: []byte("later"), Value: []byte("written after mmap")}
	off := w.Append(&more)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := m.Record(uint32(off), uint32(more.Size()))
	if err != nil {
		t.Fatalf("record appended after mapping: %v", err)
	}
	sameRecord(t, got, more)
}

// TestMapRecordDamage: a read whose extent the index knows is never a torn
// tail. Whatever byte of the record is damaged, and whatever the damage,
// the error is ErrCorrupt.
func TestMapRecordDamage(t *testing.T) {
	recs := numbered(3)
	w, dir := openSegment(t, 1)
	offs := make([]int64, len(recs))
	for i := range recs {
		offs[i] = w.Append(&recs[i])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName(1))
	pristine, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	victim := 1
	size := recs[victim].Size()
	start := int(offs[victim])
	for i := start; i < start+size; i++ {
		for _, mask := range []byte{0x01, 0x80, pristine[i]} {
			if mask == 0 {
				continue
			}
			b := bytes.Clone(pristine)
			b[i] ^= mask
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := MapFile(f, 1, int64(len(b)))
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Record(uint32(start), uint32(size))
			m.Release()
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d (record offset %d) ^ %#x: %v, want ErrCorrupt", i, i-start, mask, err)
			}
		}
	}

	// Extents that do not match a record.
	if err := os.WriteFile(path, pristine, 0o600); err != nil {
		t.Fatal(err)
	}
	m := mapSegment(t, path, 1, int64(len(pristine)))
	for _, tt := range []struct {
		name      string
		off, size uint32
	}{
		{"size too small", uint32(start), uint32(size - 1)},
		{"size too large", uint32(start), uint32(size + 1)},
		{"offset inside a record", uint32(start + 1), uint32(size)},
		{"past the mapping", uint32(len(pristine)), 40},
		{"offset near 4 GiB", 0xFFFFFFF0, 0x20},
		{"zero size", uint32(start), 0},
		{"header", 0, HeaderSize},
	} {
		if _, err := m.Record(tt.off, tt.size); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Record(%d, %d) = %v, want ErrCorrupt", tt.name, tt.off, tt.size, err)
		}
	}
}

// TestOpenWriterOverwritesTail: reopening at the last good record writes the
// next record over a torn tail.
func TestOpenWriterOverwritesTail(t *testing.T) {
	recs := numbered(3)
	w, dir := openSegment(t, 2)
	for i := range recs {
		w.Append(&recs[i])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	end := w.Size()
	w.Close()
	path := filepath.Join(dir, FileName(2))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{Marker, 1, 0, 0, 9, 9}) // a torn record header
	f.Close()

	w2, err := OpenWriter(vfs.OS{}, path, 2, end)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	next := Record{Kind: KindPut, Seq: 4, Key: []byte("after"), Value: []byte("recovery")}
	if off := w2.Append(&next); off != end {
		t.Fatalf("record after reopen at %d, want %d", off, end)
	}
	if err := w2.Flush(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	got, stop, err := scanAll(data)
	if err != nil || len(got) != 4 || stop != len(data) {
		t.Fatalf("after overwrite: %d records, Stop() = %d, %v", len(got), stop, err)
	}
	sameRecord(t, got[3].rec, next)
}

func TestMapFileBadLength(t *testing.T) {
	w, _ := openSegment(t, 1)
	for _, n := range []int64{0, -1, 4*MaxValueLen + 1} {
		if m, err := MapFile(w.File(), 1, n); err == nil {
			m.Release()
			t.Errorf("MapFile(%d) succeeded", n)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFileAtomic(vfs.OS{}, dir, "f", []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(vfs.OS{}, dir, "f", []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "f"))
	if err != nil || string(b) != "two" {
		t.Fatalf("file holds %q, %v", b, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "f"))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), TempInfix) {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files, want 1", len(entries))
	}
	// A directory that does not exist: an error, nothing created.
	if err := WriteFileAtomic(vfs.OS{}, filepath.Join(dir, "missing"), "f", nil, 0o600); err == nil {
		t.Fatalf("WriteFileAtomic into a missing directory succeeded")
	}
}

// TestSyncClosed: syncing a writer whose file a roll already closed says
// so with os.ErrClosed, which the engine's interval syncer ignores.
func TestSyncClosed(t *testing.T) {
	w, err := Create(vfs.OS{}, t.TempDir(), 1, 0, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Sync after Close: %v, want os.ErrClosed", err)
	}
}
