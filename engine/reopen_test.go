package engine_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/internal/testseed"

	"github.com/kennel-cache/kennel/engine"
)

// TestMain lets the test binary play a child process's role: tests that
// need a process to die re-execute os.Args[0] with KENNEL_TEST_CHILD set
// (the stdlib filelock_test pattern).
func TestMain(m *testing.M) {
	if role := os.Getenv("KENNEL_TEST_CHILD"); role != "" {
		os.Exit(runChild(role, os.Getenv("KENNEL_TEST_DIR")))
	}
	code := m.Run()
	removeBenchTemplates()
	os.Exit(code)
}

// startChild re-executes the test binary in a child role on dir, with
// extra environment, and returns it running with its stdout piped and its
// stderr collected.
func startChild(tb testing.TB, role, dir string, env ...string) (*exec.Cmd, io.Reader, *strings.Builder) {
	tb.Helper()
	cmd, _, stdout, stderr := startChildPiped(tb, role, dir, env...)
	return cmd, stdout, stderr
}

// startChildPiped is startChild with the child's stdin piped too, for
// children that wait for instructions.
func startChildPiped(tb testing.TB, role, dir string, env ...string) (*exec.Cmd, io.WriteCloser, io.Reader, *strings.Builder) {
	tb.Helper()
	cmd := childCommand(role, dir, env...)
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	stdin, stdout := startPiped(tb, cmd)
	return cmd, stdin, stdout, stderr
}

// startPiped starts cmd with its stdin and stdout piped.
func startPiped(tb testing.TB, cmd *exec.Cmd) (io.WriteCloser, io.Reader) {
	tb.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", cmd.Env[len(os.Environ())], err)
	}
	return stdin, stdout
}

// childCommand returns the command that runs the test binary in a child
// role on dir, with extra environment.
func childCommand(role, dir string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// A race-enabled binary sleeps a second at exit so that late race
	// reports make it out; a child has joined its goroutines by then, and a
	// second per child would be most of a multi-process test's run time.
	cmd.Env = append(os.Environ(), "KENNEL_TEST_CHILD="+role, "KENNEL_TEST_DIR="+dir,
		strings.TrimSpace("GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=20"))
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// childRoles maps a child role to what the child does with the cache
// directory; test files register their roles from init functions.
var childRoles = map[string]func(dir string) int{
	"sync-then-write": childSyncThenWrite,
}

func runChild(role, dir string) int {
	run, ok := childRoles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
		return 2
	}
	return run(dir)
}

const syncedKeys = 500

func syncedKey(i int) string { return fmt.Sprintf("synced-%04d", i) }
func afterKey(i int) string  { return fmt.Sprintf("after-%07d", i) }

