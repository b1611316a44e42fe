package sharedstate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// Size is the length of the state file: one page.
const Size = 4096

// Version is the layout version this package reads and writes.
const Version = 1

// File layout (little endian; every field is accessed in the live mapping only
// as a whole 64-bit word, atomically, the header included):
//
//	 0  magic "kennelSF"
//	 8  version u32
//	12  size u32 (Size)
//	16  checksum u64: xxhash64 of [0, 16)
//	64  position u64: active segment id << 32 | end of its last published record
//	72  generation u64: bumped by Init and by compaction
//	128 next sequence number u64
//	136 next segment id u64
//	144 writing u64: 1 while the append lock holder writes past the position
//	152 failed sync u64: id of a segment whose fdatasync failed (0: none)
//	160 compacting u64: 1 while the compaction lock holder rewrites segments
//
// Position and generation, read before every Get, sit on their own cache
// line, away from the counters appenders change.
const (
	offVersion    = 8
	offSize       = 12
	offChecksum   = 16
	headerLen     = 24
	offPosition   = 64
	offGeneration = 72
	offNextSeq    = 128
	offNextSegID  = 136
	offWriting    = 144
	offFailedSync = 152
	offCompacting = 160
)

var magic = [8]byte{'k', 'e', 'n', 'n', 'e', 'l', 'S', 'F'}

var (
	// ErrUninitialized means the file has not been written yet: no process
	// has finished opening the directory read-write.
	ErrUninitialized = errors.New("kennel: shared state file not initialised")
	// ErrCorrupt means the header is not a state file's.
	ErrCorrupt = errors.New("kennel: shared state file corrupt")
	// ErrVersion means the file has another layout version.
	ErrVersion = errors.New("kennel: shared state file has another version")
)

// Position is a point in the log: a segment id and an offset in it, packed
// in one word so that it is published and read atomically.
type Position uint64

// MakePosition packs a segment id and an end offset.
func MakePosition(segment uint32, end uint32) Position {
	return Position(uint64(segment)<<32 | uint64(end))
}

// Segment returns the segment id.
func (p Position) Segment() uint32 { return uint32(p >> 32) }

// End returns the offset just past the last published record.
func (p Position) End() uint32 { return uint32(p) }

func (p Position) String() string { return fmt.Sprintf("%d:%d", p.Segment(), p.End()) }

// Header is the decoded content of a state file, for tools and tests.
type Header struct {
	Version    uint32
	Position   Position
	Generation uint64
	NextSeq    uint64
	NextSegID  uint64
	Writing    bool
	FailedSync uint64
	Compacting bool
}

// Decode checks b as a state file (magic, then version, then checksum, then
// size) and returns its fields. It reads plain words, so it is for a copy of
// the file, not for the live mapping.
func Decode(b []byte) (Header, error) {
	if len(b) < Size {
		if allZero(b) {
			return Header{}, ErrUninitialized
		}
		return Header{}, fmt.Errorf("%w: %d bytes, want %d", ErrCorrupt, len(b), Size)
	}
	if err := checkHeader(b); err != nil {
		return Header{}, err
	}
	le := binary.LittleEndian
	return Header{
		Version:    le.Uint32(b[offVersion:]),
		Position:   Position(le.Uint64(b[offPosition:])),
		Generation: le.Uint64(b[offGeneration:]),
		NextSeq:    le.Uint64(b[offNextSeq:]),
		NextSegID:  le.Uint64(b[offNextSegID:]),
		Writing:    le.Uint64(b[offWriting:]) != 0,
		FailedSync: le.Uint64(b[offFailedSync:]),
		Compacting: le.Uint64(b[offCompacting:]) != 0,
	}, nil
}

