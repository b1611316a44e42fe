package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Map is a read-only shared memory mapping of a segment file. Reads through
// it cost no system call and no allocation; the page cache backs it, so bytes
// written to the file with pwrite are visible through the mapping at once.
//
// A Map may be longer than its file (the active segment is mapped at its full
// capacity before it is filled). Touching a mapped page that lies wholly past
// the end of the file raises SIGBUS, so callers read only what they know was
// written. Map is reference counted so that a reader that outlives the
// engine's use of a segment (a Scan in progress) keeps it mapped.
type Map struct {
	id   uint64
	data []byte
	refs atomic.Int32
}

// MapFile maps length bytes of f (at least its size) read-only. The mapping
// stays valid after f is closed. It starts with one reference.
func MapFile(f *os.File, id uint64, length int64) (*Map, error) {
	if length <= 0 || length > MaxValueLen*4 {
		return nil, fmt.Errorf("segment %d: cannot map %d bytes", id, length)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var data []byte
	var merr error
	if err := rc.Control(func(fd uintptr) {
		data, merr = unix.Mmap(int(fd), 0, int(length), unix.PROT_READ, unix.MAP_SHARED)
	}); err != nil {
		return nil, err
	}
	if merr != nil {
		return nil, fmt.Errorf("segment %d: mmap: %w", id, merr)
	}
	m := &Map{id: id, data: data}
	m.refs.Store(1)
	return m, nil
}

// ID returns the segment id.
func (m *Map) ID() uint64 { return m.id }

// Header decodes the segment header at the start of the mapping.
func (m *Map) Header() (Header, error) {
	if len(m.data) < HeaderSize {
		return Header{}, fmt.Errorf("%w: segment %d is mapped short of its header", ErrTruncated, m.id)
	}
	return DecodeHeader(m.data[:HeaderSize])
}

// Len returns the mapping's length.
func (m *Map) Len() int { return len(m.data) }

// Bytes returns the first n mapped bytes. The caller must know that the file
// holds at least n bytes.
func (m *Map) Bytes(n int) []byte { return m.data[:n] }

// Record decodes the record of size bytes at off, checking its marker,
// lengths and checksum. The returned slices alias the mapping: copy what must
// outlive the caller's hold on the Map.
func (m *Map) Record(off, size uint32) (Record, error) {
	end := uint64(off) + uint64(size)
	if end > uint64(len(m.data)) {
		return Record{}, fmt.Errorf("%w: segment %d: record [%d, %d) past mapping of %d bytes", ErrCorrupt, m.id, off, end, len(m.data))
	}
	rec, n, err := DecodeRecord(m.data[off:end])
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			// The extent is known (the index or a hint gave it), so a
			// record that reads as cut short or zeroed inside it is
			// damage, not a torn tail.
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return Record{}, fmt.Errorf("segment %d offset %d: %w", m.id, off, err)
	}
	if n != int(size) {
		return Record{}, fmt.Errorf("%w: segment %d offset %d: record is %d bytes, index says %d", ErrCorrupt, m.id, off, n, size)
	}
	return rec, nil
}

// Acquire takes a reference. Callers must already hold one (directly or
// through the engine's lock) so that the count cannot have reached zero.
func (m *Map) Acquire() { m.refs.Add(1) }

// Release drops a reference and unmaps when it was the last.
func (m *Map) Release() error {
	if m.refs.Add(-1) != 0 {
		return nil
	}
	data := m.data
	m.data = nil
	return unix.Munmap(data)
}

// Seq returns the sequence number of the record at off, which the caller
// knows to be a whole record (it came from a scan or a hint).
func (m *Map) Seq(off uint32) uint64 {
	return binary.LittleEndian.Uint64(m.data[off+offSeq:])
}
