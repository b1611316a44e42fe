package lockf

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Backoff of a waiter polling the kernel for a lock another process holds.
const (
	// minBackoff is the first pause. The engine holds its locks for an append
	// batch or one create call: tens of microseconds to milliseconds. 50µs
	// catches the short holds quickly, and costs one non-blocking fcntl per
	// pause, well under 1% of a CPU.
	minBackoff = 50 * time.Microsecond
	// maxBackoff caps the pause, and so the delay between a release in
	// another process and the waiter noticing it, at 10ms: small next to a
	// create call worth locking for, while a long wait costs only about 100
	// syscalls a second.
	maxBackoff = 10 * time.Millisecond
)

// File is an open lock file. Its methods are safe for concurrent use by
// multiple goroutines; see the package documentation for the contract.
type File struct {
	path    string
	done    chan struct{}   // closed by Close; wakes every waiter
	cleanup runtime.Cleanup // closes fd if the File is dropped without Close

	// fdMu protects fd against Close: every kernel call holds it for reading,
	// Close takes it for writing. Kernel calls never block, so neither does
	// Close for long. f.mu and f.fdMu are never held at the same time.
	fdMu     sync.RWMutex
	fd       int
	fdClosed bool

	mu sync.Mutex // protects the fields below and every entry's fields
	// closed is set by Close.
	closed bool
	// entries holds the in-process state of every range that a goroutine
	// holds or waits for. An entry is deleted as soon as it is idle, so the
	// map is as large as the number of ranges in use, not ever used.
	entries map[Range]*entry
	// wide counts the entries whose range is longer than one byte. While it
	// is zero, two different one-byte ranges cannot overlap and the overlap
	// scan is skipped.
	wide int
	// overlapWake, made on demand, is closed and cleared when an entry goes
	// idle, to wake the goroutines waiting for an overlapping range.
	overlapWake chan struct{}
}

// kernelState is where the kernel's shared lock on an entry's range stands.
type kernelState uint8

const (
	kernelNone      kernelState = iota // not held
	kernelAcquiring                    // one reader is taking it, without f.mu
	kernelHeld                         // held for all readers
	kernelReleasing                    // the last reader is releasing it, without f.mu
)

// entry is the in-process state of one range. All fields are guarded by the
// File's mu.
//
// Goroutines first become owners of the entry (in-process exclusion: FIFO
// queue, prompt wake-up), then take the kernel lock (exclusion from other
// processes, by polling). An exclusive owner is alone and takes and releases
// the kernel lock itself. Readers share one kernel shared lock: the first
// reader to find it kernelNone takes it while the others wait on sharedWake,
// and the last reader out releases it. Since readers stays above zero during
// both transitions, no writer can become owner while one is in flight.
type entry struct {
	r Range
	// readers counts the goroutines owning the range in Shared mode,
	// including those still waiting for the kernel lock.
	readers int
	// writer is set while a goroutine owns the range in Exclusive mode,
	// including while it waits for the kernel lock.
	writer bool
	// shared is the state of the kernel shared lock; kernelNone unless
	// readers > 0.
	shared kernelState
	// sharedWake, made on demand, is closed and cleared when shared changes.
	sharedWake chan struct{}
	// queue holds the goroutines waiting to become owners, in arrival order.
	// It is non-empty only while the entry has owners.
	queue []*waiter
}

// waiter is a goroutine queued for ownership of an entry.
type waiter struct {
	mode    Mode
	ready   chan struct{} // closed when granted
	granted bool          // set before ready is closed; guarded by File.mu
}

func (e *entry) active() bool { return e.readers > 0 || e.writer }

// admits reports whether an owner in mode can join the entry's owners now.
func (e *entry) admits(mode Mode) bool {
	if mode == Exclusive {
		return !e.active()
	}
	return !e.writer
}

func (e *entry) take(mode Mode) {
	if mode == Exclusive {
		e.writer = true
	} else {
		e.readers++
	}
}

func (e *entry) wakeShared() {
	if e.sharedWake != nil {
		close(e.sharedWake)
		e.sharedWake = nil
	}
}

func (e *entry) removeWaiter(w *waiter) {
	for i, q := range e.queue {
		if q == w {
			copy(e.queue[i:], e.queue[i+1:])
			e.queue[len(e.queue)-1] = nil
			e.queue = e.queue[:len(e.queue)-1]
			return
		}
	}
}

