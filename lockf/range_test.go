package lockf_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kennel-cache/kennel/internal/testseed"

	"github.com/kennel-cache/kennel/lockf"
)

func TestRangeValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    lockf.Range
		ok   bool
	}{
		{"one byte", lockf.Range{Start: 0, Len: 1}, true},
		{"wide", lockf.Range{Start: 100, Len: 1 << 30}, true},
		{"up to max", lockf.Range{Start: math.MaxInt64 - 1, Len: 1}, true},
		{"zero length means whole file", lockf.Range{Start: 5, Len: 0}, false},
		{"zero value", lockf.Range{}, false},
		{"negative length", lockf.Range{Start: 5, Len: -1}, false},
		{"negative start", lockf.Range{Start: -1, Len: 1}, false},
		{"end overflows", lockf.Range{Start: math.MaxInt64, Len: 1}, false},
		{"huge both", lockf.Range{Start: math.MaxInt64 / 2, Len: math.MaxInt64/2 + 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate(%v) = %v, want nil", tc.r, err)
			}
			if !tc.ok && !errors.Is(err, lockf.ErrInvalidRange) {
				t.Fatalf("Validate(%v) = %v, want ErrInvalidRange", tc.r, err)
			}
		})
	}
}

func TestRangeOverlaps(t *testing.T) {
	a := lockf.Range{Start: 10, Len: 5} // [10,15)
	for _, tc := range []struct {
		b    lockf.Range
		want bool
	}{
		{lockf.Range{Start: 10, Len: 5}, true},
		{lockf.Range{Start: 14, Len: 1}, true},
		{lockf.Range{Start: 15, Len: 1}, false},
		{lockf.Range{Start: 9, Len: 1}, false},
		{lockf.Range{Start: 9, Len: 2}, true},
		{lockf.Range{Start: 0, Len: 100}, true},
	} {
		if got := a.Overlaps(tc.b); got != tc.want {
			t.Errorf("%v.Overlaps(%v) = %v, want %v", a, tc.b, got, tc.want)
		}
		if got := tc.b.Overlaps(a); got != tc.want {
			t.Errorf("%v.Overlaps(%v) = %v, want %v", tc.b, a, got, tc.want)
		}
	}
}

func TestNamedRangesInReservedRegion(t *testing.T) {
	named := []lockf.Range{lockf.AppendRange(), lockf.CompactionRange()}
	for i, r := range named {
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		if r.Start < 0 || r.End() > lockf.ReservedLen {
			t.Errorf("named range %v outside reserved region [0,%d)", r, lockf.ReservedLen)
		}
		for _, o := range named[i+1:] {
			if r.Overlaps(o) {
				t.Errorf("named ranges %v and %v overlap", r, o)
			}
		}
	}
}

// TestKeyRangePinned pins the key-to-byte mapping: it is shared by every
// process using a directory, so changing it is a format change. The value for
// the empty key follows from the published xxh64 test vector
// 0xEF46DB3751D8E999: 1<<20 + (0xEF46DB3751D8E999 mod 1<<40).
func TestKeyRangePinned(t *testing.T) {
	for _, tc := range []struct {
		key   string
		start int64
	}{
		{"", 1<<20 + 0x3751D8E999},
		{"", 237597419929},
		{"kennel", 748012512699},
		{"user:42", 539704349122},
	} {
		got := lockf.KeyRange([]byte(tc.key))
		want := lockf.Range{Start: tc.start, Len: 1}
		if got != want {
			t.Errorf("KeyRange(%q) = %v, want %v", tc.key, got, want)
		}
	}
}

func TestKeyRangeNeverReserved(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	key := make([]byte, 64)
	for i := range 200000 {
		key = key[:rng.IntN(len(key)+1)]
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		r := lockf.KeyRange(key)
		if r.Len != 1 || r.Start < lockf.KeyRegionStart || r.End() > lockf.KeyRegionStart+lockf.KeyRegionLen {
			t.Fatalf("iteration %d: KeyRange(%x) = %v, outside key region", i, key, r)
		}
		if r.Overlaps(lockf.Range{Start: 0, Len: lockf.ReservedLen}) {
			t.Fatalf("iteration %d: KeyRange(%x) = %v overlaps the reserved region", i, key, r)
		}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		if again := lockf.KeyRange(append([]byte(nil), key...)); again != r {
			t.Fatalf("KeyRange(%x) not deterministic: %v then %v", key, r, again)
		}
	}
}

func TestModeString(t *testing.T) {
	if lockf.Shared.String() != "shared" || lockf.Exclusive.String() != "exclusive" {
		t.Errorf("got %q, %q", lockf.Shared, lockf.Exclusive)
	}
	if s := lockf.Mode(0).String(); s != "Mode(0)" {
		t.Errorf("Mode(0).String() = %q", s)
	}
}
