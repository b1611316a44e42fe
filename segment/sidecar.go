package segment

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
)

// SidecarDir is the folder of a cache directory that holds sidecar files:
// values stored as files of their own, named by SidecarName.
const SidecarDir = "sidecars"

// SidecarName names one sidecar file: 128 random bits, so that writers in
// any number of processes never pick the same name (the engine also renames
// with RENAME_NOREPLACE, so a collision could only fail, never overwrite).
type SidecarName [16]byte

// NewSidecarName returns a fresh random name.
func NewSidecarName() SidecarName {
	var n SidecarName
	rand.Read(n[:]) // never fails (crypto/rand)
	return n
}

// String returns the file name: 32 lower-case hex digits.
func (n SidecarName) String() string { return hex.EncodeToString(n[:]) }

// ParseSidecarName returns the name a sidecar file name encodes, and whether
// it is one.
func ParseSidecarName(s string) (SidecarName, bool) {
	var n SidecarName
	if len(s) != 2*len(n) {
		return n, false
	}
	if _, err := hex.Decode(n[:], []byte(s)); err != nil || n.String() != s {
		return n, false // not hex, or not lower case
	}
	return n, true
}

// Sidecar is the value of a put-sidecar record: which file holds the value
// and how to check it. The file holds exactly the value's bytes.
//
//	+-------+---------+---------+---------+
//	| flags | name    | size    | sum     |
//	| u8    | 16 B    | u64 LE  | u64 LE  |
//	+-------+---------+---------+---------+
//	0       1         17        25        33
//
// flags bit 0 (SidecarHashed) says sum is the xxhash64 of the file's
// bytes; without it only the size is checked (a file moved in by rename is
// never read, so it has no sum). Other flag bits are reserved and must be 0.
type Sidecar struct {
	Name   SidecarName
	Size   int64
	Sum    uint64
	Hashed bool
}

// SidecarLen is the length of an encoded Sidecar.
const SidecarLen = 33

// SidecarHashed is the flag bit saying Sidecar.Sum is set.
const SidecarHashed = 1 << 0

// MaxSidecarSize bounds the size a descriptor may claim, so that a damaged
// one cannot make a reader allocate or seek absurdly.
const MaxSidecarSize = math.MaxInt64 >> 1

// AppendSidecar encodes s after dst.
func AppendSidecar(dst []byte, s Sidecar) []byte {
	var flags byte
	if s.Hashed {
		flags |= SidecarHashed
	}
	dst = append(dst, flags)
	dst = append(dst, s.Name[:]...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(s.Size))
	return binary.LittleEndian.AppendUint64(dst, s.Sum)
}

// DecodeSidecar decodes the value of a put-sidecar record.
func DecodeSidecar(b []byte) (Sidecar, error) {
	if len(b) != SidecarLen {
		return Sidecar{}, fmt.Errorf("%w: sidecar descriptor of %d bytes, want %d", ErrCorrupt, len(b), SidecarLen)
	}
	flags := b[0]
	if flags&^SidecarHashed != 0 {
		return Sidecar{}, fmt.Errorf("%w: sidecar descriptor flags %#x", ErrCorrupt, flags)
	}
	var s Sidecar
	copy(s.Name[:], b[1:17])
	size := binary.LittleEndian.Uint64(b[17:25])
	if size > MaxSidecarSize {
		return Sidecar{}, fmt.Errorf("%w: sidecar descriptor size %d", ErrCorrupt, size)
	}
	s.Size = int64(size)
	s.Sum = binary.LittleEndian.Uint64(b[25:33])
	s.Hashed = flags&SidecarHashed != 0
	if !s.Hashed && s.Sum != 0 {
		return Sidecar{}, fmt.Errorf("%w: sidecar descriptor has a sum but no hashed flag", ErrCorrupt)
	}
	return s, nil
}
