package engine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/internal/testseed"

	"github.com/kennel-cache/kennel/engine"
)

// written records every value ever written for each key, before the write
// is made, so that any value a reader sees can be checked.
type written struct {
	mu sync.Mutex
	m  map[string]map[string]bool
}

func (w *written) add(k, v string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m[k] == nil {
		w.m[k] = map[string]bool{}
	}
	w.m[k][v] = true
}

func (w *written) has(k, v string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[k][v]
}

// TestConcurrentOps runs 8 goroutines doing Set, Get, Has, Delete and Scan
// on overlapping keys, rolling segments as they go. Every value read is one
// that was written for its key; at the end, and after reopening, every key
// holds one of its values or none, and the reopened cache holds exactly
// what the closed one did.
func TestConcurrentOps(t *testing.T) {
	seed := testseed.Seed(t)
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	const (
		goroutines = 8
		ops        = 3000
		keys       = 40
	)
	w := &written{m: map[string]map[string]bool{}}
	key := func(i int) string { return fmt.Sprintf("key-%02d", i) }
	check := func(k string, v []byte) error {
		if !strings.HasPrefix(string(v), k+"=") || !w.has(k, string(v)) {
			return fmt.Errorf("%q holds %.40q, which was never written for it", k, v)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for n := range ops {
				k := key(rng.IntN(keys))
				var err error
				switch r := rng.IntN(100); {
				case r < 40:
					v := value(k, g*ops+n, rng.IntN(200))
					w.add(k, v)
					err = c.Set([]byte(k), []byte(v))
				case r < 70:
					var v []byte
					v, err = c.Get([]byte(k))
					if err == nil {
						err = check(k, v)
					} else if errors.Is(err, engine.ErrNotFound) {
						err = nil
					}
				case r < 80:
					_, err = c.Has([]byte(k))
				case r < 95:
					err = c.Delete([]byte(k))
				default:
					prev := ""
					err = c.Scan([]byte("key-"), func(k, v []byte) error {
						if string(k) <= prev {
							return fmt.Errorf("Scan yielded %q after %q", k, prev)
						}
						prev = string(k)
						return check(string(k), v)
					})
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d op %d: %w", g, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	final := map[string]string{}
	for i := range keys {
		k := key(i)
		v, err := c.Get([]byte(k))
		switch {
		case errors.Is(err, engine.ErrNotFound):
		case err != nil:
			t.Fatalf("Get(%q): %v", k, err)
		default:
			if err := check(k, v); err != nil {
				t.Fatal(err)
			}
			final[k] = string(v)
		}
	}
	checkModel(t, c, final)
	mustClose(t, c)
	c = openCache(t, dir, smallOptions())
	checkModel(t, c, final)
}

// TestConcurrentSetsSyncAlways: concurrent writers under SyncAlways share
// group commits; every write that returned is there, and survives reopen.
func TestConcurrentSetsSyncAlways(t *testing.T) {
	dir := t.TempDir()
	opts := smallOptions()
	opts.Sync = engine.SyncAlways
	opts.SegmentSize = 64 << 10
	c := openCache(t, dir, opts)
	const goroutines, per = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	start := time.Now()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				k := fmt.Sprintf("g%d-%03d", g, i)
				if err := c.Set([]byte(k), []byte(value(k, i, 100))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d synced Sets from %d goroutines in %v", goroutines*per, goroutines, time.Since(start))
	model := map[string]string{}
	for g := range goroutines {
		for i := range per {
			k := fmt.Sprintf("g%d-%03d", g, i)
			model[k] = value(k, i, 100)
		}
	}
	checkModel(t, c, model)
	mustClose(t, c)
	c = openCache(t, dir, opts)
	checkModel(t, c, model)
}

// TestCloseWhileBusy closes the cache under readers, writers and scanners:
// each operation either completes or returns ErrClosed, and what was
// written survives.
func TestCloseWhileBusy(t *testing.T) {
	dir := t.TempDir()
	c, err := engine.Open(dir, smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	w := &written{m: map[string]map[string]bool{}}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				k := fmt.Sprintf("k%d", n%20)
				var err error
				switch g % 3 {
				case 0:
					v := value(k, g*1_000_000+n, 100)
					w.add(k, v)
					err = c.Set([]byte(k), []byte(v))
				case 1:
					var v []byte
					if v, err = c.Get([]byte(k)); err == nil && !w.has(k, string(v)) {
						err = fmt.Errorf("Get(%q) = %.30q, never written", k, v)
					}
				case 2:
					err = c.Scan(nil, func(k, v []byte) error {
						if !w.has(string(k), string(v)) {
							return fmt.Errorf("Scan yielded %q = %.30q, never written", k, v)
						}
						return nil
					})
				}
				switch {
				case errors.Is(err, engine.ErrClosed):
					return
				case err != nil && !errors.Is(err, engine.ErrNotFound):
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatalf("Close under load: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c = openCache(t, dir, smallOptions())
	err = c.Scan(nil, func(k, v []byte) error {
		if !w.has(string(k), string(v)) {
			return fmt.Errorf("after reopen %q = %.30q, never written", k, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
