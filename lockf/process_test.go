//go:build linux

package lockf_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kennel-cache/kennel/lockf"
)

// Cross-process tests re-execute the test binary running only
// TestHelperProcess, with environment variables naming the child's role and
// its arguments (as the standard library's filelock tests do). Children talk
// to the parent one line at a time on stdout; the parent tells a holder to
// release by closing its stdin, which also happens if the parent dies.
const (
	envRole  = "KENNEL_LOCKF_HELPER"
	envPath  = "KENNEL_LOCKF_PATH"
	envRange = "KENNEL_LOCKF_RANGE" // "start,len"
	envMode  = "KENNEL_LOCKF_MODE"  // "shared" or "exclusive"
	envData  = "KENNEL_LOCKF_DATA"  // counter file for role "count"
	envIters = "KENNEL_LOCKF_ITERS"
)

// Roles of the helper process.
const (
	roleHold  = "hold"  // lock, print "locked", wait for stdin EOF, unlock, print "unlocked"
	roleProbe = "probe" // print "free" or "busy" for an exclusive TryLock, then "held <mode>" or "not held" from Holder
	roleFDs   = "fds"   // print "inherited" if any inherited descriptor is the lock file, else "clean"
	roleCount = "count" // increment the counter file under the append lock, print "done"
)

func TestHelperProcess(t *testing.T) {
	role := os.Getenv(envRole)
	if role == "" {
		return // not a child: nothing to do
	}
	if err := runHelper(role); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0) // keep the testing package from printing on stdout
}