// childSyncThenWrite writes syncedKeys keys, syncs them, says "synced",
// then writes more keys without syncing, saying "writing" after the first
// thousand, until it is killed.
func childSyncThenWrite(dir string) int {
	c, err := engine.Open(dir, engine.Options{SegmentSize: 64 << 10, Sync: engine.SyncNever})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := range syncedKeys {
		k := syncedKey(i)
		if err := c.Set([]byte(k), []byte(value(k, i, 100))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := c.Sync(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("synced")
	for i := 0; i < 2_000_000; i++ {
		k := afterKey(i)
		if err := c.Set([]byte(k), []byte(value(k, i, 100))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if i == 1000 {
			fmt.Println("writing")
		}
	}
	select {} // wait to be killed
}

// TestSyncedSurvivesKill: a child process writes, calls Sync, goes on
// writing and is killed with SIGKILL mid-write. Reopening (the kernel
// dropped its lock) finds every synced write, and every later write that
// reached the page cache, in order and whole.
func TestSyncedSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	cmd, stdout, stderr := startChild(t, "sync-then-write", dir)
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	for _, want := range []string{"synced", "writing"} {
		select {
		case line, ok := <-lines:
			if !ok || line != want {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child said %q (open %v), want %q; stderr:\n%s", line, ok, want, stderr.String())
			}
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child did not say %q; stderr:\n%s", want, stderr.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	err := cmd.Wait()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("child ended with %v, want death by signal; stderr:\n%s", err, stderr.String())
	}

	c := openCache(t, dir, smallOptions())
	for i := range syncedKeys {
		k := syncedKey(i)
		wantValue(t, c, k, value(k, i, 100))
	}
	// Later writes are a prefix of what the child wrote, each one whole.
	after := 0
	for ; ; after++ {
		k := afterKey(after)
		v, err := c.Get([]byte(k))
		if errors.Is(err, engine.ErrNotFound) {
			break
		}
		if err != nil || string(v) != value(k, after, 100) {
			t.Fatalf("Get(%q) = %.30q, %v", k, v, err)
		}
	}
	if after <= 1000 {
		t.Fatalf("only %d unsynced writes found; the child had made more than 1000", after)
	}
	if n := c.Len(); n != syncedKeys+after {
		t.Fatalf("Len = %d, want %d synced + %d later writes", n, syncedKeys, after)
	}
	t.Logf("%d writes after the sync survived the kill", after)
	// The recovered cache takes writes and keeps them.
	mustSet(t, c, "after-recovery", "yes")
	mustClose(t, c)
	c = openCache(t, dir, smallOptions())
	wantValue(t, c, "after-recovery", "yes")
	if n := c.Len(); n != syncedKeys+after+1 {
		t.Fatalf("Len = %d after a second reopen, want %d", n, syncedKeys+after+1)
	}
}

// TestReopen applies random writes in rounds, across many segments, and
// reopens between rounds, with the hint files kept or deleted: the cache
// holds exactly what was written.
func TestReopen(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 3))
	dir := t.TempDir()
	model := map[string]string{}
	n := 0
	for round := range 6 {
		c := openCache(t, dir, smallOptions())
		checkModel(t, c, model)
		for range 400 {
			k := fmt.Sprintf("key-%03d", rng.IntN(300))
			n++
			switch r := rng.IntN(10); {
			case r < 7:
				v := value(k, n, rng.IntN(300))
				mustSet(t, c, k, v)
				model[k] = v
			case r < 8:
				v := value(k, n, rng.IntN(300))
				if err := c.SetWithTTL([]byte(k), []byte(v), 1000*time.Hour); err != nil {
					t.Fatal(err)
				}
				model[k] = v
			default:
				mustDelete(t, c, k)
				delete(model, k)
			}
		}
		checkModel(t, c, model)
		if err := c.Compact(); err != nil {
			t.Fatal(err)
		}
		checkModel(t, c, model)
		st := c.Stats()
		mustClose(t, c)
		// The byte accounting rebuilt on open matches the one kept while
		// writing and compacting.
		c = openCache(t, dir, smallOptions())
		if st2 := c.Stats(); st2.LiveBytes != st.LiveBytes || st2.DeadBytes != st.DeadBytes || st2.Keys != st.Keys {
			t.Fatalf("round %d: before Close %d keys, live %d, dead %d bytes; after reopen %d keys, live %d, dead %d",
				round, st.Keys, st.LiveBytes, st.DeadBytes, st2.Keys, st2.LiveBytes, st2.DeadBytes)
		}
		mustClose(t, c)

		segs, hints := files(t, dir, ".seg"), files(t, dir, ".hint")
		if len(hints) != len(segs)-1 {
			t.Fatalf("round %d: %d segments and %d hints after Close, want a hint for every segment but the active one", round, len(segs), len(hints))
		}
		if round%2 == 1 {
			removeHints(t, dir)
		}
	}
	if last := lastSegmentID(t, dir); last < 20 {
		t.Fatalf("last segment %d: the test should roll many", last)
	}
	c := openCache(t, dir, smallOptions())
	checkModel(t, c, model)
}

// TestReopenManySegments fills many segments and reopens from hints, then
// from scans alone, then from a mix.
func TestReopenManySegments(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	model := map[string]string{}
	for i := range 3000 {
		k := fmt.Sprintf("k%05d", i)
		model[k] = value(k, i, 50+i%150)
		mustSet(t, c, k, model[k])
	}
	mustClose(t, c)
	segs := files(t, dir, ".seg")
	if len(segs) < 50 {
		t.Fatalf("%d segments, want at least 50", len(segs))
	}

	c = openCache(t, dir, smallOptions())
	checkModel(t, c, model)
	mustClose(t, c)

	if n := removeHints(t, dir); n != len(segs)-1 {
		t.Fatalf("%d hints for %d segments", n, len(segs))
	}
	c = openCache(t, dir, smallOptions())
	checkModel(t, c, model)
	if s := c.Stats(); s.Corruptions != 0 {
		t.Fatalf("Stats.Corruptions = %d on a clean directory", s.Corruptions)
	}
	mustClose(t, c)

	// Half the hints missing.
	for i, h := range files(t, dir, ".hint") {
		if i%2 == 0 {
			if err := os.Remove(filepath.Join(dir, h)); err != nil {
				t.Fatal(err)
			}
		}
	}
	c = openCache(t, dir, smallOptions())
	checkModel(t, c, model)
}