// Open opens the lock file at path, creating it with permission perm (0600
// when perm is 0, before the umask) if it does not exist. It refuses to
// follow a symbolic link in the last element of path and refuses anything but
// a regular file. The descriptor is close-on-exec, so child processes never
// share its locks.
//
// On platforms other than Linux, Open returns an error wrapping
// ErrUnsupported.
func Open(path string, perm os.FileMode) (*File, error) {
	if perm == 0 {
		perm = 0o600
	}
	fd, err := sysOpen(path, perm)
	if err != nil {
		return nil, err
	}
	f := &File{
		path:    path,
		done:    make(chan struct{}),
		fd:      fd,
		entries: make(map[Range]*entry),
	}
	// A File that becomes unreachable can no longer be unlocked: close its
	// descriptor so that its locks do not outlive it, as os.File does.
	f.cleanup = runtime.AddCleanup(f, func(fd int) { sysClose(fd) }, fd)
	return f, nil
}

// Path returns the path the File was opened with.
func (f *File) Path() string { return f.path }

// Close releases every lock held through f (closing the descriptor makes
// the kernel drop them) and wakes every goroutine waiting in Lock, which then
// returns ErrClosed. Held values of f stay valid to Unlock, which returns
// ErrClosed. Close returns ErrClosed if f is already closed.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	f.closed = true
	close(f.done)
	f.mu.Unlock()

	f.fdMu.Lock()
	defer f.fdMu.Unlock()
	f.fdClosed = true
	f.cleanup.Stop()
	if err := sysClose(f.fd); err != nil {
		return &os.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}

// Held is a lock held through a File. It may be released from any goroutine,
// not only the one that took it, exactly once.
type Held struct {
	f        *File
	e        *entry // stays in f.entries at least until released
	mode     Mode
	released atomic.Bool
}

// Range returns the locked range.
func (h *Held) Range() Range { return h.e.r }

// Mode returns the mode the range is held in.
func (h *Held) Mode() Mode { return h.mode }

// Unlock releases the lock: in the kernel if h was the last holder in this
// process, then to the next goroutine waiting in this process, if any. It
// returns ErrNotHeld if h was already released, and ErrClosed if the File
// was closed (which released the lock already).
func (h *Held) Unlock() error {
	if !h.released.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: %v lock on %v", ErrNotHeld, h.mode, h.e.r)
	}
	if h.mode == Exclusive {
		return h.f.releaseExclusive(h.e) // ErrClosed from the kernel call
	}
	h.f.mu.Lock()
	closed := h.f.closed
	if err := h.f.releaseSharedLocked(h.e); err != nil || !closed {
		return err
	}
	return ErrClosed // even when another reader keeps the entry alive
}

// Lock acquires r in the given mode, waiting for as long as it takes unless
// ctx is done first, in which case it returns an error wrapping ctx.Err().
// Goroutines of this process waiting for the same range are woken as soon as
// it is free, in arrival order; a lock held by another process is polled
// with exponential backoff from 50µs to 10ms. If ctx is already done, Lock
// fails without trying.
//
// Within this process, ranges that overlap without being equal exclude each
// other whatever their modes; see the package documentation.
func (f *File) Lock(ctx context.Context, r Range, mode Mode) (*Held, error) {
	if err := checkArgs(r, mode); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, waitError(r, mode, err)
	}
	e, err := f.own(ctx, r, mode, true)
	if err != nil {
		return nil, err
	}
	if _, err := f.lockKernel(ctx, e, mode, true); err != nil {
		return nil, err
	}
	return &Held{f: f, e: e, mode: mode}, nil
}

// TryLock acquires r in the given mode if it can do so without waiting, and
// reports false otherwise: when a goroutine of this process holds or is
// already waiting for r (or an overlapping range), or when another process
// holds a conflicting lock. The error is non-nil only for bad arguments, a
// closed File, or a failed system call.
func (f *File) TryLock(r Range, mode Mode) (*Held, bool, error) {
	if err := checkArgs(r, mode); err != nil {
		return nil, false, err
	}
	e, err := f.own(context.Background(), r, mode, false)
	if e == nil || err != nil {
		return nil, false, err
	}
	if ok, err := f.lockKernel(context.Background(), e, mode, false); !ok {
		return nil, false, err
	}
	return &Held{f: f, e: e, mode: mode}, true, nil
}

