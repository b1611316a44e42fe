// Package kbench is the kbench command: it benchmarks kennel and its peer
// stores on the workloads of bench/workload and measures the machine's
// limits beside them.
//
// The parent process runs nothing itself. For each store and each run it
// starts a fresh child process (itself again, with -role=store), so that no
// store inherits another's heap, goroutines, open files or page-cache
// warmth from the same process, and the reopen workload's heap measurement
// sees one store only. Children run one at a time, each on its own fresh
// directory, and report one JSON line per workload on stdout, prefixed with
// "kbench-result "; other stdout lines (a store's own chatter) are passed on
// to stderr. The multi-process workload starts further children
// (-role=worker) from the store child. The machine limits are measured in a
// child of their own (-role=machine), before the stores.
//
// The parent then takes the median of every metric over the runs, prints a
// table and writes results.json, RESULTS.md and chart.svg into -out.
package kbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kennel-cache/kennel/bench/machine"
	"github.com/kennel-cache/kennel/bench/report"
	"github.com/kennel-cache/kennel/bench/store"
	"github.com/kennel-cache/kennel/bench/workload"
)

// Prefixes of the protocol lines a child prints on stdout.
const (
	resultPrefix  = "kbench-result "
	machinePrefix = "kbench-machine "
)

// Command starts this program again with args; Main uses it to start its
// children. The command wires it to os.Executable, tests to the test binary.
type Command func(args []string) *exec.Cmd

// workloadOrder lists the names -workloads accepts, in the order a store
// child runs them. large and multiproc run one variant per -large-sizes and
// -procs entry.
const workloadOrder = "load get1 get2 absent getorcreate mixed reopen churn multiproc large"

// config holds the parsed flags.
type config struct {
	stores      []string
	workloads   map[string]bool
	n, ops      int
	runs        int
	out         string
	scratch     string
	valueSize   int
	largeMiB    int
	largeSizes  []int
	zipfS       float64
	churnRounds int
	churnMax    time.Duration
	fsyncCount  int
	copyMiB     int
	procs       []int
	machine     bool
	ddMiB       int
	timeout     time.Duration
	keep        bool
	tmp         string // the children's TMPDIR, set by parent

	// Internal flags for children.
	role   string
	store  string
	dir    string
	run    int
	worker string
}

func (c *config) flags(fs *flag.FlagSet) (stores, workloads, sizes, procs *string) {
	stores = fs.String("stores", "", "comma-separated stores to run (default: all built in)")
	workloads = fs.String("workloads", "all", "comma-separated workloads: "+strings.ReplaceAll(workloadOrder, " ", ",")+" (get1/get2, multiproc2/multiproc4, large1m/large64m pick one variant), or all")
	fs.IntVar(&c.n, "n", 1_000_000, "number of small records")
	fs.IntVar(&c.ops, "ops", 0, "operations per read/mixed workload (default: n)")
	fs.IntVar(&c.runs, "runs", 3, "runs per store; the report shows medians")
	fs.StringVar(&c.out, "out", "results", "directory for results.json, RESULTS.md and chart.svg")
	fs.StringVar(&c.scratch, "dir", os.TempDir(), "directory under which stores are created (the file system under test)")
	fs.IntVar(&c.valueSize, "value-size", workload.DefaultValueSize, "bytes per small value")
	fs.IntVar(&c.largeMiB, "large-mib", 256, "MiB written per large-value size")
	sizes = fs.String("large-sizes", "1MiB,64MiB", "large value sizes")
	fs.Float64Var(&c.zipfS, "zipf", 1.1, "Zipf exponent of the mixed workloads (> 1)")
	fs.IntVar(&c.churnRounds, "churn-rounds", 3, "overwrites of every record in the churn workload")
	fs.DurationVar(&c.churnMax, "churn-max", 3*time.Minute, "time limit of the churn overwrites (0: none); the rounds done are reported")
	procs = fs.String("procs", "2,4", "process counts of the multiproc workload")
	fs.BoolVar(&c.machine, "machine", true, "measure the machine's limits (dd, fsync, memory copy)")
	fs.IntVar(&c.ddMiB, "dd-mib", 1024, "MiB dd writes and reads for the disk bandwidth")
	fs.IntVar(&c.fsyncCount, "fsync-count", 1000, "4 KiB write + fdatasync rounds timed (at most 10 s)")
	fs.IntVar(&c.copyMiB, "copy-mib", 256, "MiB per buffer of the memory copy measurement")
	fs.DurationVar(&c.timeout, "timeout", time.Hour, "time limit of one child process")
	fs.BoolVar(&c.keep, "keep", false, "keep the store directories")

	fs.StringVar(&c.role, "role", "", "internal: the role of a child process (store, machine, worker)")
	fs.StringVar(&c.store, "store", "", "internal: the store a child runs")
	fs.StringVar(&c.dir, "store-dir", "", "internal: the directory a child works in")
	fs.IntVar(&c.run, "run", 1, "internal: the run number of a store child")
	fs.StringVar(&c.worker, "worker", "", "internal: a multiproc worker's configuration, as JSON")
	return
}