// checkHeader checks the header at the start of b (at least headerLen bytes).
// A zero magic means "not written yet", whatever follows it: Init stores the
// magic last, so a reader racing the first Init sees either no magic or a
// whole header.
func checkHeader(b []byte) error {
	if [8]byte(b[:8]) != magic {
		if allZero(b[:8]) {
			return ErrUninitialized
		}
		return fmt.Errorf("%w: bad magic %q", ErrCorrupt, b[:8])
	}
	if v := binary.LittleEndian.Uint32(b[offVersion:]); v != Version {
		return fmt.Errorf("%w: version %d, this kennel reads %d", ErrVersion, v, Version)
	}
	if xxhash.Sum64(b[:offChecksum]) != binary.LittleEndian.Uint64(b[offChecksum:]) {
		return fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	if n := binary.LittleEndian.Uint32(b[offSize:]); n != Size {
		return fmt.Errorf("%w: size field %d, want %d", ErrCorrupt, n, Size)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// File is a mapped state file. Its methods are safe for concurrent use.
type File struct {
	mem      []byte
	readOnly bool

	position, generation, nextSeq, nextSegID, writing, failedSync, compacting *atomic.Uint64
}

// Open maps the state file at path, creating it (mode perm, zero-filled) if
// it does not exist and readOnly is false. It does not check the content:
// Check does. A read-only Open of a missing or short file fails with
// ErrUninitialized (wrapped).
func Open(path string, perm os.FileMode, readOnly bool) (*File, error) {
	flags, prot := os.O_RDWR|os.O_CREATE, unix.PROT_READ|unix.PROT_WRITE
	if readOnly {
		flags, prot = os.O_RDONLY, unix.PROT_READ
	}
	// O_NONBLOCK: a read-only open of a FIFO planted under the name would
	// otherwise block until some process opened it for writing. It changes
	// nothing for a regular file, and anything else is refused below.
	f, err := os.OpenFile(path, flags|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, perm)
	if err != nil {
		if readOnly && errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %v", ErrUninitialized, err)
		}
		return nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, path)
	}
	if fi.Size() < Size && readOnly {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrUninitialized, path, fi.Size())
	}
	if !readOnly {
		if err := allocate(f, fi.Size()); err != nil {
			return nil, fmt.Errorf("allocate %s: %w", path, err)
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, Size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	s := &File{mem: mem, readOnly: readOnly}
	s.position = s.word(offPosition)
	s.generation = s.word(offGeneration)
	s.nextSeq = s.word(offNextSeq)
	s.nextSegID = s.word(offNextSegID)
	s.writing = s.word(offWriting)
	s.failedSync = s.word(offFailedSync)
	s.compacting = s.word(offCompacting)
	return s, nil
}

// allocate gives the file, now size bytes, its Size bytes with their disk
// blocks. Setting the size alone (ftruncate) leaves a hole: a store to a
// page of the mapping that the filesystem then cannot back (a full disk)
// kills the process with SIGBUS, where fallocate fails with ENOSPC. Both are
// safe if two processes race: they extend with zeros to the same size, and
// neither changes or shrinks what the other wrote.
func allocate(f *os.File, size int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, Size)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EOPNOTSUPP, unix.ENOSYS:
			// A filesystem without fallocate: its blocks come with the
			// first store, as before.
			if size < Size {
				return f.Truncate(Size)
			}
			return nil
		}
		return err
	}
}

// word returns the 64-bit word at off. mmap returns page-aligned memory and
// every offset is a multiple of 8, so the word is aligned for atomics.
func (s *File) word(off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&s.mem[off]))
}

// header loads the live header word by word, magic first, so that it pairs
// with Init, which stores the magic last.
func (s *File) header() [headerLen]byte {
	var b [headerLen]byte
	for off := 0; off < headerLen; off += 8 {
		binary.LittleEndian.PutUint64(b[off:], s.word(off).Load())
	}
	return b
}

// Check validates the header.
func (s *File) Check() error {
	b := s.header()
	return checkHeader(b[:])
}

// mustWrite panics when s is a read-only mapping: a store to it would kill
// the process with a fault that no recover catches.
func (s *File) mustWrite() {
	if s.readOnly {
		panic("sharedstate: write to a read-only mapping")
	}
}

