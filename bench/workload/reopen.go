package workload

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"time"

	"github.com/kennel-cache/kennel/bench/store"
)

// ReopenConfig closes the store on Dir, opens it again and reads one record:
// the time of that open + first Get is what a restarted program waits before
// its cache answers (an index rebuild, for stores that keep their index in
// memory). After it, the Go heap the open store holds is measured and divided
// by N.
type ReopenConfig struct {
	Dir       string
	N         int
	ValueSize int
}

// Run closes, reopens and measures s. s is open again when it returns,
// unless the open failed.
func (c ReopenConfig) Run(s store.Store) Result {
	r := newResult("reopen")
	t := time.Now()
	if err := s.Close(); err != nil {
		return r.fail(fmt.Errorf("close: %w", err))
	}
	r.Metrics[CloseMs] = msSince(t)

	base := heapAlloc()
	t = time.Now()
	if err := s.Open(c.Dir); err != nil {
		return r.fail(fmt.Errorf("open: %w", err))
	}
	key := make([]byte, KeySize)
	v, err := s.Get(Key(key, 0))
	if err != nil {
		return r.fail(fmt.Errorf("first get: %w", err))
	}
	r.Metrics[OpenMs] = msSince(t)
	if err := checkValue(v, 0, c.ValueSize); err != nil {
		return r.fail(err)
	}
	r.Metrics[HeapBytesPerKey] = float64(heapAlloc()-base) / float64(c.N)
	return r
}

func msSince(t time.Time) float64 { return float64(time.Since(t)) / float64(time.Millisecond) }

// heapAlloc returns the bytes of live Go heap, after collecting garbage.
// Two collections let finalizers and sync.Pool caches from the first one be
// freed by the second.
func heapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// ChurnConfig overwrites every one of the N records Rounds more times (in a
// scrambled order, from one goroutine), runs the store's own compaction if it
// has one, and measures the directory against the live data: the space
// amplification a long-running cache settles at. It measures once with the
// store open after compaction and once after Close (some stores flush or
// delete files only then), and reopens the store for the workloads after it.
//
// MaxDuration, if set, stops the overwrites early: a store that rewrites a
// file per Set can take an hour over three rounds of a million records. The
// rounds done are reported (metric rounds) and noted.
type ChurnConfig struct {
	Dir         string
	N           int
	Rounds      int
	ValueSize   int
	MaxDuration time.Duration
}

// errTimeUp stops a workload's operations at its time limit.
var errTimeUp = errors.New("time limit reached")

// Run performs the overwrites and the measurements.
func (c ChurnConfig) Run(s store.Store) Result {
	r := newResult("churn")
	total := c.N * c.Rounds
	done := 0
	deadline := time.Now().Add(c.MaxDuration)
	d, _, err := runOps(1, total, func(int) opFunc {
		key := make([]byte, KeySize)
		var val []byte
		return func(j int) error {
			// Checking the clock every 1024 writes costs nothing measurable.
			if c.MaxDuration > 0 && j%1024 == 0 && time.Now().After(deadline) {
				return errTimeUp
			}
			round := j / c.N
			i := permute(uint64(j%c.N), uint64(c.N))
			val = Value(val, i, uint32(round+1), c.ValueSize)
			if err := s.Set(Key(key, i), val); err != nil {
				return fmt.Errorf("round %d: set record %d: %w", round+1, i, err)
			}
			done++
			return nil
		}
	})
	if errors.Is(err, errTimeUp) {
		r.Note = fmt.Sprintf("overwrites stopped at the %v limit after %.2f of %d rounds", c.MaxDuration, float64(done)/float64(c.N), c.Rounds)
		err = nil
	}
	if err != nil {
		return r.fail(err)
	}
	rate(&r, done, d)
	r.Metrics[Rounds] = float64(done) / float64(c.N)

	live := float64(c.N * (KeySize + c.ValueSize))
	r.Metrics[LiveBytes] = live
	if before, err := DiskUsage(c.Dir); err == nil {
		r.Metrics[DiskBytesBefore] = float64(before)
	}
	if cp, ok := s.(store.Compacter); ok {
		t := time.Now()
		err := cp.Compact()
		switch {
		case errors.Is(err, store.ErrUnsupported):
			r.Note = join(r.Note, "no compaction: "+err.Error())
		case err != nil:
			return r.fail(fmt.Errorf("compact: %w", err))
		default:
			r.Metrics[CompactSeconds] = time.Since(t).Seconds()
		}
	} else {
		r.Note = join(r.Note, "store has no compaction")
	}
	open, err := DiskUsage(c.Dir)
	if err != nil {
		return r.fail(err)
	}
	r.Metrics[DiskBytesOpen] = float64(open)
	r.Metrics[SpaceAmpOpen] = float64(open) / live
	if err := s.Close(); err != nil {
		return r.fail(fmt.Errorf("close: %w", err))
	}
	closed, err := DiskUsage(c.Dir)
	if err != nil {
		return r.fail(err)
	}
	r.Metrics[DiskBytes] = float64(closed)
	r.Metrics[SpaceAmp] = float64(closed) / live
	if err := s.Open(c.Dir); err != nil {
		return r.fail(fmt.Errorf("reopen: %w", err))
	}
	return r
}

// DiskUsage returns the bytes allocated on disk to the files under dir.
func DiskUsage(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil {
			var info fs.FileInfo
			if info, err = d.Info(); err == nil {
				total += allocated(info)
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while we walked: a store cleaning up behind itself
		}
		return err
	})
	return total, err
}

// join joins two notes.
func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
