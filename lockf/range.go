package lockf

import (
	"fmt"
	"math"

	"github.com/cespare/xxhash/v2"
)

// Mode is the kind of lock held on a range.
type Mode uint8

// The zero Mode is invalid, so that a forgotten mode is an error rather than
// a silently chosen default.
const (
	// Shared locks coexist with other Shared locks on the same range.
	Shared Mode = iota + 1
	// Exclusive locks exclude every other lock on an overlapping range.
	Exclusive
)

// String returns "shared" or "exclusive".
func (m Mode) String() string {
	switch m {
	case Shared:
		return "shared"
	case Exclusive:
		return "exclusive"
	default:
		return fmt.Sprintf("Mode(%d)", uint8(m))
	}
}

func (m Mode) valid() bool { return m == Shared || m == Exclusive }

// Range is the byte range [Start, Start+Len) of the lock file. The bytes need
// not exist: the lock file stays empty, a range is only a name.
//
// Len must be at least 1. fcntl reads a length of 0 as "to the end of the
// file, however far it grows", which would cover every key lock at once, so a
// zero length is rejected with ErrInvalidRange instead of being passed on.
type Range struct {
	Start int64
	Len   int64
}

// End returns the first offset past r.
func (r Range) End() int64 { return r.Start + r.Len }

// Overlaps reports whether r and o share at least one byte. Both ranges must
// be valid.
func (r Range) Overlaps(o Range) bool {
	return r.Start < o.End() && o.Start < r.End()
}

// String formats r as a half-open interval, "[start,end)".
func (r Range) String() string {
	return fmt.Sprintf("[%d,%d)", r.Start, r.Start+r.Len)
}

// Validate returns an error wrapping ErrInvalidRange unless r has Start >= 0,
// Len >= 1 and an end that fits in an int64.
func (r Range) Validate() error {
	switch {
	case r.Len < 1:
		return fmt.Errorf("%w: length %d (must be at least 1; 0 would mean the whole file)", ErrInvalidRange, r.Len)
	case r.Start < 0:
		return fmt.Errorf("%w: negative start %d", ErrInvalidRange, r.Start)
	case r.Start > math.MaxInt64-r.Len:
		return fmt.Errorf("%w: start %d + length %d overflows", ErrInvalidRange, r.Start, r.Len)
	}
	return nil
}

// The lock file is divided into two regions. These offsets are part of the
// on-disk protocol: every process that shares a cache directory, whatever its
// kennel version, must agree on them, or their locks stop excluding each other.
// Changing any of them requires a format version bump.
const (
	// ReservedLen is the size of the region [0, ReservedLen) kept for named
	// engine locks such as AppendRange and CompactionRange. 1 MiB of names is
	// far more than the engine will ever need, and leaves room to add locks
	// without moving the key region.
	ReservedLen int64 = 1 << 20

	// KeyRegionStart is the first offset used by KeyRange.
	KeyRegionStart int64 = ReservedLen

	// KeyRegionLen is the number of distinct one-byte key ranges. With 2^40
	// slots, two keys locked at the same moment share a slot with probability
	// about n²/2^41 for n keys locked at once (below 10^-6 for a thousand), and
	// KeyRegionStart+KeyRegionLen stays far below the largest off_t.
	KeyRegionLen int64 = 1 << 40
)

// Offsets of the named locks inside the reserved region. Wire format: see above.
const (
	appendOffset     int64 = 0
	compactionOffset int64 = 1
	openOffset       int64 = 2
	usersOffset      int64 = 3
	sidecarOffset    int64 = 4
)

// AppendRange returns the range of the append lock, held exclusively while a
// process appends to the active segment (DESIGN.md, multi-process rule 1).
func AppendRange() Range { return Range{Start: appendOffset, Len: 1} }

// CompactionRange returns the range of the compaction lock, held exclusively
// while a process compacts the directory (DESIGN.md, multi-process rule 3).
func CompactionRange() Range { return Range{Start: compactionOffset, Len: 1} }

// OpenRange returns the range held exclusively while a process opens the
// directory read-write: it serialises openers, so that exactly one of them
// finds itself first and recovers the directory while no one else writes.
func OpenRange() Range { return Range{Start: openOffset, Len: 1} }

// UsersRange returns the range every process that has the directory open
// read-write holds, shared, for as long as it has it open (exclusive for
// Options.Exclusive). An opener that can lock it exclusively is alone.
func UsersRange() Range { return Range{Start: usersOffset, Len: 1} }

// SidecarRange returns the range that guards sidecar files not yet in the
// log: a writer holds it shared from the moment its sidecar file has its
// name until the record that refers to it is published, and the process
// deleting unreferenced sidecars holds it exclusively while it learns which
// are referenced, so it never takes a file in flight for an orphan.
func SidecarRange() Range { return Range{Start: sidecarOffset, Len: 1} }

// KeyRange returns the one-byte range that stands for key, for the per-key
// lock of GetOrCreate. It is a pure function of the key bytes (xxhash64 with
// seed 0), so every process maps a key to the same byte, and it never falls
// inside the reserved region [0, ReservedLen).
//
// Distinct keys may map to the same byte. A collision costs only false
// sharing: two unrelated keys wait for each other while both are locked; it
// never lets two holders of the same key in at once.
func KeyRange(key []byte) Range {
	h := xxhash.Sum64(key)
	return Range{Start: KeyRegionStart + int64(h%uint64(KeyRegionLen)), Len: 1}
}
