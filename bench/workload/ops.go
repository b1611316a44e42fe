package workload

import (
	"sync"
	"sync/atomic"
	"time"
)

// opFunc performs operation number j of one goroutine.
type opFunc func(j int) error

// runOps runs ops operations split evenly over goroutines goroutines. newOp
// is called once per goroutine, before the clock starts, to set up that
// goroutine's generator and buffers. Every sampleEvery-th operation of each
// goroutine is timed. It returns the wall time from the moment all
// goroutines are released until the last one finishes, and the first error.
func runOps(goroutines, ops int, newOp func(g int) opFunc) (time.Duration, latencies, error) {
	goroutines = max(goroutines, 1)
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		failed   atomic.Bool
		errOnce  sync.Once
		firstErr error
		samples  = make([]latencies, goroutines)
	)
	for g := 0; g < goroutines; g++ {
		n := ops / goroutines
		if g < ops%goroutines {
			n++
		}
		op := newOp(g)
		samples[g] = make(latencies, 0, n/sampleEvery+1)
		wg.Add(1)
		go func(g, n int) {
			defer wg.Done()
			<-start
			lat := &samples[g]
			for j := 0; j < n; j++ {
				var err error
				if j%sampleEvery == 0 {
					t := time.Now()
					err = op(j)
					lat.add(time.Since(t))
				} else {
					err = op(j)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
				}
				if failed.Load() {
					return
				}
			}
		}(g, n)
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	var all latencies
	for _, s := range samples {
		all = append(all, s...)
	}
	return elapsed, all, firstErr
}
