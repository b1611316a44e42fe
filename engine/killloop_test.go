package engine_test

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/testseed"
	"github.com/kennel-cache/kennel/segment"
)

var killCycles = flag.Int("kennel.killcycles", 20, "kill -9 cycles of TestKillLoop (CI runs 20; a soak run, 1000 or more)")

// killLoopKeys is the key space of the kill loop: small, so that keys are
// overwritten and deleted many times across segments.
const killLoopKeys = 300

// killOp is write number n of the kill loop, the same in child and parent:
// mostly puts of a value naming n, one in ten a delete.
func killOp(seed uint64, n int) (key string, value string, del bool) {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	key = fmt.Sprintf("key-%03d", r.IntN(killLoopKeys))
	if r.IntN(10) == 0 {
		return key, "", true
	}
	return key, fmt.Sprintf("%s=%d:", key, n) + strings.Repeat("v", r.IntN(300)), false
}

// TestKillLoop runs kill -9 cycles: a child process applies seeded writes,
// announcing each before it starts ("b n") and once it returned ("a n");
// the parent kills it at a random moment, reopens the directory and checks
// every key against the acknowledged writes. Each write that returned must
// be there (a killed process loses nothing that reached the page cache),
// the one in flight may or may not be, nothing else may appear, and no
// value may be torn or corrupt. The next cycle's child continues on the
// recovered directory.
func TestKillLoop(t *testing.T) {
	seed := testseed.Seed(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(seed, 0))
	model := make(map[string]string) // acknowledged state; absent = no value
	next := 0
	for cycle := range *killCycles {
		cmd, stdout, stderr := startChild(t, "kill-loop", dir,
			"KENNEL_KILL_SEED="+strconv.FormatUint(seed, 10), "KENNEL_KILL_START="+strconv.Itoa(next))
		killAfter := time.Duration(20+rng.IntN(200)) * time.Millisecond
		timer := time.AfterFunc(killAfter, func() { cmd.Process.Kill() })
		inFlight := -1
		readProgress(stdout, func(kind string, n int) {
			switch kind {
			case "b":
				inFlight = n
			case "a":
				key, value, del := killOp(seed, n)
				if del {
					delete(model, key)
				} else {
					model[key] = value
				}
				inFlight, next = -1, n+1
			}
		})
		timer.Stop()
		err := cmd.Wait()
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != -1 {
			t.Fatalf("cycle %d: child ended with %v, want death by SIGKILL; stderr:\n%s", cycle, err, stderr.String())
		}

		c := openCache(t, dir, killLoopOptions())
		var flightKey, flightValue string
		flightDel := false
		if inFlight >= 0 {
			flightKey, flightValue, flightDel = killOp(seed, inFlight)
		}
		for i := range killLoopKeys {
			key := fmt.Sprintf("key-%03d", i)
			got, err := c.Get([]byte(key))
			want, ok := model[key]
			switch {
			case err != nil && !errors.Is(err, engine.ErrNotFound):
				t.Fatalf("cycle %d (seed %d): Get(%s): %v", cycle, seed, key, err)
			case key == flightKey && !flightDel && err == nil && string(got) == flightValue:
				model[key] = flightValue // the write in flight landed
			case key == flightKey && flightDel && errors.Is(err, engine.ErrNotFound):
				delete(model, key) // the delete in flight landed
			case !ok && !errors.Is(err, engine.ErrNotFound):
				t.Fatalf("cycle %d (seed %d): %s = %q, want no value", cycle, seed, key, got)
			case ok && (err != nil || string(got) != want):
				t.Fatalf("cycle %d (seed %d): %s = %q, %v; want %q", cycle, seed, key, got, err, want)
			}
		}
		if n := c.Stats().Corruptions; n != 0 {
			t.Fatalf("cycle %d: open reported %d corruptions after a kill", cycle, n)
		}
		// The reopen, first to open the directory, removed the temporary
		// file of a sidecar write the kill cut; a compaction sweeps a file
		// named but not recorded.
		for _, name := range sidecarFiles(t, dir) {
			if strings.Contains(name, segment.TempInfix) {
				t.Fatalf("cycle %d: temporary file %s left after reopen", cycle, name)
			}
		}
		if cycle%5 == 4 {
			if err := c.Compact(); err != nil {
				t.Fatal(err)
			}
			if files, live := len(sidecarFiles(t, dir)), c.Stats().SidecarFiles; files != live {
				t.Fatalf("cycle %d: %d sidecar files after a sweep, %d live values in sidecars", cycle, files, live)
			}
		}
		if inFlight >= 0 {
			next = inFlight + 1 // the child of the next cycle never reuses a number
		}
		mustClose(t, c)
	}
	t.Logf("%d kill cycles, %d writes", *killCycles, next)
}

// killLoopOptions: small segments, so that the loop rolls often, and an
// inline limit that sends about a third of the values to sidecar files.
// readProgress reads a workload child's lines, each a word and a number
// ("b N": operation N begun; "a N": acknowledged), and passes them to fn.
// A line cut by a kill is skipped.
func readProgress(r io.Reader, fn func(kind string, n int)) {
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) != 2 {
			continue
		}
		if n, err := strconv.Atoi(f[1]); err == nil {
			fn(f[0], n)
		}
	}
}

func killLoopOptions() engine.Options {
	return engine.Options{SegmentSize: 64 << 10, InlineLimit: 200, SidecarGrace: -1}
}

// childKillLoop applies the kill loop's writes from KENNEL_KILL_START on
// until it is killed.
func init() { childRoles["kill-loop"] = childKillLoop }

func childKillLoop(dir string) int {
	seed, err1 := strconv.ParseUint(os.Getenv("KENNEL_KILL_SEED"), 10, 64)
	start, err2 := strconv.Atoi(os.Getenv("KENNEL_KILL_START"))
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts := killLoopOptions()
	opts.Sync = engine.SyncNever
	c, err := engine.Open(dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	for n := start; ; n++ {
		key, value, del := killOp(seed, n)
		fmt.Fprintf(out, "b %d\n", n)
		out.Flush()
		if del {
			err = c.Delete([]byte(key))
		} else {
			err = c.Set([]byte(key), []byte(value))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(out, "a %d\n", n)
		out.Flush()
	}
}
