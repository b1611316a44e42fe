package compaction

import (
	"flag"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var ghostSeed = flag.Uint64("ghost.seed", 0, "seed of TestGhostMatchesModel (0: from the clock)")

// ghostModel is the ghost set written the obvious way: a slice in insertion
// order, removed hashes marked, at most limit positions long.
type ghostModel struct {
	seq     []uint64
	removed []bool
	limit   int
}

func (m *ghostModel) index(h uint64) int {
	for i, x := range m.seq {
		if x == h && !m.removed[i] {
			return i
		}
	}
	return -1
}

func (m *ghostModel) add(h uint64) {
	if m.limit == 0 || m.index(h) >= 0 {
		return
	}
	for len(m.seq) >= m.limit {
		m.seq, m.removed = m.seq[1:], m.removed[1:]
	}
	m.seq = append(m.seq, h)
	m.removed = append(m.removed, false)
}

func (m *ghostModel) remove(h uint64) bool {
	i := m.index(h)
	if i < 0 {
		return false
	}
	m.removed[i] = true
	return true
}

func (m *ghostModel) live() []uint64 {
	var out []uint64
	for i, h := range m.seq {
		if !m.removed[i] {
			out = append(out, h)
		}
	}
	return out
}

func TestGhostMatchesModel(t *testing.T) {
	seed := *ghostSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("-ghost.seed=%d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	var g ghost
	var m ghostModel
	// Hashes from a small range, so adds repeat and removes hit; 0 and 1
	// are in it, and are one hash to the set (canon).
	universe := uint64(60)
	hash := func() uint64 {
		h := r.Uint64N(universe)
		if h == 0 {
			h = 1 // the model does not know canon
		}
		return h
	}
	for op := 0; op < 200_000; op++ {
		switch n := r.IntN(100); {
		case n < 2:
			limit := r.IntN(40)
			g.setLimit(limit)
			m.limit = limit
		case n < 60:
			h := hash()
			g.add(h)
			m.add(h)
		case n < 90:
			h := hash()
			if got, want := g.remove(h), m.remove(h); got != want {
				t.Fatalf("op %d: remove(%d) = %v, want %v", op, h, got, want)
			}
		default:
			h := hash()
			if got, want := g.contains(h), m.index(h) >= 0; got != want {
				t.Fatalf("op %d: contains(%d) = %v, want %v", op, h, got, want)
			}
		}
		if g.len() != len(m.live()) {
			t.Fatalf("op %d: len %d, want %d", op, g.len(), len(m.live()))
		}
		if op%1000 == 0 {
			checkGhost(t, &g, m.live())
		}
	}
}

// checkGhost verifies that the table holds exactly want and that every
// entry is reachable from its home slot.
func checkGhost(t *testing.T, g *ghost, want []uint64) {
	t.Helper()
	var got []uint64
	for i, e := range g.table {
		if e == 0 {
			continue
		}
		h := g.ring[e-1]
		got = append(got, h)
		if g.find(h) != i {
			t.Fatalf("hash %d at slot %d is not found there", h, i)
		}
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("table holds %v, want %v", got, want)
	}
}

func TestGhostZeroHash(t *testing.T) {
	var g ghost
	g.setLimit(4)
	g.add(0)
	if !g.contains(0) || !g.remove(0) || g.contains(0) {
		t.Fatal("hash 0 is not remembered like any other")
	}
}

func TestGhostGrowKeepsOrder(t *testing.T) {
	var g ghost
	g.setLimit(3)
	for h := uint64(1); h <= 3; h++ {
		g.add(h)
	}
	g.remove(2)
	g.setLimit(100) // grows the ring
	for h := uint64(4); h <= 100; h++ {
		g.add(h)
	}
	g.setLimit(98)
	g.add(101) // forgets 1, the hole 2 left, and 3
	for h, want := range map[uint64]bool{1: false, 2: false, 3: false, 4: true, 100: true, 101: true} {
		if g.contains(h) != want {
			t.Errorf("contains(%d) = %v, want %v", h, !want, want)
		}
	}
}

func BenchmarkGhost(b *testing.B) {
	var g ghost
	g.setLimit(1 << 16)
	b.ReportAllocs()
	for i := range b.N {
		h := uint64(i) * 0x9e3779b97f4a7c15
		g.add(h)
		g.remove(h ^ 1)
	}
}
