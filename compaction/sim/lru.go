package sim

// lru is exact LRU under a byte budget: a doubly linked list threaded
// through per-key arrays, most recent at the front.
type lru struct {
	budget, used int64
	size         []int64 // of cached keys, 0 when absent
	prev, next   []int32 // list links; index len(size) is the sentinel
}

func newLRU(keys int, budget int64) *lru {
	c := &lru{
		budget: budget,
		size:   make([]int64, keys),
		prev:   make([]int32, keys+1),
		next:   make([]int32, keys+1),
	}
	c.prev[keys], c.next[keys] = int32(keys), int32(keys)
	return c
}

func (c *lru) unlink(k int32) {
	p, n := c.prev[k], c.next[k]
	c.next[p], c.prev[n] = n, p
}

func (c *lru) pushFront(k int32) {
	s := int32(len(c.size))
	n := c.next[s]
	c.prev[k], c.next[k] = s, n
	c.prev[n], c.next[s] = k, k
}

func (c *lru) access(key uint32, size int64) bool {
	k := int32(key)
	if c.size[k] != 0 {
		c.unlink(k)
		c.pushFront(k)
		return true
	}
	if size > c.budget {
		return false
	}
	s := int32(len(c.size))
	for c.used+size > c.budget {
		v := c.prev[s]
		c.unlink(v)
		c.used -= c.size[v]
		c.size[v] = 0
	}
	c.size[k] = size
	c.used += size
	c.pushFront(k)
	return false
}
