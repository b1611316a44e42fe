package workload

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
)

const (
	// KeySize is the length of every key the workloads write.
	KeySize = 16
	// DefaultValueSize is the value length of the small-record workloads.
	DefaultValueSize = 100
	// valueHeader is the part of a value that identifies it: its index
	// (8 bytes) and its version (4 bytes).
	valueHeader = 12
)

// mix64 is splitmix64's finaliser: a bijection on uint64 that spreads
// consecutive inputs over the whole range.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Key writes the key of record i into dst, which must hold KeySize bytes,
// and returns dst[:KeySize].
func Key(dst []byte, i uint64) []byte {
	dst = dst[:KeySize]
	binary.BigEndian.PutUint64(dst[0:8], mix64(i))
	binary.BigEndian.PutUint64(dst[8:16], i)
	return dst
}

// Value writes version ver of record i's value, size bytes long, into dst
// (reallocating it if it is too short) and returns it. size must be at least
// valueHeader.
func Value(dst []byte, i uint64, ver uint32, size int) []byte {
	if cap(dst) < size {
		dst = make([]byte, size)
	}
	dst = dst[:size]
	binary.BigEndian.PutUint64(dst[0:8], i)
	binary.BigEndian.PutUint32(dst[8:12], ver)
	// The filler depends on i so that values do not compress to nothing in
	// stores that compress blocks, yet costs little to make.
	x := mix64(i ^ uint64(ver)<<40)
	for p := valueHeader; p < size; p += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x)
		copy(dst[p:], w[:])
		x = mix64(x)
	}
	return dst
}

// checkValue returns an error unless v is a value of record i, size bytes
// long (of any version).
func checkValue(v []byte, i uint64, size int) error {
	if len(v) != size {
		return fmt.Errorf("record %d: value is %d bytes, want %d", i, len(v), size)
	}
	if got := binary.BigEndian.Uint64(v[0:8]); got != i {
		return fmt.Errorf("record %d: got the value of record %d", i, got)
	}
	return nil
}

// newRand returns a deterministic generator for goroutine or process g of a
// workload, so that runs are repeatable.
func newRand(seed uint64, g int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(g)+1))
}

// zipfPrime scrambles Zipf ranks into record indexes: rank r names record
// (r*zipfPrime) mod n, a permutation of 0..n-1 for any n below the prime,
// so that the hot records are spread over the key space rather than being
// the first ones loaded.
const zipfPrime = 2147483647 // 2^31-1

// zipfKeys draws record indexes in [0, n) with Zipf-distributed popularity.
type zipfKeys struct {
	z *rand.Zipf
	n uint64
}

// newZipfKeys returns a Zipf key generator with exponent s (> 1) over n
// records.
func newZipfKeys(r *rand.Rand, s float64, n int) *zipfKeys {
	return &zipfKeys{z: rand.NewZipf(r, s, 1, uint64(n-1)), n: uint64(n)}
}

func (k *zipfKeys) next() uint64 {
	return (k.z.Uint64() * zipfPrime) % k.n
}

// permute returns the j-th element of a fixed permutation of 0..n-1; the
// churn workload overwrites records in this order.
func permute(j, n uint64) uint64 {
	return (j * zipfPrime) % n
}