// Main runs kbench with args (without the program name) and returns the exit
// code: 0, 1 for a failure, 2 for a usage error.
func Main(args []string, self Command) int {
	defer store.Tidy()
	fs := flag.NewFlagSet("kbench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kbench [flags]\n\nBenchmarks kennel and peer stores; see bench/README.md.\n\n")
		fs.PrintDefaults()
	}
	var c config
	storesFlag, workloadsFlag, sizesFlag, procsFlag := c.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := c.finish(*storesFlag, *workloadsFlag, *sizesFlag, *procsFlag); err != nil {
		fmt.Fprintf(os.Stderr, "kbench: %v\n", err)
		return 2
	}
	var err error
	switch c.role {
	case "":
		err = c.parent(args, self)
	case "store":
		err = c.storeChild(self)
	case "machine":
		err = c.machineChild()
	case "worker":
		err = c.workerChild()
	default:
		fmt.Fprintf(os.Stderr, "kbench: unknown role %q\n", c.role)
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kbench: %v\n", err)
		return 1
	}
	return 0
}

// finish parses the list flags and checks the rest.
func (c *config) finish(stores, workloads, sizes, procs string) error {
	if stores != "" {
		c.stores = splitList(stores)
	} else {
		for _, e := range store.Registry() {
			c.stores = append(c.stores, e.Name)
		}
	}
	for _, s := range c.stores {
		if _, err := store.Lookup(s); err != nil {
			return err
		}
	}
	c.workloads = map[string]bool{}
	var variantSizes, variantProcs []string // from names like large64m, multiproc4
	for _, w := range splitList(workloads) {
		switch w {
		case "all":
			for _, x := range strings.Fields(workloadOrder) {
				c.workloads[x] = true
			}
		case "get":
			c.workloads["get1"], c.workloads["get2"] = true, true
		case "get1", "get2", "load", "absent", "getorcreate", "mixed", "reopen", "churn", "multiproc", "large":
			c.workloads[w] = true
		default:
			switch {
			case strings.HasPrefix(w, "multiproc"):
				p, err := strconv.Atoi(strings.TrimPrefix(w, "multiproc"))
				if err != nil || p < 1 {
					return fmt.Errorf("bad workload %q", w)
				}
				c.workloads["multiproc"] = true
				variantProcs = append(variantProcs, strconv.Itoa(p))
			case strings.HasPrefix(w, "large"):
				c.workloads["large"] = true
				variantSizes = append(variantSizes, strings.TrimPrefix(w, "large"))
			default:
				return fmt.Errorf("unknown workload %q (known: %s)", w, workloadOrder)
			}
		}
	}
	if len(variantSizes) > 0 {
		sizes = strings.Join(variantSizes, ",")
	}
	if len(variantProcs) > 0 {
		procs = strings.Join(variantProcs, ",")
	}
	c.largeSizes = nil
	for _, s := range splitList(sizes) {
		n, err := parseSize(s)
		if err != nil {
			return err
		}
		c.largeSizes = append(c.largeSizes, n)
	}
	c.procs = nil
	for _, s := range splitList(procs) {
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 {
			return fmt.Errorf("bad process count %q", s)
		}
		c.procs = append(c.procs, p)
	}
	switch {
	case c.n < 2 || c.n >= 1<<31-1:
		return fmt.Errorf("-n must be in [2, 2^31-1), not %d", c.n)
	case c.runs < 1:
		return errors.New("-runs must be at least 1")
	case c.valueSize < 12:
		return errors.New("-value-size must be at least 12 (a value starts with its index and version)")
	case c.zipfS <= 1:
		return errors.New("-zipf must be above 1")
	case c.churnRounds < 1:
		return errors.New("-churn-rounds must be at least 1")
	}
	if c.ops <= 0 {
		c.ops = c.n
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, strings.ToLower(f))
		}
	}
	return out
}

