package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Workload describes a synthetic request stream: independent requests whose
// keys follow a Zipf popularity, every value of the same size.
type Workload struct {
	Keys      int     // distinct keys
	Skew      float64 // Zipf exponent s
	ValueSize int64   // bytes of every value
	Warmup    int     // requests served before measuring starts
	Requests  int     // requests measured
	Seed      uint64  // the same seed and workload give the same trace

	// Drift, if not zero, makes popularity move: after every Drift
	// requests each rank maps to the next key, so the hot keys slowly
	// turn cold and cold ones hot, a test of how fast a policy forgets.
	Drift int
}

// Trace is a generated request stream.
type Trace struct {
	Workload
	Req []uint32 // keys, Warmup+Requests of them; without drift key k has popularity rank k
}

// NewTrace draws the requests of w.
func NewTrace(w Workload) (*Trace, error) {
	switch {
	case w.ValueSize <= 0:
		return nil, fmt.Errorf("value size %d is not positive", w.ValueSize)
	case w.Warmup < 0 || w.Requests <= 0 || w.Drift < 0:
		return nil, fmt.Errorf("warm-up %d, requests %d or drift %d out of range", w.Warmup, w.Requests, w.Drift)
	case w.Warmup+w.Requests > math.MaxInt32:
		return nil, fmt.Errorf("%d requests is more than %d", w.Warmup+w.Requests, math.MaxInt32)
	}
	z, err := NewZipf(w.Keys, w.Skew)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(w.Seed, math.Float64bits(w.Skew)))
	req := make([]uint32, w.Warmup+w.Requests)
	for i := range req {
		k := z.Draw(r)
		if w.Drift > 0 {
			k = uint32((int(k) + i/w.Drift) % w.Keys)
		}
		req[i] = k
	}
	return &Trace{Workload: w, Req: req}, nil
}

// keyHash stands in for the engine's xxhash of the key bytes: the
// SplitMix64 finaliser, a bijection that scatters consecutive keys.
func keyHash(k uint32) uint64 {
	x := uint64(k) + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
