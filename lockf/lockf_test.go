//go:build linux

package lockf_test

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/internal/testseed"

	"github.com/kennel-cache/kennel/lockf"
)

const (
	// blockWait is how long an operation must stay pending to count as
	// blocked. Long enough for a wrongly granted lock to show up, short
	// enough to keep the suite fast.
	blockWait = 50 * time.Millisecond
	// promptly bounds what must happen "at once" (a wake-up, a cancelled
	// wait returning). Generous, for -race on a loaded machine; the real
	// figures are microseconds in process and one backoff step (<= 10ms)
	// across processes.
	promptly = 2 * time.Second
)

func openLockFile(t testing.TB) (*lockf.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lock")
	return openPath(t, path), path
}

func openPath(t testing.TB, path string) *lockf.File {
	t.Helper()
	f, err := lockf.Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func mustLock(t testing.TB, f *lockf.File, r lockf.Range, mode lockf.Mode) *lockf.Held {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), promptly)
	defer cancel()
	h, err := f.Lock(ctx, r, mode)
	if err != nil {
		t.Fatalf("Lock(%v, %v): %v", r, mode, err)
	}
	return h
}

func mustTryLock(t testing.TB, f *lockf.File, r lockf.Range, mode lockf.Mode) *lockf.Held {
	t.Helper()
	h, ok, err := f.TryLock(r, mode)
	if err != nil || !ok {
		t.Fatalf("TryLock(%v, %v) = %v, %v; want success", r, mode, ok, err)
	}
	return h
}

func mustNotTryLock(t testing.TB, f *lockf.File, r lockf.Range, mode lockf.Mode) {
	t.Helper()
	h, ok, err := f.TryLock(r, mode)
	if err != nil || ok || h != nil {
		t.Fatalf("TryLock(%v, %v) = %v, %v, %v; want busy", r, mode, h, ok, err)
	}
}

func mustUnlock(t testing.TB, h *lockf.Held) {
	t.Helper()
	if err := h.Unlock(); err != nil {
		t.Fatalf("Unlock(%v): %v", h.Range(), err)
	}
}

func mustHolder(t testing.TB, f *lockf.File, r lockf.Range, wantMode lockf.Mode, wantHeld bool) {
	t.Helper()
	mode, held, err := f.Holder(r)
	if err != nil {
		t.Fatalf("Holder(%v): %v", r, err)
	}
	if held != wantHeld || (held && mode != wantMode) {
		t.Fatalf("Holder(%v) = %v, %v; want %v, %v", r, mode, held, wantMode, wantHeld)
	}
}

func wantTableLen(t testing.TB, f *lockf.File, want int) {
	t.Helper()
	if n := lockf.TableLen(f); n != want {
		t.Fatalf("in-process table has %d entries, want %d", n, want)
	}
}

type lockResult struct {
	h   *lockf.Held
	err error
}

// lockAsync runs f.Lock in a new goroutine.
func lockAsync(ctx context.Context, f *lockf.File, r lockf.Range, mode lockf.Mode) <-chan lockResult {
	ch := make(chan lockResult, 1)
	go func() {
		h, err := f.Lock(ctx, r, mode)
		ch <- lockResult{h, err}
	}()
	return ch
}

// mustBlock checks that the Lock behind ch is still waiting after blockWait.
func mustBlock(t testing.TB, ch <-chan lockResult) {
	t.Helper()
	select {
	case res := <-ch:
		t.Fatalf("Lock returned (%v, %v) while it should be blocked", res.h != nil, res.err)
	case <-time.After(blockWait):
	}
}

// mustReturn waits for the Lock behind ch to return.
func mustReturn(t testing.TB, ch <-chan lockResult) lockResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(promptly):
		t.Fatalf("Lock still blocked after %v", promptly)
		panic("unreachable")
	}
}

func mustAcquire(t testing.TB, ch <-chan lockResult) *lockf.Held {
	t.Helper()
	res := mustReturn(t, ch)
	if res.err != nil {
		t.Fatalf("Lock: %v", res.err)
	}
	return res.h
}