// Holder reports whether a lock held through another open file description
// (another process, or another File in this process) conflicts with an
// exclusive lock on r, and if so in which mode the first such lock is held.
// Locks held through f itself are invisible to it.
//
// It cannot say which process holds the lock: for open file description
// locks the kernel reports l_pid as -1, because such a lock belongs to a
// description that several processes may share, not to a process.
//
// The answer is a snapshot that may be stale as soon as it is returned;
// it is meant for inspection (is the append or compaction lock held?),
// never for deciding to go ahead without the lock.
func (f *File) Holder(r Range) (Mode, bool, error) {
	if err := r.Validate(); err != nil {
		return 0, false, err
	}
	f.fdMu.RLock()
	defer f.fdMu.RUnlock()
	if f.fdClosed {
		return 0, false, ErrClosed
	}
	return sysGetLock(f.fd, r)
}

func checkArgs(r Range, mode Mode) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if !mode.valid() {
		return fmt.Errorf("%w: %v", ErrInvalidMode, mode)
	}
	return nil
}

func waitError(r Range, mode Mode, err error) error {
	return fmt.Errorf("kennel: waiting for %v lock on %v: %w", mode, r, err)
}

// own makes the caller an owner of r's entry in mode: the in-process half of
// a lock. If wait is false it returns a nil entry and a nil error instead of
// waiting.
func (f *File) own(ctx context.Context, r Range, mode Mode, wait bool) (*entry, error) {
	f.mu.Lock()
	for {
		if f.closed {
			f.mu.Unlock()
			return nil, ErrClosed
		}
		if !f.overlapsActiveLocked(r) {
			break
		}
		if !wait {
			f.mu.Unlock()
			return nil, nil
		}
		if f.overlapWake == nil {
			f.overlapWake = make(chan struct{})
		}
		ch := f.overlapWake
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, waitError(r, mode, ctx.Err())
		case <-f.done:
			return nil, ErrClosed
		}
		f.mu.Lock()
	}

	e := f.entries[r]
	if e == nil {
		e = &entry{r: r}
		f.entries[r] = e
		if r.Len > 1 {
			f.wide++
		}
	}
	if len(e.queue) == 0 && e.admits(mode) {
		e.take(mode)
		f.mu.Unlock()
		return e, nil
	}
	if !wait {
		f.mu.Unlock()
		return nil, nil
	}

	w := &waiter{mode: mode, ready: make(chan struct{})}
	e.queue = append(e.queue, w)
	f.mu.Unlock()
	select {
	case <-w.ready:
	case <-ctx.Done():
	case <-f.done:
	}
	f.mu.Lock()
	if w.granted {
		// Granted, perhaps at the moment ctx was cancelled: keep it. If
		// ctx is done or f closed, lockKernel fails and gives it back.
		f.mu.Unlock()
		return e, nil
	}
	e.removeWaiter(w)
	// If w was a writer at the head of the queue, readers behind it may
	// now be admitted.
	f.grantLocked(e)
	f.deleteIfIdleLocked(e)
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	return nil, waitError(r, mode, ctx.Err())
}

// overlapsActiveLocked reports whether a range that overlaps r, other than r
// itself, has owners in this process.
//
// Such ranges must exclude each other within the process whatever their
// modes, because the kernel merges and splits the locks of one open file
// description: releasing [5,6) while [0,10) is held through the same
// descriptor would punch a hole in [0,10), and taking [5,6) shared would turn
// that byte of an exclusive [0,10) into a shared lock. While owners of
// overlapping ranges never coexist, every kernel call concerns a range that
// no other owner's range touches.
func (f *File) overlapsActiveLocked(r Range) bool {
	if r.Len == 1 && f.wide == 0 {
		return false
	}
	for _, e := range f.entries {
		if e.r != r && e.active() && e.r.Overlaps(r) {
			return true
		}
	}
	return false
}

// grantLocked admits the waiters at the head of e's queue that the current
// owners allow: one writer, or every reader up to the next writer.
func (f *File) grantLocked(e *entry) {
	for len(e.queue) > 0 && e.admits(e.queue[0].mode) {
		w := e.queue[0]
		e.queue[0] = nil
		e.queue = e.queue[1:]
		e.take(w.mode)
		w.granted = true
		close(w.ready)
	}
	if len(e.queue) == 0 {
		e.queue = nil // drop the backing array sliced away above
	}
}

// deleteIfIdleLocked removes e from the table if it has no owners and no
// waiters, and wakes goroutines waiting for an overlapping range.
func (f *File) deleteIfIdleLocked(e *entry) {
	if e.active() || len(e.queue) > 0 {
		return
	}
	if f.entries[e.r] == e {
		delete(f.entries, e.r)
		if e.r.Len > 1 {
			f.wide--
		}
	}
	if f.overlapWake != nil {
		close(f.overlapWake)
		f.overlapWake = nil
	}
}