// parseSize reads "64MiB", "64m", "512KiB", "4096".
func parseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"k", 1 << 10}, {"m", 1 << 20}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n*mult < 16 {
		return 0, fmt.Errorf("bad value size %q (want e.g. 1MiB, at least 16 bytes)", s)
	}
	return n * mult, nil
}

// childArgs returns the flags that make a child do what this run does.
func (c *config) childArgs() []string {
	var ws []string
	for _, w := range strings.Fields(workloadOrder) {
		if c.workloads[w] {
			ws = append(ws, w)
		}
	}
	var sizes, procs []string
	for _, s := range c.largeSizes {
		sizes = append(sizes, strconv.Itoa(s))
	}
	for _, p := range c.procs {
		procs = append(procs, strconv.Itoa(p))
	}
	return []string{
		"-workloads=" + strings.Join(ws, ","),
		"-n=" + strconv.Itoa(c.n),
		"-ops=" + strconv.Itoa(c.ops),
		"-value-size=" + strconv.Itoa(c.valueSize),
		"-large-mib=" + strconv.Itoa(c.largeMiB),
		"-large-sizes=" + strings.Join(sizes, ","),
		"-zipf=" + strconv.FormatFloat(c.zipfS, 'g', -1, 64),
		"-churn-rounds=" + strconv.Itoa(c.churnRounds),
		"-churn-max=" + c.churnMax.String(),
		"-fsync-count=" + strconv.Itoa(c.fsyncCount),
		"-copy-mib=" + strconv.Itoa(c.copyMiB),
		"-procs=" + strings.Join(procs, ","),
		"-dd-mib=" + strconv.Itoa(c.ddMiB),
		"-timeout=" + c.timeout.String(),
	}
}

