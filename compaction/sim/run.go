package sim

import (
	"fmt"
	"strings"
)

// Result is what one policy did with one trace, counted after the warm-up.
type Result struct {
	Policy   string
	Requests int64
	Hits     int64

	// Written and Copied are the bytes kennel appended for misses and for
	// copy-forward; zero for the item-granular policies.
	Written, Copied int64
}

// HitRatio returns Hits/Requests.
func (r Result) HitRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.Requests)
}

// WriteAmp returns the bytes copied forward per byte written.
func (r Result) WriteAmp() float64 {
	if r.Written == 0 {
		return 0
	}
	return float64(r.Copied) / float64(r.Written)
}

func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: hit ratio %.2f %% (%d/%d)", r.Policy, 100*r.HitRatio(), r.Hits, r.Requests)
	if r.Written > 0 {
		fmt.Fprintf(&b, ", write amplification %.3f", r.WriteAmp())
	}
	return b.String()
}

// replay feeds t to access and counts the hits after the warm-up.
func replay(t *Trace, access func(key uint32, size int64) bool) (hits int64) {
	for i, key := range t.Req {
		if access(key, t.ValueSize) && i >= t.Warmup {
			hits++
		}
	}
	return hits
}

// LRU replays t through exact LRU with the given byte budget.
func LRU(t *Trace, budget int64) Result {
	c := newLRU(t.Keys, budget)
	return Result{Policy: "LRU", Requests: int64(t.Requests), Hits: replay(t, c.access)}
}

// S3FIFO replays t through item-granular S3-FIFO with the given byte
// budget, moving a key from small to main once it was read moveThreshold
// times there (1 in the paper's description, 2 in libCacheSim's default).
func S3FIFO(t *Trace, budget int64, moveThreshold int) Result {
	c := newS3FIFO(t.Keys, budget, uint8(min(max(moveThreshold, 0), 3)))
	name := "S3-FIFO"
	if moveThreshold != 1 {
		name = fmt.Sprintf("S3-FIFO m%d", moveThreshold)
	}
	return Result{Policy: name, Requests: int64(t.Requests), Hits: replay(t, c.access)}
}

// OPT replays t through Belady's MIN, which is optimal for values of one
// size, with the given byte budget.
func OPT(t *Trace, budget int64) Result {
	next := nextUse(t.Req, t.Keys)
	c := newOPT(t.Keys, int(budget/t.ValueSize))
	var hits int64
	for i, key := range t.Req {
		if c.access(key, next[i]) && i >= t.Warmup {
			hits++
		}
	}
	return Result{Policy: "OPT", Requests: int64(t.Requests), Hits: hits}
}

// Kennel replays t through the segment-granular engine model driving
// compaction.Policy.
func Kennel(t *Trace, cfg KennelConfig) (Result, error) {
	c, err := newKennel(t.Keys, cfg)
	if err != nil {
		return Result{}, err
	}
	var hits, written, copied int64
	for i, key := range t.Req {
		if i == t.Warmup {
			written, copied = c.written, c.copied
		}
		if c.access(key, t.ValueSize) && i >= t.Warmup {
			hits++
		}
	}
	return Result{
		Policy:   "kennel " + sizeString(cfg.SegmentSize),
		Requests: int64(t.Requests),
		Hits:     hits,
		Written:  c.written - written,
		Copied:   c.copied - copied,
	}, nil
}

// sizeString prints a byte count in the largest binary unit that divides it.
func sizeString(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}
