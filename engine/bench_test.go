package engine_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kennel-cache/kennel/engine"
)

// Benchmarks run against a cache preloaded with -kennel.keys keys of 16
// bytes with 100-byte values. The default, 100000, keeps a plain
// `go test -bench .` quick; the figures in the project's reports use
//
//	go test ./engine/ -run '^$' -bench . -benchtime=2s -count=3 -kennel.keys=1000000
//
// and compare runs with benchstat. The preloaded directory is built once per
// process and copied for benchmarks that write.
var benchKeys = flag.Int("kennel.keys", 100_000, "number of keys preloaded into benchmark caches")

const (
	benchKeyLen   = 16
	benchValueLen = 100
)

func benchKey(i int) []byte {
	return fmt.Appendf(make([]byte, 0, benchKeyLen), "%016x", uint64(i)*0x9E3779B97F4A7C15)
}

// benchOptions: the defaults, but syncing left to Close, so that the
// benchmarks measure kennel rather than the disk's flush latency.
func benchOptions() engine.Options { return engine.Options{Sync: engine.SyncNever} }

var benchTemplates struct {
	sync.Mutex
	dirs map[int]string
}

// removeBenchTemplates runs after all tests and benchmarks (TestMain).
func removeBenchTemplates() {
	benchTemplates.Lock()
	defer benchTemplates.Unlock()
	for _, dir := range benchTemplates.dirs {
		os.RemoveAll(filepath.Dir(dir))
	}
}

// benchTemplate returns a closed cache directory holding n keys; callers
// must not write to it.
func benchTemplate(b *testing.B, n int) string {
	b.Helper()
	benchTemplates.Lock()
	defer benchTemplates.Unlock()
	if dir, ok := benchTemplates.dirs[n]; ok {
		return dir
	}
	root, err := os.MkdirTemp("", "kennel-bench-")
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, "cache")
	c, err := engine.Open(dir, benchOptions())
	if err != nil {
		b.Fatal(err)
	}
	v := make([]byte, benchValueLen)
	for i := range n {
		if err := c.Set(benchKey(i), v); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	if benchTemplates.dirs == nil {
		benchTemplates.dirs = map[int]string{}
	}
	benchTemplates.dirs[n] = dir
	return dir
}

// benchCache opens a preloaded cache of n keys: the template itself for
// readers, a copy for writers.
func benchCache(b *testing.B, n int, write bool, opts engine.Options) *engine.Cache {
	b.Helper()
	dir := benchTemplate(b, n)
	if write {
		dir = copyDir(b, dir)
	}
	c, err := engine.Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func benchKeySet(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	return keys
}

// BenchmarkSet overwrites random keys of a preloaded cache, one goroutine.
func BenchmarkSet(b *testing.B) {
	n := *benchKeys
	b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
		c := benchCache(b, n, true, benchOptions())
		keys := benchKeySet(n)
		v := make([]byte, benchValueLen)
		rng := rand.New(rand.NewPCG(1, 1))
		b.SetBytes(benchKeyLen + benchValueLen)
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Set(keys[rng.IntN(n)], v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSetParallel overwrites random keys from GOMAXPROCS goroutines:
// group commit shares each pwrite (and under SyncAlways each fdatasync)
// among the writers waiting for it.
func BenchmarkSetParallel(b *testing.B) {
	n := *benchKeys
	for _, policy := range []engine.SyncPolicy{engine.SyncNever, engine.SyncAlways} {
		b.Run(fmt.Sprintf("size=%d/sync=%v", n, policy), func(b *testing.B) {
			opts := benchOptions()
			opts.Sync = policy
			c := benchCache(b, n, true, opts)
			keys := benchKeySet(n)
			b.SetBytes(benchKeyLen + benchValueLen)
			b.ReportAllocs()
			if policy == engine.SyncAlways {
				b.SetParallelism(8) // writers waiting on a sync are not on a CPU
			}
			var seeds atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seeds.Add(1), 2))
				v := make([]byte, benchValueLen)
				for pb.Next() {
					if err := c.Set(keys[rng.IntN(n)], v); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGet reads present keys in random order, one goroutine.
func BenchmarkGet(b *testing.B) {
	n := *benchKeys
	b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
		c := benchCache(b, n, false, benchOptions())
		keys := benchKeySet(n)
		rng := rand.New(rand.NewPCG(1, 3))
		b.SetBytes(benchKeyLen + benchValueLen)
		b.ReportAllocs()
		for b.Loop() {
			if v, err := c.Get(keys[rng.IntN(n)]); err != nil || len(v) != benchValueLen {
				b.Fatal(len(v), err)
			}
		}
	})
}

// BenchmarkGetParallel reads present keys in random order from GOMAXPROCS
// goroutines.
func BenchmarkGetParallel(b *testing.B) {
	n := *benchKeys
	b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
		c := benchCache(b, n, false, benchOptions())
		keys := benchKeySet(n)
		b.SetBytes(benchKeyLen + benchValueLen)
		b.ReportAllocs()
		var seeds atomic.Uint64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(seeds.Add(1), 4))
			for pb.Next() {
				if v, err := c.Get(keys[rng.IntN(n)]); err != nil || len(v) != benchValueLen {
					b.Error(len(v), err)
					return
				}
			}
		})
	})
}

// BenchmarkGetMiss looks up absent keys: an index lookup and nothing else.
func BenchmarkGetMiss(b *testing.B) {
	n := *benchKeys
	b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
		c := benchCache(b, n, false, benchOptions())
		miss := make([][]byte, 1<<16)
		for i := range miss {
			miss[i] = fmt.Appendf(nil, "miss-%011x", i*7919) // 16 bytes, never stored
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := c.Get(miss[i&(len(miss)-1)]); !errors.Is(err, engine.ErrNotFound) {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkOpen reopens a closed directory of n keys (index rebuilt from the
// hints of sealed segments and a scan of the active one), reporting ms/open
// and the heap the open cache holds per key (heapB/key).
func BenchmarkOpen(b *testing.B) {
	n := *benchKeys
	b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
		dir := benchTemplate(b, n)
		// Heap held per key, measured once, before the timed loop.
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, err := engine.Open(dir, benchOptions())
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heapPerKey := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			c, err := engine.Open(dir, benchOptions())
			if err != nil {
				b.Fatal(err)
			}
			if c.Len() != n {
				b.Fatalf("reopened cache holds %d keys, want %d", c.Len(), n)
			}
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/open")
		b.ReportMetric(heapPerKey, "heapB/key")
	})
}

// BenchmarkGetOrCreateHit asks for present, fresh keys: the dogpile lock's
// hit path, which takes no lock and should cost what Get costs.
func BenchmarkGetOrCreateHit(b *testing.B) {
	n := *benchKeys
	b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
		c := benchCache(b, n, false, benchOptions())
		keys := benchKeySet(n)
		rng := rand.New(rand.NewPCG(1, 3))
		create := func(context.Context) ([]byte, error) { return nil, errors.New("a present key was created") }
		ctx := context.Background()
		b.SetBytes(benchKeyLen + benchValueLen)
		b.ReportAllocs()
		for b.Loop() {
			if v, err := c.GetOrCreate(ctx, keys[rng.IntN(n)], create); err != nil || len(v) != benchValueLen {
				b.Fatal(len(v), err)
			}
		}
	})
}