// lockKernel takes the kernel half of a lock for an owner of e. On failure
// it gives up the ownership and returns false with the error (nil when wait
// is false and the lock is busy).
func (f *File) lockKernel(ctx context.Context, e *entry, mode Mode, wait bool) (bool, error) {
	if mode == Exclusive {
		// The only owner: no other goroutine touches the kernel lock on
		// e.r, so the call needs no coordination.
		ok, err := f.pollKernel(ctx, e.r, mode, wait)
		if !ok {
			f.mu.Lock()
			e.writer = false
			f.grantLocked(e)
			f.deleteIfIdleLocked(e)
			f.mu.Unlock()
		}
		return ok, err
	}

	f.mu.Lock()
	for {
		switch e.shared {
		case kernelHeld:
			f.mu.Unlock()
			return true, nil
		case kernelNone:
			e.shared = kernelAcquiring
			f.mu.Unlock()
			ok, err := f.pollKernel(ctx, e.r, mode, wait)
			f.mu.Lock()
			if ok {
				e.shared = kernelHeld
			} else {
				e.shared = kernelNone
			}
			e.wakeShared()
			if ok {
				f.mu.Unlock()
				return true, nil
			}
			f.releaseSharedLocked(e) // releases nothing in the kernel: not held
			return false, err
		default:
			// Another reader is taking or releasing the kernel lock.
			if !wait {
				f.releaseSharedLocked(e)
				return false, nil
			}
			if e.sharedWake == nil {
				e.sharedWake = make(chan struct{})
			}
			ch := e.sharedWake
			f.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
			case <-f.done:
			}
			f.mu.Lock()
			if e.shared == kernelHeld {
				continue
			}
			var err error
			if f.closed {
				err = ErrClosed
			} else if ctx.Err() != nil {
				err = waitError(e.r, mode, ctx.Err())
			}
			if err != nil {
				f.releaseSharedLocked(e)
				return false, err
			}
		}
	}
}

// pollKernel tries to set the kernel lock, and while another open file
// description holds a conflicting one, if wait is set, tries again after a
// pause that doubles from minBackoff to maxBackoff, with jitter so that
// waiters in several processes do not keep colliding. It never blocks in the
// kernel: F_OFD_SETLKW would pin an OS thread and could not be cancelled.
func (f *File) pollKernel(ctx context.Context, r Range, mode Mode, wait bool) (bool, error) {
	ok, err := f.trySet(r, mode)
	if ok || err != nil || !wait {
		return ok, err
	}
	pause := minBackoff
	t := time.NewTimer(jitter(pause))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return false, waitError(r, mode, ctx.Err())
		case <-f.done:
			return false, ErrClosed
		}
		if ok, err := f.trySet(r, mode); ok || err != nil {
			return ok, err
		}
		pause = min(2*pause, maxBackoff)
		t.Reset(jitter(pause))
	}
}

// jitter returns a duration drawn uniformly from [d/2, d).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2)
}

func (f *File) trySet(r Range, mode Mode) (bool, error) {
	f.fdMu.RLock()
	defer f.fdMu.RUnlock()
	if f.fdClosed {
		return false, ErrClosed
	}
	return sysTryLock(f.fd, r, mode)
}

func (f *File) unset(r Range) error {
	f.fdMu.RLock()
	defer f.fdMu.RUnlock()
	if f.fdClosed {
		return ErrClosed
	}
	return sysUnlock(f.fd, r)
}

// releaseExclusive gives up the exclusive ownership of e, kernel lock first.
func (f *File) releaseExclusive(e *entry) error {
	// Still the only owner until f.mu is taken below, so no goroutine of
	// this process can set a lock on e.r that this unlock would remove.
	err := f.unset(e.r)
	f.mu.Lock()
	e.writer = false
	f.grantLocked(e)
	f.deleteIfIdleLocked(e)
	f.mu.Unlock()
	return err
}

// releaseSharedLocked gives up one shared ownership of e, and the kernel
// shared lock if it was the last owner. Called with f.mu held; returns with
// it released.
func (f *File) releaseSharedLocked(e *entry) error {
	var err error
	if e.readers == 1 && e.shared == kernelHeld {
		// Unlock without f.mu. Counted in readers meanwhile, this owner
		// keeps writers out; readers arriving meanwhile wait for
		// kernelReleasing to end and then take the lock again.
		e.shared = kernelReleasing
		f.mu.Unlock()
		err = f.unset(e.r)
		f.mu.Lock()
		e.shared = kernelNone
		e.wakeShared()
	}
	e.readers--
	f.grantLocked(e)
	f.deleteIfIdleLocked(e)
	f.mu.Unlock()
	return err
}
