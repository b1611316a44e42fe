package segment

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/kennel-cache/kennel/internal/vfs"
)

// Suffix is the file name suffix of segment files.
const Suffix = ".seg"

// FileName returns the file name of segment id: 16 hex digits, so that names
// sort in id order, and ".seg".
func FileName(id uint64) string { return fmt.Sprintf("%016x%s", id, Suffix) }

// ParseFileName returns the id in a segment file name, and whether name is one.
func ParseFileName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, Suffix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil
}

// Writer appends records to the active segment. Records are encoded into a
// buffer and written with one pwrite per Flush, so a group of records costs
// one system call. Writer is not safe for concurrent use; the engine
// serialises appends.
type Writer struct {
	f    vfs.File
	id   uint64
	size int64  // bytes of the file that hold header and whole records
	buf  []byte // encoded records not yet written
}

// Create makes a new segment file in dir through fsys with O_EXCL (ids
// are never reused, so an existing file is an error), writes and syncs its
// header (with the given header flags), and syncs the directory so the new
// name survives a crash before it is used.
func Create(fsys vfs.FS, dir string, id uint64, flags uint32, perm os.FileMode) (*Writer, error) {
	path := filepath.Join(dir, FileName(id))
	f, err := fsys.Create(path, perm)
	if err != nil {
		return nil, err
	}
	hdr := AppendHeader(nil, Header{Version: FormatVersion, Flags: flags, ID: id})
	if _, err := f.WriteAt(hdr, 0); err != nil {
		f.Close()
		fsys.Remove(path)
		return nil, err
	}
	if err := f.Datasync(); err != nil {
		f.Close()
		fsys.Remove(path)
		return nil, err
	}
	if err := fsys.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &Writer{f: f, id: id, size: HeaderSize}, nil
}

// OpenWriter reopens the segment at path through fsys for appending after
// its first size bytes (its header and whole records, as a scan found
// them). Bytes past size (a torn tail) are overwritten by the next Flush.
func OpenWriter(fsys vfs.FS, path string, id uint64, size int64) (*Writer, error) {
	f, err := fsys.OpenWrite(path)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, id: id, size: size}, nil
}

// ID returns the segment id.
func (w *Writer) ID() uint64 { return w.id }

// Size returns the number of bytes written: where the next record will land
// once buffered records are flushed.
func (w *Writer) Size() int64 { return w.size }

// SetSize moves the write position to size, which must hold no buffered
// records: another process appended to the segment, and the next record
// lands after its records.
func (w *Writer) SetSize(size int64) {
	if len(w.buf) != 0 {
		panic("segment: SetSize with buffered records")
	}
	w.size = size
}

// Buffered returns the number of encoded bytes waiting for Flush.
func (w *Writer) Buffered() int { return len(w.buf) }

// File returns the open segment file.
func (w *Writer) File() *os.File { return w.f.OS() }

// Append encodes r into the buffer and returns the file offset it will have
// once flushed.
func (w *Writer) Append(r *Record) int64 {
	off := w.size + int64(len(w.buf))
	w.buf = AppendRecord(w.buf, r)
	return off
}

// AppendRaw buffers an encoded record as it is (compaction copies records
// byte for byte, checksum and sequence number included) and returns the
// file offset it will have once flushed.
func (w *Writer) AppendRaw(rec []byte) int64 {
	off := w.size + int64(len(w.buf))
	w.buf = append(w.buf, rec...)
	return off
}

// maxRetainedBuffer bounds the buffer kept between flushes, so one large
// value does not pin its size in memory for the life of the writer.
const maxRetainedBuffer = 1 << 20

// Flush writes the buffered records with one pwrite. On error nothing is
// counted as written: the buffer is dropped and the next Flush writes at the
// same offset, over whatever part of the failed write reached the file.
// That part is zeroed first: a shorter write over it would leave whole
// records of the failed write after the segment's last one, and a scan
// that resynchronises past a damaged tail (Open's) would take them back,
// over writes acknowledged since. The part is found by the file's size,
// not by the count the write returns: a write that runs out of space on
// tmpfs fills the pages the file has and reports that it wrote nothing.
// Zeroing bytes the file holds needs no new space.
func (w *Writer) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.f.WriteAt(w.buf, w.size)
	if err == nil {
		w.size += int64(len(w.buf))
	} else if fi, serr := w.f.OS().Stat(); serr == nil && fi.Size() > w.size {
		n := min(fi.Size()-w.size, int64(len(w.buf)))
		clear(w.buf[:n])
		w.f.WriteAt(w.buf[:n], w.size) // best effort: the write's error stands
	}
	if cap(w.buf) > maxRetainedBuffer {
		w.buf = nil
	} else {
		w.buf = w.buf[:0]
	}
	return err
}

// Sync makes the written records durable (fdatasync: the file's data and
// size, not its timestamps).
func (w *Writer) Sync() error { return w.f.Datasync() }

// Close closes the file without syncing it.
func (w *Writer) Close() error { return w.f.Close() }

// WriteFileAtomic publishes data under dir/name through fsys the durable
// way: write a temporary file created with O_EXCL, sync it, rename it over
// name, sync the directory. A crash leaves either the old file or the new
// one, plus at worst a temporary file (named name + ".tmp-*") that open
// cleans up.
func WriteFileAtomic(fsys vfs.FS, dir, name string, data []byte, perm os.FileMode) error {
	f, err := fsys.CreateTemp(dir, name+TempInfix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		fsys.Remove(tmp)
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Datasync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		fsys.Remove(tmp)
		return err
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, name)); err != nil {
		fsys.Remove(tmp)
		return err
	}
	return fsys.SyncDir(dir)
}

// TempInfix marks temporary files: anything whose name contains it is an
// unfinished write that a crash left behind.
const TempInfix = ".tmp-"

// ReadFileBounded reads a whole file that must not exceed limit bytes, so a
// damaged or hostile file costs an error, not memory. It does not follow a
// symlink.
func ReadFileBounded(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d expected", ErrCorrupt, path, fi.Size(), limit)
	}
	b := make([]byte, fi.Size())
	_, err = io.ReadFull(f, b)
	return b, err
}