// Init writes the header and the fields of a freshly rebuilt directory and
// bumps the generation. Only the first process to open a directory calls it,
// while no other process writes; read-only processes may be reading, so the
// fields are stored before the header and the header's magic last: a reader
// sees either ErrUninitialized or a valid header with the new fields.
func (s *File) Init(pos Position, nextSeq, nextSegID uint64) {
	s.mustWrite()
	s.writing.Store(0)
	s.failedSync.Store(0)
	s.compacting.Store(0)
	s.nextSeq.Store(nextSeq)
	s.nextSegID.Store(nextSegID)
	s.position.Store(uint64(pos))
	var hdr [headerLen]byte
	le := binary.LittleEndian
	copy(hdr[:], magic[:])
	le.PutUint32(hdr[offVersion:], Version)
	le.PutUint32(hdr[offSize:], Size)
	le.PutUint64(hdr[offChecksum:], xxhash.Sum64(hdr[:offChecksum]))
	if s.header() != hdr {
		// Hide the old header while it is rewritten. A valid one (the
		// common case) stays: it is rewritten with equal words.
		s.word(0).Store(0)
	}
	s.word(offVersion).Store(le.Uint64(hdr[offVersion:]))
	s.word(offChecksum).Store(le.Uint64(hdr[offChecksum:]))
	s.word(0).Store(le.Uint64(hdr[:]))
	s.generation.Add(1)
}

// Position returns the published end of the log.
func (s *File) Position() Position { return Position(s.position.Load()) }

// Publish makes pos the published end of the log. Callers hold the append lock.
func (s *File) Publish(pos Position) {
	s.mustWrite()
	s.position.Store(uint64(pos))
}

// Generation returns the directory's generation.
func (s *File) Generation() uint64 { return s.generation.Load() }

// BumpGeneration tells every process to reload the directory, and returns
// the new generation.
func (s *File) BumpGeneration() uint64 {
	s.mustWrite()
	return s.generation.Add(1)
}

// TakeSeqs reserves n sequence numbers and returns the first.
func (s *File) TakeSeqs(n uint64) uint64 {
	s.mustWrite()
	return s.nextSeq.Add(n) - n
}

// TakeSegmentID reserves a segment id. Ids are never reused.
func (s *File) TakeSegmentID() uint64 {
	s.mustWrite()
	return s.nextSegID.Add(1) - 1
}

// SetWriting records whether the append lock holder is writing past the
// published position.
func (s *File) SetWriting(on bool) {
	s.mustWrite()
	var v uint64
	if on {
		v = 1
	}
	s.writing.Store(v)
}

// Writing reports whether the last append lock holder was writing past the
// published position when it let go of the lock: it died mid-write.
func (s *File) Writing() bool { return s.writing.Load() != 0 }

// SetFailedSync records that an fdatasync of segment id failed: the segment
// must be sealed, not synced again or appended to.
func (s *File) SetFailedSync(id uint64) {
	s.mustWrite()
	s.failedSync.Store(id)
}

// FailedSync returns the id of the segment whose sync failed, or 0.
func (s *File) FailedSync() uint64 { return s.failedSync.Load() }

// SetCompacting records whether the compaction lock holder is rewriting
// segments.
func (s *File) SetCompacting(on bool) {
	s.mustWrite()
	var v uint64
	if on {
		v = 1
	}
	s.compacting.Store(v)
}

// Compacting reports whether the last compaction lock holder was rewriting
// segments when it let go of the lock: it died mid-compaction, and what
// other processes know of the directory may be short of what it wrote.
func (s *File) Compacting() bool { return s.compacting.Load() != 0 }

// Snapshot decodes a copy of the mapped file.
func (s *File) Snapshot() (Header, error) {
	b := make([]byte, Size)
	hdr := s.header()
	copy(b, hdr[:])
	le := binary.LittleEndian
	for _, w := range []struct {
		off int
		v   *atomic.Uint64
	}{{offPosition, s.position}, {offGeneration, s.generation}, {offNextSeq, s.nextSeq},
		{offNextSegID, s.nextSegID}, {offWriting, s.writing}, {offFailedSync, s.failedSync},
		{offCompacting, s.compacting}} {
		le.PutUint64(b[w.off:], w.v.Load())
	}
	return Decode(b)
}

// Close unmaps the file. No method may be called afterwards.
func (s *File) Close() error {
	mem := s.mem
	s.mem = nil
	return unix.Munmap(mem)
}
