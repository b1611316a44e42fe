package sim

import "math"

// never is the next-use time of a key that is not requested again.
const never = math.MaxInt32

// opt is Belady's MIN for values of one size: on a miss with the cache
// full, evict the cached key requested furthest in the future, or bypass
// the new key if it is requested later than all of them. A max-heap of the
// cached keys ordered by next use, with each key's heap position, makes
// every step O(log n).
type opt struct {
	slots int     // values that fit the budget
	heap  []int32 // cached keys; heap[0] has the furthest next use
	pos   []int32 // key -> index in heap, -1 if not cached
	nextT []int32 // key -> time of its next request
}

func newOPT(keys int, slots int) *opt {
	c := &opt{slots: slots, pos: make([]int32, keys), nextT: make([]int32, keys)}
	for i := range c.pos {
		c.pos[i] = -1
	}
	return c
}

// nextUse returns, for each request, the index of the next request of the
// same key, or never.
func nextUse(req []uint32, keys int) []int32 {
	next := make([]int32, len(req))
	last := make([]int32, keys)
	for i := range last {
		last[i] = never
	}
	for i := len(req) - 1; i >= 0; i-- {
		next[i] = last[req[i]]
		last[req[i]] = int32(i)
	}
	return next
}

// access serves a request whose key is next requested at time nt.
func (c *opt) access(key uint32, nt int32) bool {
	k := int32(key)
	if p := c.pos[k]; p >= 0 {
		c.nextT[k] = nt
		c.fix(int(p))
		return true
	}
	if nt == never || c.slots == 0 {
		return false // caching it cannot produce a hit
	}
	if len(c.heap) == c.slots {
		top := c.heap[0]
		if c.nextT[top] <= nt {
			return false
		}
		c.pos[top] = -1
		c.heap[0] = k
		c.pos[k] = 0
		c.nextT[k] = nt
		c.down(0)
		return false
	}
	c.nextT[k] = nt
	c.heap = append(c.heap, k)
	c.pos[k] = int32(len(c.heap) - 1)
	c.up(len(c.heap) - 1)
	return false
}

func (c *opt) less(i, j int) bool { return c.nextT[c.heap[i]] > c.nextT[c.heap[j]] }

func (c *opt) swap(i, j int) {
	c.heap[i], c.heap[j] = c.heap[j], c.heap[i]
	c.pos[c.heap[i]] = int32(i)
	c.pos[c.heap[j]] = int32(j)
}

func (c *opt) fix(i int) {
	if !c.down(i) {
		c.up(i)
	}
}

func (c *opt) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !c.less(i, p) {
			return
		}
		c.swap(i, p)
		i = p
	}
}

// down sifts i down, reporting whether it moved.
func (c *opt) down(i int) bool {
	start := i
	n := len(c.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && c.less(r, l) {
			j = r
		}
		if !c.less(j, i) {
			break
		}
		c.swap(i, j)
		i = j
	}
	return i > start
}
