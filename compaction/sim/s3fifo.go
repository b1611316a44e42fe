package sim

// s3fifo is item-granular S3-FIFO as in the SOSP'23 paper and its authors'
// libCacheSim: a small FIFO (10 % of the bytes) that new keys enter, a main
// FIFO (90 %) run as a CLOCK with 2-bit counters, and a ghost FIFO of keys
// evicted from small, as many bytes' worth as main holds. A key whose
// counter reached moveThreshold while in small moves to main; a miss on a
// ghost key inserts it into main directly.
type s3fifo struct {
	smallCap, mainCap, ghostCap int64
	small, main, ghostB         int64 // bytes used

	where []uint8 // inNone, inSmall or inMain
	freq  []uint8
	size  []int64

	smallQ, mainQ ring[uint32]

	// The ghost FIFO holds (key, sequence) pairs; ghostSeq[key] is the
	// sequence of the key's live entry plus one, zero if none. Entries
	// removed by a ghost hit go stale and are skipped.
	ghostQ   ring[ghostEntry]
	ghostSeq []uint32
	seq      uint32

	moveThreshold uint8
}

type ghostEntry struct{ key, seq uint32 }

const (
	inNone uint8 = iota
	inSmall
	inMain
)

func newS3FIFO(keys int, budget int64, moveThreshold uint8) *s3fifo {
	small := budget / 10
	return &s3fifo{
		smallCap:      small,
		mainCap:       budget - small,
		ghostCap:      budget - small,
		where:         make([]uint8, keys),
		freq:          make([]uint8, keys),
		size:          make([]int64, keys),
		ghostSeq:      make([]uint32, keys),
		moveThreshold: moveThreshold,
	}
}

func (c *s3fifo) access(key uint32, size int64) bool {
	if c.where[key] != inNone {
		c.freq[key] = min(c.freq[key]+1, 3)
		return true
	}
	ghostHit := c.ghostSeq[key] != 0
	if ghostHit {
		c.ghostSeq[key] = 0
		c.ghostB -= c.size[key]
	}
	if size > c.smallCap {
		return false
	}
	for c.small+c.main+size > c.smallCap+c.mainCap {
		if c.main > c.mainCap || c.small == 0 {
			c.evictMain()
		} else {
			c.evictSmall()
		}
	}
	c.size[key] = size
	c.freq[key] = 0
	if ghostHit {
		c.where[key] = inMain
		c.mainQ.push(key)
		c.main += size
	} else {
		c.where[key] = inSmall
		c.smallQ.push(key)
		c.small += size
	}
	return false
}

// evictSmall moves keys from the tail of small to main until it evicts one.
func (c *s3fifo) evictSmall() {
	for c.smallQ.len() > 0 {
		k := c.smallQ.pop()
		c.small -= c.size[k]
		if c.freq[k] >= c.moveThreshold {
			c.where[k] = inMain
			c.freq[k] = 0
			c.mainQ.push(k)
			c.main += c.size[k]
			continue
		}
		c.where[k] = inNone
		c.addGhost(k)
		return
	}
}

// evictMain reinserts keys from the tail of main, one read used up each,
// until it evicts one.
func (c *s3fifo) evictMain() {
	for c.mainQ.len() > 0 {
		k := c.mainQ.pop()
		if c.freq[k] > 0 {
			c.freq[k]--
			c.mainQ.push(k)
			continue
		}
		c.main -= c.size[k]
		c.where[k] = inNone
		return
	}
}

func (c *s3fifo) addGhost(k uint32) {
	c.seq++
	c.ghostSeq[k] = c.seq
	c.ghostQ.push(ghostEntry{k, c.seq})
	c.ghostB += c.size[k]
	for c.ghostB > c.ghostCap {
		e := c.ghostQ.pop()
		if c.ghostSeq[e.key] == e.seq {
			c.ghostSeq[e.key] = 0
			c.ghostB -= c.size[e.key]
		}
	}
}
