package engine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/internal/testseed"

	"github.com/kennel-cache/kennel/engine"
)

func TestScanPrefixOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 2))
	c := openCache(t, t.TempDir(), smallOptions())
	keys := []string{
		"a", "a\x00", "a\xff", "ab", "abc", "b", "user:1", "user:10", "user:2", "user;", "users",
		"\xff", "\xff\xff", "\xff\xff\xff", "\xfe",
	}
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("n:%05d", rng.IntN(100000))+strconv.Itoa(i))
	}
	model := map[string]string{}
	for _, i := range rng.Perm(len(keys)) { // insertion order must not matter
		model[keys[i]] = value(keys[i], i, rng.IntN(200))
		mustSet(t, c, keys[i], model[keys[i]])
	}
	mustDelete(t, c, "ab")
	delete(model, "ab")
	sorted := make([]string, 0, len(model))
	for k := range model {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)

	for _, prefix := range []string{"", "a", "ab", "abc", "user:", "user", "n:", "n:0", "\xff", "\xff\xff", "\xff\xff\xff\xff", "zzz", "\x00"} {
		var want []string
		for _, k := range sorted {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		var got []string
		err := c.Scan([]byte(prefix), func(k, v []byte) error {
			if string(v) != model[string(k)] {
				return fmt.Errorf("Scan yielded %q = %.30q, want %.30q", k, v, model[string(k)])
			}
			got = append(got, string(k))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Scan(%q) = %q, want %q", prefix, got, want)
		}
	}

	// fn's error stops the scan and is returned as is.
	stop := errors.New("enough")
	n := 0
	err := c.Scan(nil, func(k, v []byte) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Fatalf("Scan = %v after %d calls, want fn's error after 3", err, n)
	}
}

// TestScanSnapshot: writes made while a Scan runs (between two of its
// callbacks) do not show in it: no new key, no new value, no deleted key
// missing. The writes roll segments under the scan.
func TestScanSnapshot(t *testing.T) {
	c := openCache(t, t.TempDir(), smallOptions())
	const n = 300
	for i := range n {
		k := fmt.Sprintf("k%04d", i)
		mustSet(t, c, k, value(k, 0, 30))
	}
	wrote := make(chan error, 1)
	calls := 0
	err := c.Scan([]byte("k"), func(k, v []byte) error {
		want := fmt.Sprintf("k%04d", calls)
		if string(k) != want {
			return fmt.Errorf("Scan yielded %q at position %d, want %q", k, calls, want)
		}
		if string(v) != value(want, 0, 30) {
			return fmt.Errorf("Scan yielded %q = %q, a value written after it began", k, v)
		}
		calls++
		if calls != 10 {
			return nil
		}
		// Mid-scan, another goroutine rewrites the keyspace; Scan must
		// neither block it nor see it.
		go func() {
			for i := range n {
				k := fmt.Sprintf("k%04d", i)
				if err := c.Set([]byte(k), []byte(value(k, 1, 30))); err != nil {
					wrote <- err
					return
				}
				if err := c.Set(fmt.Appendf(nil, "%sa", k), []byte("inserted")); err != nil { // sorts right after k
					wrote <- err
					return
				}
				if i%2 == 0 {
					if err := c.Delete(fmt.Appendf(nil, "k%04d", n-1-i)); err != nil {
						wrote <- err
						return
					}
				}
			}
			wrote <- nil
		}()
		select {
		case err := <-wrote:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("writes blocked by a running Scan")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != n {
		t.Fatalf("Scan yielded %d keys, want the %d of its snapshot", calls, n)
	}
	// A new Scan sees the writes.
	model := map[string]string{}
	for i := range n {
		k := fmt.Sprintf("k%04d", i)
		model[k] = value(k, 1, 30)
		model[k+"a"] = "inserted"
		if i%2 == 0 {
			delete(model, fmt.Sprintf("k%04d", n-1-i))
		}
	}
	checkModel(t, c, model)
}

// TestScanConcurrentWriter runs scans while one writer rewrites every key
// in key order, generation after generation. A scan of a consistent
// snapshot sees, in key order, a run of generation g followed by a run of
// generation g-1; the writes it reflects were all started before its first
// callback, and include every write finished before Scan was called.
func TestScanConcurrentWriter(t *testing.T) {
	c := openCache(t, t.TempDir(), smallOptions())
	const n = 200
	key := func(i int) []byte { return fmt.Appendf(nil, "k%04d", i) }
	for i := range n {
		if err := c.Set(key(i), []byte("0")); err != nil {
			t.Fatal(err)
		}
	}
	var started, finished atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for g := 1; ; g++ {
			for i := range n {
				select {
				case <-stop:
					return
				default:
				}
				started.Add(1)
				if err := c.Set(key(i), []byte(strconv.Itoa(g))); err != nil {
					t.Error(err)
					return
				}
				finished.Add(1)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	deadline := time.Now().Add(time.Second)
	scans := 0
	for time.Now().Before(deadline) || scans < 20 {
		before := finished.Load()
		var atFirst int64
		var gens []int
		err := c.Scan([]byte("k"), func(k, v []byte) error {
			if len(gens) == 0 {
				atFirst = started.Load()
				// Let the writer move on while this scan is running.
				for w := started.Load(); started.Load() < w+n/2 && time.Now().Before(deadline.Add(5*time.Second)); {
					time.Sleep(50 * time.Microsecond)
				}
			}
			g, err := strconv.Atoi(string(v))
			if err != nil || string(k) != string(key(len(gens))) {
				return fmt.Errorf("Scan yielded %q = %q at position %d", k, v, len(gens))
			}
			gens = append(gens, g)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(gens) != n {
			t.Fatalf("Scan yielded %d keys, want %d", len(gens), n)
		}
		sum := int64(0)
		for i, g := range gens {
			sum += int64(g)
			if g > gens[0] || g < gens[0]-1 || (i > 0 && g > gens[i-1]) {
				t.Fatalf("scan %d saw generations %v: not a snapshot", scans, gens)
			}
		}
		// sum counts the writes the snapshot reflects.
		if sum < before || sum > atFirst {
			t.Fatalf("scan %d reflects %d writes; %d had finished before it, %d had started at its first callback", scans, sum, before, atFirst)
		}
		scans++
	}
	t.Logf("%d scans, %d writes", scans, finished.Load())
}

func TestScanEmptyAndClosedCallback(t *testing.T) {
	c := openCache(t, t.TempDir(), smallOptions())
	if err := c.Scan(nil, func(k, v []byte) error { return fmt.Errorf("called on an empty cache") }); err != nil {
		t.Fatal(err)
	}
	// Closing the cache from inside a Scan's callback: the scan may go on
	// reading its snapshot or stop, but must not crash or return wrong data.
	for i := range 50 {
		mustSet(t, c, fmt.Sprintf("k%02d", i), value("v", i, 500))
	}
	i := 0
	err := c.Scan(nil, func(k, v []byte) error {
		if string(v) != value("v", i, 500) {
			return fmt.Errorf("Scan yielded %q = %.20q after Close", k, v)
		}
		if i == 5 {
			if err := c.Close(); err != nil {
				return err
			}
		}
		i++
		return nil
	})
	if err != nil && !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Scan across Close: %v", err)
	}
}
