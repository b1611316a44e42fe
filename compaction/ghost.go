package compaction

import "math/bits"

// maxGhost bounds the ghost set: ring positions must fit the table's uint32
// entries, and 2^30 hashes (24 GiB) is past any sensible cache.
const maxGhost = 1 << 30

// ghost is the set of the key hashes most recently dropped by eviction (from
// Small, as the "ghost queue" of S3-FIFO, and from Main): a FIFO of at most
// limit hashes, with O(1) add, lookup-and-remove and forgetting of the
// oldest.
//
// The hashes sit in a ring in insertion order; an open-addressing table with
// linear probing maps a hash to its ring position. A table entry is that
// position plus one (zero is empty), so it costs 4 bytes, and the table has
// twice the ring's slots: 16 bytes per remembered key in all. A hash removed
// by a hit leaves a zero in the ring, skipped when its turn to be forgotten
// comes; it still counts against limit until then, so the set remembers the
// last limit drops, less those that came back.
type ghost struct {
	ring  []uint64 // power-of-two length; zero marks a removed hash
	head  uint64   // sequence number of the oldest ring entry
	tail  uint64   // sequence number of the next one
	table []uint32 // 2*len(ring) entries
	limit int
	n     int // live hashes
}

func (g *ghost) len() int { return g.n }

// setLimit changes the number of hashes remembered; a smaller limit takes
// effect at the next add.
func (g *ghost) setLimit(n int) {
	g.limit = min(max(n, 0), maxGhost)
	if g.limit > len(g.ring) {
		g.grow(g.limit)
	}
}

// canon maps hash 0, which marks a removed ring entry, to 1.
func canon(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// home returns the table slot where the search for h starts. The multiply
// spreads hashes that are not uniform in their low bits (Fibonacci hashing).
func (g *ghost) home(h uint64) int {
	shift := 64 - bits.TrailingZeros(uint(len(g.table)))
	return int((h * 0x9e3779b97f4a7c15) >> shift)
}

// find returns the table slot holding h, or -1.
func (g *ghost) find(h uint64) int {
	if len(g.table) == 0 {
		return -1
	}
	mask := len(g.table) - 1
	for i := g.home(h); ; i = (i + 1) & mask {
		e := g.table[i]
		if e == 0 {
			return -1
		}
		if g.ring[e-1] == h {
			return i
		}
	}
}

// contains reports whether h is remembered.
func (g *ghost) contains(h uint64) bool { return g.find(canon(h)) >= 0 }

// remove forgets h, reporting whether it was remembered.
func (g *ghost) remove(h uint64) bool {
	h = canon(h)
	i := g.find(h)
	if i < 0 {
		return false
	}
	g.ring[g.table[i]-1] = 0
	g.deleteSlot(i)
	g.n--
	return true
}

// add remembers h as the newest hash, forgetting the oldest ones past limit.
// A hash already remembered keeps its place.
func (g *ghost) add(h uint64) {
	if g.limit == 0 {
		return
	}
	h = canon(h)
	if g.find(h) >= 0 {
		return
	}
	for g.tail-g.head >= uint64(g.limit) || g.tail-g.head == uint64(len(g.ring)) {
		g.forgetOldest()
	}
	pos := g.tail & uint64(len(g.ring)-1)
	g.ring[pos] = h
	g.tail++
	g.n++
	mask := len(g.table) - 1
	i := g.home(h)
	for g.table[i] != 0 {
		i = (i + 1) & mask
	}
	g.table[i] = uint32(pos) + 1
}

func (g *ghost) forgetOldest() {
	pos := g.head & uint64(len(g.ring)-1)
	g.head++
	h := g.ring[pos]
	if h == 0 {
		return // removed by a hit already
	}
	// The table entry for h is the one pointing at pos: hashes are unique
	// in the set, so finding h finds it.
	if i := g.find(h); i >= 0 {
		g.deleteSlot(i)
	}
	g.ring[pos] = 0
	g.n--
}

// deleteSlot empties table slot i, moving later entries of its probe run
// back so that no search stops early (backward-shift deletion, Knuth 6.4
// algorithm R).
func (g *ghost) deleteSlot(i int) {
	mask := len(g.table) - 1
	j := i
	for {
		j = (j + 1) & mask
		e := g.table[j]
		if e == 0 {
			break
		}
		k := g.home(g.ring[e-1])
		// The entry at j may move to i unless its home lies cyclically
		// in (i, j].
		if (i <= j && (k <= i || k > j)) || (i > j && k <= i && k > j) {
			g.table[i] = e
			i = j
		}
	}
	g.table[i] = 0
}

// grow makes room for n hashes, keeping the ring's order and its holes.
func (g *ghost) grow(n int) {
	size := 1 << bits.Len(uint(n-1))
	ring := make([]uint64, size)
	used := g.tail - g.head
	for i := uint64(0); i < used; i++ {
		ring[i] = g.ring[(g.head+i)&uint64(len(g.ring)-1)]
	}
	g.ring = ring
	g.head, g.tail = 0, used
	g.table = make([]uint32, 2*size)
	mask := len(g.table) - 1
	for pos := uint64(0); pos < used; pos++ {
		if ring[pos] == 0 {
			continue
		}
		i := g.home(ring[pos])
		for g.table[i] != 0 {
			i = (i + 1) & mask
		}
		g.table[i] = uint32(pos) + 1
	}
}