func TestExclusiveExcludesGoroutines(t *testing.T) {
	f, _ := openLockFile(t)
	r := lockf.KeyRange([]byte("counter"))
	const goroutines, iters = 8, 300
	var (
		counter int          // guarded only by the lock under test
		inside  atomic.Int32 // holders at this moment
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for range goroutines {
		wg.Go(func() {
			<-start
			for i := range iters {
				var h *lockf.Held
				if i%4 == 0 {
					// Mix TryLock in: it must never slip past a holder.
					for {
						var ok bool
						var err error
						if h, ok, err = f.TryLock(r, lockf.Exclusive); err != nil {
							t.Error(err)
							return
						} else if ok {
							break
						}
						runtime.Gosched() // let the holder finish
					}
				} else {
					var err error
					if h, err = f.Lock(context.Background(), r, lockf.Exclusive); err != nil {
						t.Error(err)
						return
					}
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d goroutines inside an exclusive lock", n)
				}
				// Read, yield, write: without exclusion, other goroutines
				// run in between and updates are lost.
				c := counter
				runtime.Gosched()
				counter = c + 1
				inside.Add(-1)
				if err := h.Unlock(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if counter != goroutines*iters {
		t.Fatalf("counter = %d, want %d", counter, goroutines*iters)
	}
	wantTableLen(t, f, 0)
}

func TestSharedHoldersCoexistAndExclusiveWaits(t *testing.T) {
	f, path := openLockFile(t)
	other := openPath(t, path) // another open file description: sees the kernel lock
	r := lockf.KeyRange([]byte("k"))

	s1 := mustLock(t, f, r, lockf.Shared)
	s2 := mustTryLock(t, f, r, lockf.Shared)
	s3 := mustLock(t, f, r, lockf.Shared)
	mustNotTryLock(t, f, r, lockf.Exclusive)
	mustHolder(t, other, r, lockf.Shared, true)

	w := lockAsync(context.Background(), f, r, lockf.Exclusive)
	mustBlock(t, w)
	mustUnlock(t, s1)
	mustBlock(t, w)
	mustUnlock(t, s3)
	mustBlock(t, w)
	// Readers still hold the kernel shared lock: another description can
	// share it but not take it exclusively.
	mustNotTryLock(t, other, r, lockf.Exclusive)
	mustUnlock(t, s2)
	h := mustAcquire(t, w)
	mustHolder(t, other, r, lockf.Exclusive, true)
	mustUnlock(t, h)
	mustHolder(t, other, r, 0, false)
	wantTableLen(t, f, 0)
}

func TestWaitingWriterHoldsBackNewReaders(t *testing.T) {
	f, _ := openLockFile(t)
	r := lockf.KeyRange([]byte("k"))

	s1 := mustLock(t, f, r, lockf.Shared)
	w := lockAsync(context.Background(), f, r, lockf.Exclusive)
	mustBlock(t, w)
	mustNotTryLock(t, f, r, lockf.Shared) // queued writer comes first
	rd := lockAsync(context.Background(), f, r, lockf.Shared)
	mustBlock(t, rd)

	mustUnlock(t, s1)
	hw := mustAcquire(t, w)
	mustBlock(t, rd)
	mustUnlock(t, hw)
	mustUnlock(t, mustAcquire(t, rd))
	wantTableLen(t, f, 0)
}

func TestWaitersServedInArrivalOrder(t *testing.T) {
	f, _ := openLockFile(t)
	r := lockf.KeyRange([]byte("fifo"))
	h := mustLock(t, f, r, lockf.Exclusive)

	const n = 5
	var (
		mu    sync.Mutex
		order []int
	)
	waiters := make([]<-chan lockResult, n)
	for i := range n {
		ch := make(chan lockResult, 1)
		waiters[i] = ch
		go func() {
			h, err := f.Lock(context.Background(), r, lockf.Exclusive)
			if err == nil {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				err = h.Unlock()
			}
			ch <- lockResult{err: err}
		}()
		// Let waiter i queue before waiter i+1 starts.
		mustBlock(t, ch)
	}
	mustUnlock(t, h)
	for i := range n {
		if res := mustReturn(t, waiters[i]); res.err != nil {
			t.Fatal(res.err)
		}
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("waiters acquired in order %v, want arrival order", order)
		}
	}
}

func TestDifferentRangesDoNotInterfere(t *testing.T) {
	f, path := openLockFile(t)
	other := openPath(t, path)
	ranges := []lockf.Range{
		lockf.AppendRange(),
		lockf.CompactionRange(),
		lockf.KeyRange([]byte("a")),
		lockf.KeyRange([]byte("b")),
		{Start: 1 << 50, Len: 1 << 10},
	}
	var held []*lockf.Held
	for _, r := range ranges {
		held = append(held, mustTryLock(t, f, r, lockf.Exclusive))
	}
	for _, r := range ranges {
		mustHolder(t, other, r, lockf.Exclusive, true)
	}
	// Releasing one leaves the others held, in the kernel too.
	mustUnlock(t, held[2])
	mustUnlock(t, mustTryLock(t, other, ranges[2], lockf.Exclusive))
	for i, r := range ranges {
		if i != 2 {
			mustNotTryLock(t, other, r, lockf.Shared)
		}
	}
	for i, h := range held {
		if i != 2 {
			mustUnlock(t, h)
		}
	}
	wantTableLen(t, f, 0)
}

// TestOverlappingRangesExclude checks the rule that keeps kernel locks of one
// description from merging: overlapping unequal ranges exclude each other in
// process, and releasing one never punches a hole in another.
func TestOverlappingRangesExclude(t *testing.T) {
	f, path := openLockFile(t)
	other := openPath(t, path)
	wide := lockf.Range{Start: 100, Len: 10}
	inner := lockf.Range{Start: 105, Len: 1}

	hw := mustLock(t, f, wide, lockf.Shared)
	mustNotTryLock(t, f, inner, lockf.Shared)
	ch := lockAsync(context.Background(), f, inner, lockf.Exclusive)
	mustBlock(t, ch)
	mustTryLock(t, f, lockf.Range{Start: 110, Len: 1}, lockf.Exclusive).Unlock() // adjacent: free
	mustUnlock(t, hw)
	hi := mustAcquire(t, ch)

	// The kernel now holds exactly [105,106) exclusively for f.
	mustHolder(t, other, lockf.Range{Start: 100, Len: 5}, 0, false)
	mustHolder(t, other, lockf.Range{Start: 106, Len: 4}, 0, false)
	mustHolder(t, other, inner, lockf.Exclusive, true)

	// The wide range waits for the inner one, then holds all ten bytes.
	ch = lockAsync(context.Background(), f, wide, lockf.Exclusive)
	mustBlock(t, ch)
	mustUnlock(t, hi)
	hw = mustAcquire(t, ch)
	for b := int64(100); b < 110; b++ {
		mustHolder(t, other, lockf.Range{Start: b, Len: 1}, lockf.Exclusive, true)
	}
	mustUnlock(t, hw)
	mustHolder(t, other, wide, 0, false)
	wantTableLen(t, f, 0)
}

func TestCancelQueuedWaiter(t *testing.T) {
	f, _ := openLockFile(t)
	r := lockf.KeyRange([]byte("k"))
	h := mustLock(t, f, r, lockf.Exclusive)

	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []lockf.Mode{lockf.Shared, lockf.Exclusive} {
				ctx, cancel := tc.ctx()
				start := time.Now()
				res := mustReturn(t, lockAsync(ctx, f, r, mode))
				cancel()
				if !errors.Is(res.err, tc.want) || res.h != nil {
					t.Fatalf("%v Lock = %v, %v; want error wrapping %v", mode, res.h, res.err, tc.want)
				}
				if d := time.Since(start); d > promptly/2 {
					t.Fatalf("cancelled Lock took %v", d)
				}
			}
		})
	}
	wantTableLen(t, f, 1) // only the holder's entry
	mustUnlock(t, h)
	wantTableLen(t, f, 0)
}

func TestLockWithDoneContextFails(t *testing.T) {
	f, _ := openLockFile(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h, err := f.Lock(ctx, lockf.KeyRange([]byte("free")), lockf.Exclusive)
	if !errors.Is(err, context.Canceled) || h != nil {
		t.Fatalf("Lock with cancelled context = %v, %v", h, err)
	}
	wantTableLen(t, f, 0)
}

// TestCancelledWriterLetsReadersIn: a queued writer blocks later readers;
// when it gives up, they must be let in at once rather than wait for the
// next release.
func TestCancelledWriterLetsReadersIn(t *testing.T) {
	f, _ := openLockFile(t)
	r := lockf.KeyRange([]byte("k"))
	s := mustLock(t, f, r, lockf.Shared)

	ctx, cancel := context.WithCancel(context.Background())
	w := lockAsync(ctx, f, r, lockf.Exclusive)
	mustBlock(t, w)
	rd := lockAsync(context.Background(), f, r, lockf.Shared)
	mustBlock(t, rd)

	cancel()
	if res := mustReturn(t, w); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("cancelled writer: %v", res.err)
	}
	mustUnlock(t, mustAcquire(t, rd)) // while s is still held
	mustUnlock(t, s)
	wantTableLen(t, f, 0)
}

// TestSharedWaitForKernelCancel covers readers of one process that wait
// while a sibling reader polls the kernel for the shared lock.
func TestSharedWaitForKernelCancel(t *testing.T) {
	f, path := openLockFile(t)
	other := openPath(t, path)
	r := lockf.KeyRange([]byte("k"))

	t.Run("follower cancels", func(t *testing.T) {
		x := mustLock(t, other, r, lockf.Exclusive)
		poller := lockAsync(context.Background(), f, r, lockf.Shared)
		mustBlock(t, poller)
		ctx, cancel := context.WithCancel(context.Background())
		follower := lockAsync(ctx, f, r, lockf.Shared)
		mustBlock(t, follower)
		cancel()
		if res := mustReturn(t, follower); !errors.Is(res.err, context.Canceled) {
			t.Fatalf("follower: %v", res.err)
		}
		mustBlock(t, poller)
		mustUnlock(t, x)
		h := mustAcquire(t, poller)
		mustHolder(t, other, r, lockf.Shared, true)
		mustUnlock(t, h)
		mustHolder(t, other, r, 0, false)
		wantTableLen(t, f, 0)
	})

	t.Run("poller cancels", func(t *testing.T) {
		x := mustLock(t, other, r, lockf.Exclusive)
		ctx, cancel := context.WithCancel(context.Background())
		poller := lockAsync(ctx, f, r, lockf.Shared)
		mustBlock(t, poller)
		follower := lockAsync(context.Background(), f, r, lockf.Shared)
		mustBlock(t, follower)
		cancel()
		if res := mustReturn(t, poller); !errors.Is(res.err, context.Canceled) {
			t.Fatalf("poller: %v", res.err)
		}
		// The follower takes over polling and gets the lock on release.
		mustBlock(t, follower)
		mustUnlock(t, x)
		h := mustAcquire(t, follower)
		mustHolder(t, other, r, lockf.Shared, true)
		mustUnlock(t, h)
		mustHolder(t, other, r, 0, false)
		wantTableLen(t, f, 0)
	})
}

// TestSeparateFilesExclude: OFD locks belong to the open file description,
// so two Files of one process exclude each other through the kernel, and a
// File does not see its own locks in Holder.
func TestSeparateFilesExclude(t *testing.T) {
	f1, path := openLockFile(t)
	f2 := openPath(t, path)
	r := lockf.AppendRange()

	h := mustLock(t, f1, r, lockf.Exclusive)
	mustNotTryLock(t, f2, r, lockf.Shared)
	mustHolder(t, f2, r, lockf.Exclusive, true)
	mustHolder(t, f1, r, 0, false)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := f2.Lock(ctx, r, lockf.Exclusive); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock through second File = %v, want deadline exceeded", err)
	}

	w := lockAsync(context.Background(), f2, r, lockf.Exclusive)
	mustBlock(t, w)
	mustUnlock(t, h)
	mustUnlock(t, mustAcquire(t, w))
}

func TestInvalidArguments(t *testing.T) {
	f, _ := openLockFile(t)
	ctx := context.Background()
	for _, r := range []lockf.Range{{Start: 5, Len: 0}, {}, {Start: 0, Len: -3}, {Start: -1, Len: 1}, {Start: 1<<63 - 1, Len: 2}} {
		if _, err := f.Lock(ctx, r, lockf.Exclusive); !errors.Is(err, lockf.ErrInvalidRange) {
			t.Errorf("Lock(%v) = %v, want ErrInvalidRange", r, err)
		}
		if _, _, err := f.TryLock(r, lockf.Shared); !errors.Is(err, lockf.ErrInvalidRange) {
			t.Errorf("TryLock(%v) = %v, want ErrInvalidRange", r, err)
		}
		if _, _, err := f.Holder(r); !errors.Is(err, lockf.ErrInvalidRange) {
			t.Errorf("Holder(%v) = %v, want ErrInvalidRange", r, err)
		}
	}
	for _, m := range []lockf.Mode{0, 3, 255} {
		if _, err := f.Lock(ctx, lockf.AppendRange(), m); !errors.Is(err, lockf.ErrInvalidMode) {
			t.Errorf("Lock(mode %d) = %v, want ErrInvalidMode", m, err)
		}
		if _, _, err := f.TryLock(lockf.AppendRange(), m); !errors.Is(err, lockf.ErrInvalidMode) {
			t.Errorf("TryLock(mode %d) = %v, want ErrInvalidMode", m, err)
		}
	}
	wantTableLen(t, f, 0)
}

func TestUnlockTwice(t *testing.T) {
	f, path := openLockFile(t)
	other := openPath(t, path)
	r := lockf.KeyRange([]byte("k"))
	for _, mode := range []lockf.Mode{lockf.Shared, lockf.Exclusive} {
		h1 := mustLock(t, f, r, mode)
		mustUnlock(t, h1)
		h2 := mustLock(t, f, r, mode)
		if err := h1.Unlock(); !errors.Is(err, lockf.ErrNotHeld) {
			t.Fatalf("second Unlock = %v, want ErrNotHeld", err)
		}
		// The stale handle must not have released h2's kernel lock.
		mustHolder(t, other, r, mode, true)
		mustUnlock(t, h2)
	}
	wantTableLen(t, f, 0)
}

func TestClose(t *testing.T) {
	f, path := openLockFile(t)
	other := openPath(t, path)
	a, b := lockf.KeyRange([]byte("a")), lockf.KeyRange([]byte("b"))

	ha := mustLock(t, f, a, lockf.Exclusive)
	sb1 := mustLock(t, f, lockf.AppendRange(), lockf.Shared)
	sb2 := mustLock(t, f, lockf.AppendRange(), lockf.Shared)
	xb := mustLock(t, other, b, lockf.Exclusive)
	queued := lockAsync(context.Background(), f, a, lockf.Shared)  // waits in process
	polling := lockAsync(context.Background(), f, b, lockf.Shared) // waits for the kernel
	mustBlock(t, queued)
	mustBlock(t, polling)

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan lockResult{queued, polling} {
		if res := mustReturn(t, ch); !errors.Is(res.err, lockf.ErrClosed) {
			t.Errorf("waiter woken by Close: %v, want ErrClosed", res.err)
		}
	}
	// Closing the descriptor released f's locks in the kernel.
	mustHolder(t, other, a, 0, false)
	mustUnlock(t, mustTryLock(t, other, a, lockf.Exclusive))

	for _, h := range []*lockf.Held{ha, sb1, sb2} {
		if err := h.Unlock(); !errors.Is(err, lockf.ErrClosed) {
			t.Errorf("%v Unlock after Close = %v, want ErrClosed", h.Mode(), err)
		}
	}
	if _, err := f.Lock(context.Background(), a, lockf.Shared); !errors.Is(err, lockf.ErrClosed) {
		t.Errorf("Lock after Close = %v", err)
	}
	if _, _, err := f.TryLock(a, lockf.Shared); !errors.Is(err, lockf.ErrClosed) {
		t.Errorf("TryLock after Close = %v", err)
	}
	if _, _, err := f.Holder(a); !errors.Is(err, lockf.ErrClosed) {
		t.Errorf("Holder after Close = %v", err)
	}
	if err := f.Close(); !errors.Is(err, lockf.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	mustUnlock(t, xb)
}

func TestTableDoesNotGrow(t *testing.T) {
	f, path := openLockFile(t)
	other := openPath(t, path)
	busy := lockf.KeyRange([]byte("busy"))
	x := mustLock(t, other, busy, lockf.Exclusive)

	key := make([]byte, 8)
	for i := range 5000 {
		key[0], key[1], key[2] = byte(i), byte(i>>8), byte(i>>16)
		mode := lockf.Mode(1 + i%2)
		h := mustLock(t, f, lockf.KeyRange(key), mode)
		mustUnlock(t, h)
		mustNotTryLock(t, f, busy, mode) // kernel says no: entry must go
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := f.Lock(ctx, busy, lockf.Exclusive); err == nil {
		t.Fatal("Lock of a range held by another File succeeded")
	}
	wantTableLen(t, f, 0)
	mustUnlock(t, x)
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()

	t.Run("default mode", func(t *testing.T) {
		path := filepath.Join(dir, "lock")
		f := openPath(t, path)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
			t.Errorf("lock file mode %v, want -rw-------", st.Mode())
		}
		if f.Path() != path {
			t.Errorf("Path() = %q", f.Path())
		}
		// Reopening an existing file works and keeps it.
		openPath(t, path)
	})

	t.Run("symlink refused", func(t *testing.T) {
		target := filepath.Join(dir, "target")
		link := filepath.Join(dir, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if f, err := lockf.Open(link, 0); !errors.Is(err, syscall.ELOOP) {
			if f != nil {
				f.Close()
			}
			t.Fatalf("Open(symlink) = %v, want ELOOP", err)
		}
		if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open created the symlink's target: %v", err)
		}
	})

	t.Run("fifo refused", func(t *testing.T) {
		fifo := filepath.Join(dir, "fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := lockf.Open(fifo, 0); !errors.Is(err, lockf.ErrNotRegular) {
			t.Fatalf("Open(fifo) = %v, want ErrNotRegular", err)
		}
	})

	t.Run("directory refused", func(t *testing.T) {
		if _, err := lockf.Open(dir, 0); err == nil {
			t.Fatal("Open(directory) succeeded")
		}
	})

	t.Run("missing directory", func(t *testing.T) {
		if _, err := lockf.Open(filepath.Join(dir, "no", "lock"), 0); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open in missing directory = %v", err)
		}
	})
}

// TestRandomized runs goroutines that lock, try-lock and abandon random
// ranges (some overlapping, some wide) of one File, and checks after every
// acquisition that nobody else holds a conflicting lock in process and that
// the kernel holds every byte of the range in the right mode.
func TestRandomized(t *testing.T) {
	f, path := openLockFile(t)
	probe := openPath(t, path) // sees f's kernel locks from outside
	seed := testseed.Seed(t)

	ranges := []lockf.Range{
		{Start: 10, Len: 1}, {Start: 11, Len: 1}, {Start: 12, Len: 1},
		{Start: 10, Len: 3}, {Start: 11, Len: 2}, {Start: 20, Len: 1},
	}
	var (
		mu        sync.Mutex        // protects the two maps
		exclusive = map[int64]int{} // holders per byte
		shared    = map[int64]int{}
	)
	enter := func(r lockf.Range, mode lockf.Mode) {
		mu.Lock()
		defer mu.Unlock()
		for b := r.Start; b < r.End(); b++ {
			if exclusive[b] > 0 || (mode == lockf.Exclusive && shared[b] > 0) {
				t.Errorf("%v lock on %v granted while byte %d has %d exclusive, %d shared holders",
					mode, r, b, exclusive[b], shared[b])
			}
			if mode == lockf.Exclusive {
				exclusive[b]++
			} else {
				shared[b]++
			}
		}
	}
	leave := func(r lockf.Range, mode lockf.Mode) {
		mu.Lock()
		defer mu.Unlock()
		for b := r.Start; b < r.End(); b++ {
			if mode == lockf.Exclusive {
				exclusive[b]--
			} else {
				shared[b]--
			}
		}
	}

	const goroutines, ops = 8, 300
	var wg sync.WaitGroup
	for g := range goroutines {
		rng := rand.New(rand.NewPCG(seed, uint64(g)))
		wg.Go(func() {
			for range ops {
				r := ranges[rng.IntN(len(ranges))]
				mode := lockf.Mode(1 + rng.IntN(2))
				var h *lockf.Held
				var err error
				switch p := rng.IntN(10); {
				case p < 2:
					var ok bool
					h, ok, err = f.TryLock(r, mode)
					if !ok && err == nil {
						continue
					}
				case p < 3:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(200))*time.Microsecond)
					h, err = f.Lock(ctx, r, mode)
					cancel()
					if errors.Is(err, context.DeadlineExceeded) {
						continue
					}
				default:
					h, err = f.Lock(context.Background(), r, mode)
				}
				if err != nil {
					t.Error(err)
					return
				}
				enter(r, mode)
				for b := r.Start; b < r.End(); b++ {
					got, held, err := probe.Holder(lockf.Range{Start: b, Len: 1})
					if err != nil || !held || got != mode {
						t.Errorf("holding %v %v: kernel reports byte %d as %v, %v, %v", mode, r, b, got, held, err)
					}
				}
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.IntN(50)) * time.Microsecond)
				}
				leave(r, mode)
				if err := h.Unlock(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	wantTableLen(t, f, 0)
	mustHolder(t, probe, lockf.Range{Start: 0, Len: 100}, 0, false)
}
