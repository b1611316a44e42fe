package kbench_test

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/bench/kbench"
	"github.com/kennel-cache/kennel/bench/report"
	"github.com/kennel-cache/kennel/bench/store"
)

// childArgsEnv carries a child's arguments when the test binary re-executes
// itself as a kbench child (the stdlib filelock_test pattern): the test
// binary's own flag parsing must not see them.
const childArgsEnv = "KBENCH_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(childArgsEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			panic(err)
		}
		os.Exit(kbench.Main(args, testCommand))
	}
	code := m.Run()
	store.Tidy()
	os.Exit(code)
}

// testCommand starts the test binary as a kbench child running args.
func testCommand(args []string) *exec.Cmd {
	b, err := json.Marshal(args)
	if err != nil {
		panic(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(b))
	return cmd
}

// TestEndToEnd runs every workload through child processes for the
// file-per-key store and one peer on a tiny N, and checks the report files.
func TestEndToEnd(t *testing.T) {
	out := t.TempDir()
	args := []string{
		"-stores=files,pogreb",
		"-workloads=all",
		"-n=300",
		"-runs=2",
		"-large-sizes=64KiB,1MiB",
		"-large-mib=2",
		"-procs=2",
		"-dd-mib=1",
		"-fsync-count=5",
		"-copy-mib=1",
		"-dir=" + t.TempDir(),
		"-out=" + out,
	}
	stdout := captureStdout(t, func() {
		if code := kbench.Main(args, testCommand); code != 0 {
			t.Fatalf("kbench exited %d", code)
		}
	})
	if !strings.Contains(stdout, "pogreb") || !strings.Contains(stdout, "files") {
		t.Errorf("table lacks a store:\n%s", stdout)
	}

	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Machine == nil || rep.Machine.DiskWriteMBps <= 0 || rep.Machine.FsyncRounds == 0 || rep.Machine.MemCopyGBps <= 0 {
		t.Errorf("machine limits not measured: %+v", rep.Machine)
	}
	if len(rep.Runs) != 4 {
		t.Errorf("got %d runs, want 2 stores × 2 runs", len(rep.Runs))
	}
	for _, run := range rep.Runs {
		if run.Err != "" {
			t.Errorf("%s run %d: %s", run.Store, run.Run, run.Err)
		}
	}
	want := []string{"load", "get-1g", "get-2g", "absent", "getorcreate", "mixed", "reopen", "churn", "multiproc-2", "large-64KiB", "large-1MiB"}
	// Neither store has GetOrCreate; pogreb cannot share its directory.
	skip := map[string]bool{"files/getorcreate": true, "pogreb/getorcreate": true, "pogreb/multiproc-2": true}
	for _, st := range []string{"files", "pogreb"} {
		for _, w := range want {
			s, ok := find(rep.Summary, st, w)
			switch {
			case !ok:
				t.Errorf("%s %s: no result", st, w)
			case s.Err != "":
				t.Errorf("%s %s: %s", st, w, s.Err)
			case skip[st+"/"+w] != s.Skipped:
				t.Errorf("%s %s: skipped = %v (%s), want %v", st, w, s.Skipped, s.Note, skip[st+"/"+w])
			case !s.Skipped && (s.Runs != 2 || len(s.Metrics) == 0):
				t.Errorf("%s %s: %d runs, metrics %v", st, w, s.Runs, s.Metrics)
			}
		}
	}
	if s, _ := find(rep.Summary, "pogreb", "churn"); s.Metrics["space_amp"] <= 0 {
		t.Errorf("pogreb churn: no space amplification: %v", s.Metrics)
	}
	if s, _ := find(rep.Summary, "files", "get-1g"); s.Metrics["ops_per_sec"] <= 0 || s.Metrics["p99_us"] <= 0 {
		t.Errorf("files get-1g: %v", s.Metrics)
	}

	md, err := os.ReadFile(filepath.Join(out, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Machine limits", "## Summary", "chart.svg", "## Stores", "github.com/akrylysov/pogreb", "## Churn"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("RESULTS.md lacks %q", s)
		}
	}
	checkSVG(t, filepath.Join(out, "chart.svg"))
}

// checkSVG checks that path is well-formed XML with an svg root and bars.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	root, rects := "", 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart.svg: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "rect" {
				rects++
			}
		}
	}
	if root != "svg" || rects < 10 {
		t.Errorf("chart.svg: root %q, %d rects", root, rects)
	}
}

func find(sum []report.Summary, store, w string) (report.Summary, bool) {
	for _, s := range sum {
		if s.Store == store && s.Workload == w {
			return s, true
		}
	}
	return report.Summary{}, false
}

// captureStdout returns what f prints on os.Stdout.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stdout = old }()
	f()
	w.Close()
	os.Stdout = old
	return <-done
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-stores=nosuchstore"},
		{"-workloads=nosuchworkload"},
		{"-n=1"},
		{"-zipf=0.9"},
		{"-large-sizes=1"},
		{"-no-such-flag"},
	} {
		if code := kbench.Main(args, testCommand); code != 2 {
			t.Errorf("kbench %v: exit %d, want 2", args, code)
		}
	}
}
