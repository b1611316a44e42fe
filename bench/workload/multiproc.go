package workload

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/kennel-cache/kennel/bench/store"
)

// Lines a multi-process worker prints on its stdout. Anything else there
// (a store's own chatter) is passed on to stderr.
const (
	workerReady       = "kbench-worker ready"
	workerUnsupported = "kbench-worker unsupported "
	workerGo          = "go"
	workerResult      = "kbench-worker result "
)

// workerGrace is how long a worker left behind by a failed or skipped run
// may take to exit by itself (closing its store) before it is killed.
const workerGrace = 10 * time.Second

// WorkerConfig is what one process of the multi-process workload does: the
// mixed workload's operations, on its own, on a store that other processes
// have open too.
type WorkerConfig struct {
	Store       string  `json:"store"`
	Dir         string  `json:"dir"`
	Index       int     `json:"index"`
	N           int     `json:"n"`
	Ops         int     `json:"ops"`
	ReadPercent int     `json:"read_percent"`
	ZipfS       float64 `json:"zipf_s"`
	ValueSize   int     `json:"value_size"`
	Seed        uint64  `json:"seed"`
}

// workerReport is what a worker sends back.
type workerReport struct {
	Ops     int     `json:"ops"`
	Seconds float64 `json:"seconds"`
	Samples []int64 `json:"samples_ns"`
	Err     string  `json:"error,omitempty"`
}

// Run is the worker's side: it opens s (a new, closed adapter) on c.Dir,
// says it is ready on out, waits for the go line on in, runs its operations,
// writes its report to out and closes s. A store that cannot be opened by a
// second process (store.ErrUnsupported) is reported as such, not as an
// error.
func (c WorkerConfig) Run(s store.Store, in io.Reader, out io.Writer) (err error) {
	if err := s.Open(c.Dir); err != nil {
		if errors.Is(err, store.ErrUnsupported) {
			_, werr := fmt.Fprintf(out, "%s%s\n", workerUnsupported, strings.ReplaceAll(err.Error(), "\n", " "))
			return werr
		}
		return fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := s.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	if _, err := fmt.Fprintln(out, workerReady); err != nil {
		return err
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != workerGo {
		return fmt.Errorf("worker %d: no go signal (%q, %v)", c.Index, line, err)
	}
	d, lat, err := runOps(1, c.Ops, func(int) opFunc {
		return mixedOp(s, c.N, c.ReadPercent, c.ZipfS, c.ValueSize, newRand(c.Seed, 1000+c.Index))
	})
	rep := workerReport{Ops: c.Ops, Seconds: d.Seconds(), Samples: lat}
	if err != nil {
		rep.Err = err.Error()
	}
	b, jerr := json.Marshal(rep)
	if jerr != nil {
		return jerr
	}
	_, werr := fmt.Fprintf(out, "%s%s\n", workerResult, b)
	return errors.Join(err, werr)
}

// MultiProcConfig runs Procs worker processes at once on the store in Dir,
// each doing OpsPerProc operations of the mixed workload (ReadPercent reads,
// Zipf keys) from one goroutine, and reports their combined throughput. The
// calling process keeps its own handle open meanwhile. Command returns the
// command that starts one worker; the workload starts them all, waits until
// each has opened the store, then releases them together.
type MultiProcConfig struct {
	Store       string
	Dir         string
	Procs       int
	N           int
	OpsPerProc  int
	ReadPercent int
	ZipfS       float64
	ValueSize   int
	Seed        uint64
	Command     func(WorkerConfig) *exec.Cmd
	// Timeout bounds the whole run; workers still running then are killed.
	Timeout time.Duration
}

// Name is "multiproc-2", "multiproc-4", ….
func (c MultiProcConfig) Name() string { return fmt.Sprintf("multiproc-%d", c.Procs) }

type worker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // the protocol lines the worker prints, closed at EOF
}

// Run starts the workers and gathers their reports. s is the caller's open
// handle on the store; it is used only to check that the store can share
// its directory.
func (c MultiProcConfig) Run(s store.Store) Result {
	name := c.Name()
	if sd, ok := s.(store.SharedDir); !ok || !sd.SharesDir() {
		return skipped(name, "store cannot be opened by several processes at once")
	}
	r := newResult(name)
	var workers []*worker
	defer func() {
		// Reached with workers still running only when the run failed or
		// was skipped: closing their stdin makes a worker waiting for the
		// go line give up; one that does not exit soon is killed.
		for _, w := range workers {
			w.stdin.Close()
		}
		for _, w := range workers {
			if w.cmd.ProcessState == nil {
				t := time.AfterFunc(workerGrace, func() { w.cmd.Process.Kill() })
				w.cmd.Wait() // its error is not the one to report
				t.Stop()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()
	for i := 0; i < c.Procs; i++ {
		w, err := c.start(i)
		if err != nil {
			return r.fail(err)
		}
		workers = append(workers, w)
	}
	for i, w := range workers {
		line, err := w.next(ctx)
		if err != nil {
			return r.fail(fmt.Errorf("worker %d did not get ready: %w", i, err))
		}
		if msg, ok := strings.CutPrefix(line, workerUnsupported); ok {
			return skipped(name, "a second process cannot open the store: "+msg)
		}
	}
	t0 := time.Now()
	for i, w := range workers {
		if _, err := fmt.Fprintln(w.stdin, workerGo); err != nil {
			return r.fail(fmt.Errorf("worker %d: %w", i, err))
		}
	}
	var all latencies
	total := 0
	for i, w := range workers {
		line, err := w.next(ctx)
		if err != nil {
			return r.fail(fmt.Errorf("worker %d: %w", i, err))
		}
		var rep workerReport
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, workerResult)), &rep); err != nil {
			return r.fail(fmt.Errorf("worker %d: bad report: %w", i, err))
		}
		if rep.Err != "" {
			return r.fail(fmt.Errorf("worker %d: %s", i, rep.Err))
		}
		total += rep.Ops
		all = append(all, rep.Samples...)
	}
	elapsed := time.Since(t0)
	for i, w := range workers {
		w.stdin.Close()
		if err := w.cmd.Wait(); err != nil {
			return r.fail(fmt.Errorf("worker %d: %w", i, err))
		}
	}
	rate(&r, total, elapsed)
	all.fill(&r)
	return r
}

func (c MultiProcConfig) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 30 * time.Minute
}

func (c MultiProcConfig) start(i int) (*worker, error) {
	cmd := c.Command(WorkerConfig{
		Store: c.Store, Dir: c.Dir, Index: i, N: c.N, Ops: c.OpsPerProc,
		ReadPercent: c.ReadPercent, ZipfS: c.ZipfS, ValueSize: c.ValueSize, Seed: c.Seed,
	})
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", i, err)
	}
	w := &worker{cmd: cmd, stdin: stdin, lines: make(chan string, 2)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<30) // a report carries every latency sample
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "kbench-worker ") {
				w.lines <- line
			} else {
				fmt.Fprintln(os.Stderr, line)
			}
		}
		close(w.lines)
	}()
	return w, nil
}

// next returns the worker's next protocol line.
func (w *worker) next(ctx context.Context) (string, error) {
	select {
	case line, ok := <-w.lines:
		if !ok {
			return "", errors.New("exited early (see its stderr above)")
		}
		return line, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
