package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/engine"
)

// BenchmarkProcesses runs Set or Get from 1, 2 and 4 processes sharing one
// preloaded directory, one goroutine each, and from one process opened with
// Options.Exclusive: the price of sharing. Each process opens the cache
// before the clock starts and does its share of b.N operations on random
// keys. Set in a shared process takes the append lock and catches up for
// every group; Get checks the published position, and catches up when
// another process wrote.
func BenchmarkProcesses(b *testing.B) {
	n := *benchKeys
	for _, op := range []string{"set", "get"} {
		for _, mode := range []struct {
			procs     int
			exclusive bool
		}{{1, true}, {1, false}, {2, false}, {4, false}} {
			name := fmt.Sprintf("op=%s/procs=%d/exclusive=%v", op, mode.procs, mode.exclusive)
			b.Run(name, func(b *testing.B) {
				dir := copyDir(b, benchTemplate(b, n))
				workers := make([]*benchWorker, mode.procs)
				for i := range workers {
					workers[i] = startBenchWorker(b, dir, op, n, i, mode.exclusive)
				}
				b.SetBytes(benchKeyLen + benchValueLen)
				b.ResetTimer()
				for i, w := range workers {
					share := b.N / mode.procs
					if i == 0 {
						share += b.N % mode.procs
					}
					w.send(b, fmt.Sprintf("go %d", share))
				}
				for _, w := range workers {
					w.expect(b, "done")
				}
				b.StopTimer()
				for _, w := range workers {
					w.stop(b)
				}
			})
		}
	}
}

// benchWorker is a child process running benchmark operations on command.
type benchWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *strings.Builder
}

func startBenchWorker(b *testing.B, dir, op string, keys, id int, exclusive bool) *benchWorker {
	cmd, stdin, stdout, stderr := startChildPiped(b, "bench-worker", dir,
		"KENNEL_BENCH_OP="+op, "KENNEL_BENCH_KEYS="+strconv.Itoa(keys),
		"KENNEL_BENCH_ID="+strconv.Itoa(id), "KENNEL_BENCH_EXCLUSIVE="+strconv.FormatBool(exclusive))
	w := &benchWorker{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout), stderr: stderr}
	w.expect(b, "ready")
	return w
}

func (w *benchWorker) send(b *testing.B, line string) {
	if _, err := fmt.Fprintln(w.stdin, line); err != nil {
		b.Fatalf("worker: %v; stderr: %s", err, w.stderr)
	}
}

func (w *benchWorker) expect(b *testing.B, want string) {
	if !w.lines.Scan() || w.lines.Text() != want {
		b.Fatalf("worker said %q, want %q; stderr: %s", w.lines.Text(), want, w.stderr)
	}
}

func (w *benchWorker) stop(b *testing.B) {
	w.stdin.Close()
	if err := w.cmd.Wait(); err != nil {
		b.Fatalf("worker: %v; stderr: %s", err, w.stderr)
	}
}

func init() { childRoles["bench-worker"] = childBenchWorker }

// childBenchWorker opens the cache, says "ready", and for each "go N" line
// does N operations and says "done"; it closes the cache when stdin ends.
func childBenchWorker(dir string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	op := os.Getenv("KENNEL_BENCH_OP")
	keys, err := strconv.Atoi(os.Getenv("KENNEL_BENCH_KEYS"))
	if err != nil {
		return fail(err)
	}
	id, _ := strconv.Atoi(os.Getenv("KENNEL_BENCH_ID"))
	opts := benchOptions()
	opts.Exclusive = os.Getenv("KENNEL_BENCH_EXCLUSIVE") == "true"
	c, err := engine.Open(dir, opts)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	keySet := benchKeySet(keys)
	value := make([]byte, benchValueLen)
	rng := rand.New(rand.NewPCG(uint64(id), 5))
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		count, err := strconv.Atoi(strings.TrimPrefix(in.Text(), "go "))
		if err != nil {
			return fail(err)
		}
		for range count {
			k := keySet[rng.IntN(keys)]
			if op == "set" {
				err = c.Set(k, value)
			} else {
				_, err = c.Get(k)
			}
			if err != nil {
				return fail(err)
			}
		}
		fmt.Println("done")
	}
	return 0
}
