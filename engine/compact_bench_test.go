package engine_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
)

// BenchmarkSetCompacting writes random keys of a key space ten times larger
// than the budget, so compaction evicts all along, and compares it with the
// same writes into a cache that never compacts. It also reports the longest
// hold of the index lock by compaction (pause-µs) and the bytes compaction
// copied per byte written (copy/write).
func BenchmarkSetCompacting(b *testing.B) {
	const budget = 32 << 20
	keys := budget * 10 / (benchKeyLen + benchValueLen + 36)
	for _, tc := range []struct {
		name string
		opts engine.Options
	}{
		{"compaction=off", engine.Options{Sync: engine.SyncNever, CacheSize: 1 << 40, ManualCompaction: true}},
		{"compaction=on", engine.Options{Sync: engine.SyncNever, CacheSize: budget}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := engine.Open(b.TempDir(), tc.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			v := make([]byte, benchValueLen)
			b.SetBytes(benchValueLen)
			for b.Loop() {
				if err := c.Set(benchKey(rng.IntN(keys)), v); err != nil {
					b.Fatal(err)
				}
			}
			st := c.Stats()
			b.ReportMetric(float64(st.LongestPause.Microseconds()), "pause-µs")
			b.ReportMetric(float64(st.CopiedBytes)/float64(int64(b.N)*int64(benchKeyLen+benchValueLen+36)), "copy/write")
		})
	}
}

// BenchmarkChurn loads -kennel.keys keys, overwrites every one three more
// times, and reports disk bytes per live byte: once background compaction
// has settled (amp-bg), and after Compact (amp-compact).
func BenchmarkChurn(b *testing.B) {
	n := *benchKeys
	b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
		var bg, full float64
		for b.Loop() {
			c, err := engine.Open(b.TempDir(), benchOptions())
			if err != nil {
				b.Fatal(err)
			}
			v := make([]byte, benchValueLen)
			for round := range 4 {
				for i := range n {
					v[0] = byte(round)
					if err := c.Set(benchKey(i), v); err != nil {
						b.Fatal(err)
					}
				}
			}
			bg = settledAmplification(c)
			if err := c.Compact(); err != nil {
				b.Fatal(err)
			}
			st := c.Stats()
			full = float64(st.DiskBytes) / float64(st.LiveBytes)
			c.Close()
		}
		b.ReportMetric(bg, "amp-bg")
		b.ReportMetric(full, "amp-compact")
	})
}

// settledAmplification waits until background compaction has had nothing
// to do for a while, and returns disk bytes per live byte.
func settledAmplification(c *engine.Cache) float64 {
	last := c.Stats()
	for quiet := 0; quiet < 10; {
		time.Sleep(50 * time.Millisecond)
		st := c.Stats()
		if st.Rewritten == last.Rewritten {
			quiet++
		} else {
			quiet = 0
		}
		last = st
	}
	return float64(last.DiskBytes) / float64(last.LiveBytes)
}

// BenchmarkOpenHints opens a closed cache of -kennel.keys keys read-only,
// with the hint files of its sealed segments and without them (every
// segment scanned, values read).
func BenchmarkOpenHints(b *testing.B) {
	n := *benchKeys
	for _, hints := range []bool{true, false} {
		b.Run(fmt.Sprintf("size=%d/hints=%v", n, hints), func(b *testing.B) {
			dir := copyDir(b, benchTemplate(b, n))
			if !hints {
				entries, err := os.ReadDir(dir)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range entries {
					if strings.HasSuffix(e.Name(), ".hint") {
						os.Remove(filepath.Join(dir, e.Name()))
					}
				}
			}
			opts := benchOptions()
			opts.ReadOnly = true
			for b.Loop() {
				c, err := engine.Open(dir, opts)
				if err != nil {
					b.Fatal(err)
				}
				if c.Len() != n {
					b.Fatalf("opened cache holds %d keys, want %d", c.Len(), n)
				}
				c.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/open")
		})
	}
}
