package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Zipf draws ranks 0..n-1 with P(rank k) proportional to 1/(k+1)^s, for any
// s >= 0 (math/rand/v2's Zipf needs s > 1). It uses Walker's alias method:
// one 64-bit random number and one table lookup per draw, after an O(n)
// setup.
type Zipf struct {
	// Rank i is drawn if the low 32 bits of the random number are below
	// threshold[i] (scaled so 1<<32 means always), else alias[i] is.
	threshold []uint64
	alias     []uint32
}

// NewZipf builds the tables for n ranks with exponent s.
func NewZipf(n int, s float64) (*Zipf, error) {
	if n < 1 || n > math.MaxUint32 {
		return nil, fmt.Errorf("zipf: %d ranks is not in [1, 2^32)", n)
	}
	if !(s >= 0) || math.IsInf(s, 1) {
		return nil, fmt.Errorf("zipf: exponent %v is not a finite s >= 0", s)
	}
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = math.Pow(float64(i+1), -s)
		sum += w[i]
	}
	// Vose's construction: scale so the mean weight is 1, then pair every
	// light rank with a heavy one that tops it up to 1.
	var light, heavy []uint32
	for i := range w {
		w[i] *= float64(n) / sum
		if w[i] < 1 {
			light = append(light, uint32(i))
		} else {
			heavy = append(heavy, uint32(i))
		}
	}
	z := &Zipf{threshold: make([]uint64, n), alias: make([]uint32, n)}
	for len(light) > 0 && len(heavy) > 0 {
		l := light[len(light)-1]
		light = light[:len(light)-1]
		h := heavy[len(heavy)-1]
		z.threshold[l] = uint64(w[l] * (1 << 32))
		z.alias[l] = h
		w[h] -= 1 - w[l]
		if w[h] < 1 {
			heavy = heavy[:len(heavy)-1]
			light = append(light, h)
		}
	}
	// What is left has weight 1 up to rounding.
	for _, i := range append(light, heavy...) {
		z.threshold[i] = 1 << 32
		z.alias[i] = i
	}
	return z, nil
}

// N returns the number of ranks.
func (z *Zipf) N() int { return len(z.alias) }

// Draw returns a rank, 0 being the most popular.
func (z *Zipf) Draw(r *rand.Rand) uint32 {
	u := r.Uint64()
	col := (u >> 32) * uint64(len(z.alias)) >> 32 // the high half picks a column
	if u&0xffffffff < z.threshold[col] {
		return uint32(col)
	}
	return z.alias[col]
}