// parent runs the children and writes the report.
func (c *config) parent(args []string, self Command) error {
	rep := &report.Report{
		Started:  time.Now(),
		Command:  strings.TrimSpace("kbench " + strings.Join(args, " ")),
		Platform: platform(),
		Params: report.Params{
			N: c.n, Runs: c.runs, Ops: c.ops, ValueSize: c.valueSize, LargeMiB: c.largeMiB,
			ZipfS: c.zipfS, ChurnRound: c.churnRounds, ChurnMax: c.churnMax.String(),
		},
	}
	for _, w := range strings.Fields(workloadOrder) {
		if c.workloads[w] {
			rep.Params.Workloads = append(rep.Params.Workloads, w)
		}
	}
	if err := os.MkdirAll(c.scratch, 0o755); err != nil {
		return err
	}
	// Children get a TMPDIR of their own, removed at the end, so that what
	// store packages leave in the temporary directory (rosedb creates a
	// directory there when its package is initialised) goes with it, even
	// from a child that was killed.
	tmp, err := os.MkdirTemp(c.scratch, "kbench-tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	c.tmp = tmp

	if c.machine {
		fmt.Fprintln(os.Stderr, "kbench: measuring the machine's limits")
		dir, err := os.MkdirTemp(c.scratch, "kbench-machine-")
		if err != nil {
			return err
		}
		lines, err := c.child(self, append(c.childArgs(), "-role=machine", "-store-dir="+dir))
		os.RemoveAll(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kbench: machine limits: %v\n", err)
		}
		for _, l := range lines {
			if strings.HasPrefix(l, machinePrefix) {
				var m machine.Limits
				if err := json.Unmarshal([]byte(strings.TrimPrefix(l, machinePrefix)), &m); err == nil {
					rep.Machine = &m
				}
			}
		}
	}

	for _, name := range c.stores {
		e, _ := store.Lookup(name) // checked in finish
		version := e.Version()
		if e.Module == kennelModule {
			version = strings.TrimSpace(version + " " + gitRevision())
		}
		rep.Stores = append(rep.Stores, report.Store{
			Name: e.Name, Module: e.Module, Version: version, Config: e.Config, Missing: e.Missing,
		})
		if e.New == nil {
			fmt.Fprintf(os.Stderr, "kbench: %s: %s\n", e.Name, e.Missing)
			continue
		}
		for run := 1; run <= c.runs; run++ {
			fmt.Fprintf(os.Stderr, "kbench: %s run %d/%d\n", name, run, c.runs)
			rep.Runs = append(rep.Runs, c.storeRun(self, name, run))
		}
	}

	rep.Summarize()
	fmt.Println()
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	if err := rep.WriteFiles(c.out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kbench: wrote %s\n", filepath.Join(c.out, "{results.json,RESULTS.md,chart.svg}"))
	return nil
}

// storeRun runs one store child on a fresh directory.
func (c *config) storeRun(self Command, name string, run int) report.Run {
	r := report.Run{Store: name, Run: run}
	dir, err := os.MkdirTemp(c.scratch, "kbench-"+name+"-")
	if err != nil {
		r.Err = err.Error()
		return r
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	}
	args := append(c.childArgs(), "-role=store", "-store="+name, "-store-dir="+dir, "-run="+strconv.Itoa(run))
	lines, err := c.child(self, args)
	if err != nil {
		r.Err = err.Error()
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, resultPrefix) {
			continue
		}
		var res workload.Result
		if err := json.Unmarshal([]byte(strings.TrimPrefix(l, resultPrefix)), &res); err != nil {
			r.Err = strings.TrimSpace(r.Err + "; bad result line: " + err.Error())
			continue
		}
		r.Results = append(r.Results, res)
	}
	return r
}

// child runs one child process and returns its protocol lines. The child's
// stderr goes to ours; the last few KiB of it are kept for the error.
func (c *config) child(self Command, args []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cmd := self(args)
	if c.tmp != "" {
		cmd.Env = append(cmd.Environ(), "TMPDIR="+c.tmp)
	}
	tail := &tailBuffer{max: 2048}
	cmd.Stderr = io.MultiWriter(os.Stderr, tail)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	defer stop()
	var lines []string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, resultPrefix) || strings.HasPrefix(l, machinePrefix) {
			lines = append(lines, l)
		} else {
			fmt.Fprintln(os.Stderr, l)
		}
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after the %v time limit", c.timeout)
	}
	if err != nil {
		return lines, fmt.Errorf("child %v: %w; stderr ends: %s", cmd.Args, err, strings.TrimSpace(tail.String()))
	}
	return lines, nil
}

// kennelModule is the engine's module, built from this checkout.
const kennelModule = "github.com/kennel-cache/kennel"

// gitRevision describes the checkout kennel is built from ("git 55c06cc",
// with "+dirty" for uncommitted changes outside bench/), or "" outside a
// git work tree.
// Builds here run with -buildvcs=false, so the binary cannot tell.
func gitRevision() string {
	rev, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	s := "git " + strings.TrimSpace(string(rev))
	// Changes anywhere but in bench/ make the engine differ from the commit.
	st, err := exec.Command("git", "status", "--porcelain", "--", ":(top)", ":(top,exclude)bench").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		s += "+dirty"
	}
	return s
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// platform describes the machine for the report.
func platform() string {
	s := fmt.Sprintf("%s/%s, %s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.Version(), runtime.NumCPU())
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				s += ", " + strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			s += fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return s
}