func runHelper(role string) error {
	path := os.Getenv(envPath)
	if role == roleFDs {
		return reportInheritedFDs(path)
	}
	f, err := lockf.Open(path, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	r, mode, err := helperArgs()
	if err != nil {
		return err
	}
	switch role {
	case roleHold:
		h, err := f.Lock(context.Background(), r, mode)
		if err != nil {
			return err
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin) // until the parent closes the pipe
		if err := h.Unlock(); err != nil {
			return err
		}
		fmt.Println("unlocked")
	case roleProbe:
		h, ok, err := f.TryLock(r, lockf.Exclusive)
		if err != nil {
			return err
		}
		if ok {
			fmt.Println("free")
			if err := h.Unlock(); err != nil {
				return err
			}
		} else {
			fmt.Println("busy")
		}
		m, held, err := f.Holder(r)
		if err != nil {
			return err
		}
		if held {
			fmt.Println("held", m)
		} else {
			fmt.Println("not held")
		}
	case roleCount:
		iters, err := strconv.Atoi(os.Getenv(envIters))
		if err != nil {
			return err
		}
		if err := countUnderLock(f, os.Getenv(envData), 2, iters); err != nil {
			return err
		}
		fmt.Println("done")
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	return nil
}

func helperArgs() (lockf.Range, lockf.Mode, error) {
	var r lockf.Range
	if _, err := fmt.Sscanf(os.Getenv(envRange), "%d,%d", &r.Start, &r.Len); err != nil {
		return r, 0, fmt.Errorf("bad %s: %v", envRange, err)
	}
	mode := lockf.Exclusive
	if os.Getenv(envMode) == lockf.Shared.String() {
		mode = lockf.Shared
	}
	return r, mode, nil
}

func reportInheritedFDs(path string) error {
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == want {
			fmt.Println("inherited")
			return nil
		}
	}
	fmt.Println("clean")
	return nil
}

// countUnderLock has goroutines increment the 8-byte counter in the file at
// data iters times each, reading and writing it under the exclusive append
// lock. Lost updates mean two holders overlapped.
func countUnderLock(f *lockf.File, data string, goroutines, iters int) error {
	d, err := os.OpenFile(data, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	var (
		wg   sync.WaitGroup
		errs = make(chan error, goroutines)
	)
	for range goroutines {
		wg.Go(func() {
			var buf [8]byte
			for range iters {
				h, err := f.Lock(context.Background(), lockf.AppendRange(), lockf.Exclusive)
				if err != nil {
					errs <- err
					return
				}
				if _, err := d.ReadAt(buf[:], 0); err != nil {
					errs <- err
					return
				}
				binary.LittleEndian.PutUint64(buf[:], binary.LittleEndian.Uint64(buf[:])+1)
				if _, err := d.WriteAt(buf[:], 0); err != nil {
					errs <- err
					return
				}
				if err := h.Unlock(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs // nil if none
}

// child is a running helper process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // stdout, line by line; closed at EOF
}

func startChild(t testing.TB, role, path string, r lockf.Range, mode lockf.Mode, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(),
		envRole+"="+role,
		envPath+"="+path,
		fmt.Sprintf("%s=%d,%d", envRange, r.Start, r.Len),
		envMode+"="+mode.String(),
		// A race-enabled binary sleeps a second before exiting by default.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return c
}

// expect reads the child's next line and checks that it is want.
func (c *child) expect(t testing.TB, want string) {
	t.Helper()
	select {
	case got, ok := <-c.lines:
		if !ok {
			t.Fatalf("helper exited; want %q", want)
		}
		if got != want {
			t.Fatalf("helper said %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("helper silent; want %q", want)
	}
}

// wait waits for the child to exit and checks that it succeeded.
func (c *child) wait(t testing.TB) {
	t.Helper()
	c.stdin.Close()
	for range c.lines { // drain; the scanner closes lines at EOF
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

// release tells a holder to unlock and exit.
func (c *child) release(t testing.TB) {
	t.Helper()
	c.stdin.Close()
	c.expect(t, "unlocked")
	c.wait(t)
}

// probe runs a probe child and returns its two lines of report.
func probe(t testing.TB, path string, r lockf.Range) (tryLock, holder string) {
	t.Helper()
	c := startChild(t, roleProbe, path, r, lockf.Exclusive)
	lines := make([]string, 0, 2)
	for range 2 {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatal("probe exited early")
			}
			lines = append(lines, l)
		case <-time.After(10 * time.Second):
			t.Fatal("probe silent")
		}
	}
	c.wait(t)
	return lines[0], lines[1]
}

func TestCrossProcessExclusive(t *testing.T) {
	f, path := openLockFile(t)
	r := lockf.KeyRange([]byte("cross"))

	c := startChild(t, roleHold, path, r, lockf.Exclusive)
	c.expect(t, "locked")
	mustNotTryLock(t, f, r, lockf.Exclusive)
	mustNotTryLock(t, f, r, lockf.Shared)
	mustHolder(t, f, r, lockf.Exclusive, true)
	// A different key is not affected.
	mustUnlock(t, mustTryLock(t, f, lockf.KeyRange([]byte("other")), lockf.Exclusive))

	type stamped struct {
		res          lockResult
		afterRelease bool
	}
	var releaseSent atomic.Bool
	done := make(chan stamped, 1)
	go func() {
		h, err := f.Lock(context.Background(), r, lockf.Exclusive)
		done <- stamped{lockResult{h, err}, releaseSent.Load()}
	}()
	time.Sleep(blockWait)
	releaseSent.Store(true)
	c.release(t)

	select {
	case s := <-done:
		if s.res.err != nil {
			t.Fatal(s.res.err)
		}
		if !s.afterRelease {
			t.Fatal("Lock returned while the child still held the lock")
		}
		mustUnlock(t, s.res.h)
	case <-time.After(promptly):
		t.Fatal("Lock still blocked after the child released")
	}
}

// TestCrossProcessBlocks is the mustBlock form of the above: the parent's
// Lock must stay blocked while the child holds, and return once it exits.
func TestCrossProcessBlocks(t *testing.T) {
	f, path := openLockFile(t)
	r := lockf.CompactionRange()
	c := startChild(t, roleHold, path, r, lockf.Exclusive)
	c.expect(t, "locked")
	ch := lockAsync(context.Background(), f, r, lockf.Shared)
	mustBlock(t, ch)
	mustBlock(t, ch)
	c.release(t)
	h := mustAcquire(t, ch)
	if tl, hl := probe(t, path, r); tl != "busy" || hl != "held shared" {
		t.Fatalf("probe while parent holds shared: %q, %q", tl, hl)
	}
	mustUnlock(t, h)
}

func TestCrossProcessShared(t *testing.T) {
	f, path := openLockFile(t)
	r := lockf.AppendRange()
	c := startChild(t, roleHold, path, r, lockf.Shared)
	c.expect(t, "locked")
	mustHolder(t, f, r, lockf.Shared, true)
	mustNotTryLock(t, f, r, lockf.Exclusive)
	h := mustTryLock(t, f, r, lockf.Shared)
	c.release(t)
	// The parent's own shared lock is invisible to Holder on its File, but
	// a probe sees it.
	mustHolder(t, f, r, 0, false)
	if tl, hl := probe(t, path, r); tl != "busy" || hl != "held shared" {
		t.Fatalf("probe: %q, %q", tl, hl)
	}
	mustUnlock(t, h)
	if tl, hl := probe(t, path, r); tl != "free" || hl != "not held" {
		t.Fatalf("probe after unlock: %q, %q", tl, hl)
	}
}

func TestCrossProcessCancel(t *testing.T) {
	f, path := openLockFile(t)
	r := lockf.AppendRange()
	c := startChild(t, roleHold, path, r, lockf.Exclusive)
	c.expect(t, "locked")

	const wait = 100 * time.Millisecond
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), wait)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(wait, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []lockf.Mode{lockf.Shared, lockf.Exclusive} {
				ctx, cancel := tc.ctx()
				start := time.Now()
				h, err := f.Lock(ctx, r, mode)
				elapsed := time.Since(start)
				cancel()
				if !errors.Is(err, tc.want) || h != nil {
					t.Fatalf("%v Lock = %v, %v; want error wrapping %v", mode, h, err, tc.want)
				}
				// Returns on the context, not at the next poll: well under
				// one maximal backoff step late in an unloaded run.
				if elapsed < wait || elapsed > wait+promptly/2 {
					t.Fatalf("%v Lock returned after %v, want about %v", mode, elapsed, wait)
				}
			}
		})
	}
	wantTableLen(t, f, 0)
	c.release(t)
}

func TestKilledHolderReleases(t *testing.T) {
	f, path := openLockFile(t)
	r := lockf.KeyRange([]byte("dogpile"))
	c := startChild(t, roleHold, path, r, lockf.Exclusive)
	c.expect(t, "locked")
	mustNotTryLock(t, f, r, lockf.Exclusive)

	waiter := lockAsync(context.Background(), f, r, lockf.Exclusive)
	mustBlock(t, waiter)
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child exit: %v, want killed by SIGKILL", err)
	}
	// The kernel dropped the dead child's lock; the waiter gets it.
	h := mustAcquire(t, waiter)
	mustUnlock(t, h)
	mustUnlock(t, mustTryLock(t, f, r, lockf.Exclusive))
}

// TestOtherDescriptorKeepsLock checks the property for which OFD locks were
// chosen: opening and closing other descriptors of the lock file in the
// holding process does not drop its lock.
func TestOtherDescriptorKeepsLock(t *testing.T) {
	f, path := openLockFile(t)
	r := lockf.KeyRange([]byte("k"))
	h := mustLock(t, f, r, lockf.Exclusive)

	for _, flag := range []int{os.O_RDONLY, os.O_RDWR} {
		g, err := os.OpenFile(path, flag, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
	g := openPath(t, path) // another lockf.File, used and closed
	mustUnlock(t, mustTryLock(t, g, lockf.KeyRange([]byte("unrelated")), lockf.Exclusive))
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	if tl, hl := probe(t, path, r); tl != "busy" || hl != "held exclusive" {
		t.Fatalf("probe after closing other descriptors: %q, %q; want busy, held exclusive", tl, hl)
	}
	mustUnlock(t, h)
	if tl, hl := probe(t, path, r); tl != "free" || hl != "not held" {
		t.Fatalf("probe after Unlock: %q, %q; want free, not held", tl, hl)
	}
}

// TestClassicPOSIXLockIsDropped is the control for the test above: with a
// classic process-owned fcntl lock the same sequence does drop the lock, and
// the probe sees it. It shows the probe can tell, and why lockf does not use
// classic locks.
func TestClassicPOSIXLockIsDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	r := lockf.KeyRange([]byte("k"))
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: r.Start, Len: r.Len}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if tl, _ := probe(t, path, r); tl != "busy" {
		t.Fatalf("probe while classic lock held: %q, want busy", tl)
	}
	g, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	if tl, _ := probe(t, path, r); tl != "free" {
		t.Fatalf("probe after closing another descriptor: %q; classic locks were expected to be dropped", tl)
	}
}

func TestDescriptorNotInherited(t *testing.T) {
	f, path := openLockFile(t)
	h := mustLock(t, f, lockf.AppendRange(), lockf.Exclusive)
	defer h.Unlock()
	c := startChild(t, roleFDs, path, lockf.AppendRange(), lockf.Exclusive)
	c.expect(t, "clean")
	c.wait(t)
}

// TestCrossProcessCounter has two child processes and the parent, each with
// two goroutines, increment one counter under the append lock.
func TestCrossProcessCounter(t *testing.T) {
	f, path := openLockFile(t)
	data := filepath.Join(filepath.Dir(path), "counter")
	if err := os.WriteFile(data, make([]byte, 8), 0o600); err != nil {
		t.Fatal(err)
	}
	const iters = 150
	var children []*child
	for range 2 {
		children = append(children, startChild(t, roleCount, path, lockf.AppendRange(), lockf.Exclusive,
			envData+"="+data, envIters+"="+strconv.Itoa(iters)))
	}
	if err := countUnderLock(f, data, 2, iters); err != nil {
		t.Fatal(err)
	}
	for _, c := range children {
		c.expect(t, "done")
		c.wait(t)
	}
	buf, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := binary.LittleEndian.Uint64(buf), uint64(3*2*iters); got != want {
		t.Fatalf("counter = %d, want %d: updates were lost, so holders overlapped", got, want)
	}
}

// TestHolderReportsChild checks Holder against locks of a child process in
// both modes, and on ranges the child does not hold.
func TestHolderReportsChild(t *testing.T) {
	f, path := openLockFile(t)
	wide := lockf.Range{Start: 1000, Len: 10}
	for _, mode := range []lockf.Mode{lockf.Shared, lockf.Exclusive} {
		t.Run(mode.String(), func(t *testing.T) {
			mustHolder(t, f, wide, 0, false)
			c := startChild(t, roleHold, path, wide, mode)
			c.expect(t, "locked")
			mustHolder(t, f, wide, mode, true)
			mustHolder(t, f, lockf.Range{Start: 1009, Len: 1}, mode, true)
			mustHolder(t, f, lockf.Range{Start: 990, Len: 11}, mode, true)
			mustHolder(t, f, lockf.Range{Start: 1010, Len: 1}, 0, false)
			mustHolder(t, f, lockf.Range{Start: 990, Len: 10}, 0, false)
			c.release(t)
			mustHolder(t, f, wide, 0, false)
		})
	}
	if !strings.Contains(lockf.ErrUnsupported.Error(), "kennel: ") {
		t.Errorf("ErrUnsupported message %q lacks the kennel prefix", lockf.ErrUnsupported)
	}
}
