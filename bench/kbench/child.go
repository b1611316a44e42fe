package kbench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kennel-cache/kennel/bench/machine"
	"github.com/kennel-cache/kennel/bench/store"
	"github.com/kennel-cache/kennel/bench/workload"
)

// needsLoad lists the workloads that read or rewrite the loaded records.
const needsLoad = "get1 get2 absent getorcreate mixed reopen churn multiproc"

// storeChild runs the selected workloads on one store, in workloadOrder,
// printing each result as it comes. A failed workload is reported and the
// next one runs, unless the store is left unusable (a failed load, or a
// failed reopen or churn that could not open it again).
func (c *config) storeChild(self Command) error {
	e, err := store.Lookup(c.store)
	if err != nil {
		return err
	}
	if e.New == nil {
		return fmt.Errorf("%s: %s", e.Name, e.Missing)
	}
	load := c.workloads["load"]
	for _, w := range strings.Fields(needsLoad) {
		load = load || c.workloads[w]
	}

	dbDir := filepath.Join(c.dir, "db")
	seed := uint64(c.run)
	var s store.Store
	if load {
		s = e.New()
		if err := s.Open(dbDir); err != nil {
			return fmt.Errorf("%s: open: %w", e.Name, err)
		}
		defer func() {
			if s != nil {
				s.Close() // best effort at exit; results are already out
			}
		}()
		if res := c.emit(workload.LoadConfig{N: c.n, ValueSize: c.valueSize}.Run(s)); res.Err != "" {
			return errors.New("load failed; no further workloads")
		}
	}
	get := func(g int) workload.GetConfig {
		return workload.GetConfig{N: c.n, Ops: c.ops, Goroutines: g, ValueSize: c.valueSize, Seed: seed}
	}
	if c.workloads["get1"] {
		c.emit(get(1).Run(s))
	}
	if c.workloads["get2"] {
		c.emit(get(2).Run(s))
	}
	if c.workloads["absent"] {
		c.emit(workload.AbsentConfig{N: c.n, Ops: c.ops, Seed: seed}.Run(s))
	}
	if c.workloads["getorcreate"] {
		c.emit(workload.GetOrCreateConfig{N: c.n, Ops: c.ops, Goroutines: 1, ValueSize: c.valueSize, Seed: seed}.Run(s))
	}
	if c.workloads["mixed"] {
		c.emit(workload.MixedConfig{N: c.n, Ops: c.ops, Goroutines: 2, ReadPercent: 90, ZipfS: c.zipfS, ValueSize: c.valueSize, Seed: seed}.Run(s))
	}
	if c.workloads["reopen"] {
		if res := c.emit(workload.ReopenConfig{Dir: dbDir, N: c.n, ValueSize: c.valueSize}.Run(s)); res.Err != "" {
			s = nil // its state is unknown; the deferred Close must not touch it
			return errors.New("reopen failed; no further workloads")
		}
	}
	if c.workloads["churn"] {
		if res := c.emit(workload.ChurnConfig{Dir: dbDir, N: c.n, Rounds: c.churnRounds, ValueSize: c.valueSize, MaxDuration: c.churnMax}.Run(s)); res.Err != "" {
			s = nil
			return errors.New("churn failed; no further workloads")
		}
	}
	if c.workloads["multiproc"] {
		for _, p := range c.procs {
			c.emit(workload.MultiProcConfig{
				Store: e.Name, Dir: dbDir, Procs: p, N: c.n, OpsPerProc: max(1, c.ops/p),
				ReadPercent: 90, ZipfS: c.zipfS, ValueSize: c.valueSize, Seed: seed,
				Command: func(w workload.WorkerConfig) *exec.Cmd { return c.workerCommand(self, w) },
				Timeout: c.timeout,
			}.Run(s))
		}
	}
	if s != nil {
		err := s.Close()
		s = nil
		if err != nil {
			return fmt.Errorf("%s: close: %w", e.Name, err)
		}
	}
	if c.workloads["large"] {
		for _, size := range c.largeSizes {
			c.emit(workload.LargeConfig{
				Dir:   filepath.Join(c.dir, fmt.Sprintf("large-%d", size)),
				New:   e.New,
				Size:  size,
				Total: int64(c.largeMiB) << 20,
			}.Run())
		}
	}
	return nil
}

// emit prints res as a protocol line on stdout and a summary on stderr.
func (c *config) emit(res workload.Result) workload.Result {
	b, err := json.Marshal(res)
	if err != nil {
		res = workload.Result{Workload: res.Workload, Err: "encoding result: " + err.Error()}
		b, _ = json.Marshal(res)
	}
	fmt.Printf("%s%s\n", resultPrefix, b)
	switch {
	case res.Err != "":
		fmt.Fprintf(os.Stderr, "kbench:   %s %s: error: %s\n", c.store, res.Workload, res.Err)
	case res.Skipped:
		fmt.Fprintf(os.Stderr, "kbench:   %s %s: skipped: %s\n", c.store, res.Workload, res.Note)
	default:
		fmt.Fprintf(os.Stderr, "kbench:   %s %s: %s\n", c.store, res.Workload, brief(res))
	}
	return res
}

// brief is the one-line progress summary of a result.
func brief(res workload.Result) string {
	var parts []string
	for _, m := range []string{workload.OpsPerSec, workload.P99us, workload.OpenMs, workload.HeapBytesPerKey, workload.SpaceAmp, workload.WriteMBps, workload.ReadMBps} {
		if v, ok := res.Metrics[m]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4g", m, v))
		}
	}
	return strings.Join(parts, " ")
}

// workerCommand returns the command that runs one multiproc worker.
func (c *config) workerCommand(self Command, w workload.WorkerConfig) *exec.Cmd {
	b, _ := json.Marshal(w) // a struct of plain fields always encodes
	return self([]string{"-role=worker", "-worker=" + string(b)})
}

// workerChild is one process of the multiproc workload.
func (c *config) workerChild() error {
	var w workload.WorkerConfig
	if err := json.Unmarshal([]byte(c.worker), &w); err != nil {
		return fmt.Errorf("bad -worker: %w", err)
	}
	e, err := store.Lookup(w.Store)
	if err != nil {
		return err
	}
	if e.New == nil {
		return fmt.Errorf("%s: %s", e.Name, e.Missing)
	}
	if err := w.Run(e.New(), os.Stdin, os.Stdout); err != nil {
		return fmt.Errorf("%s worker %d: %w", e.Name, w.Index, err)
	}
	return nil
}

// machineChild measures the machine's limits in the directory given.
func (c *config) machineChild() error {
	l := machine.Config{
		Dir:        c.dir,
		DiskMiB:    c.ddMiB,
		FsyncCount: c.fsyncCount,
		FsyncMax:   10 * time.Second,
		CopyMiB:    c.copyMiB,
		CopyRounds: 8,
	}.Run()
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	fmt.Printf("%s%s\n", machinePrefix, b)
	return nil
}
