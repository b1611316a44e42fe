package inspect

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/segment"
)

// TestUsage runs testdata/script/usage.txtar: help, unknown commands, bad
// arguments and directories that are not kennel directories.
func TestUsage(t *testing.T) { runScript(t, "usage") }

// TestLive runs testdata/script/live.txtar: stats, ls, get and verify on a
// directory that another process (kennel-writer) is writing.
func TestLive(t *testing.T) { runScript(t, "live") }

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		pos     []string
		limit   int
		json    bool
		wantErr string
	}{
		{args: []string{"dir"}, pos: []string{"dir"}},
		{args: []string{"dir", "--limit", "3"}, pos: []string{"dir"}, limit: 3},
		{args: []string{"--limit=3", "dir", "--json"}, pos: []string{"dir"}, limit: 3, json: true},
		{args: []string{"dir", "key", "-json"}, pos: []string{"dir", "key"}, json: true},
		{args: []string{"dir", "--", "-key", "--json"}, pos: []string{"dir", "-key", "--json"}},
		{args: []string{"--", "--json"}, pos: []string{"--json"}},
		{args: []string{"dir", "--bogus"}, wantErr: "flag provided but not defined: -bogus"},
		{args: []string{"dir", "--limit"}, wantErr: "flag needs an argument: -limit"},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		limit := fs.Int("limit", 0, "")
		json := fs.Bool("json", false, "")
		pos, err := parseArgs(fs, tt.args)
		if tt.wantErr != "" {
			var u usageError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &u) {
				t.Errorf("parseArgs(%q) = %v, want usage error %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(pos, tt.pos) || *limit != tt.limit || *json != tt.json {
			t.Errorf("parseArgs(%q) = %q, %v (limit %d, json %v), want %q (limit %d, json %v)",
				tt.args, pos, err, *limit, *json, tt.pos, tt.limit, tt.json)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		64 << 20: "64.0 MiB", 1 << 30: "1.0 GiB", 3 << 40: "3.0 TiB",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestReadOnlyCommandsChangeNothing runs every command but compact, in
// every output form, on a directory holding everything a directory can:
// expired and overwritten keys, tombstones, a damaged sealed segment, damage
// in the active segment, a torn tail and a file left by a crash; on a copy
// of fixtureCompacted, whose segments compaction wrote; and on a copy of
// fixtureSidecars, with a damaged sidecar file and one left by a crash. Not
// a byte, name, mode or modification time may change (bbolt's
// requireDBNoChange).
func TestReadOnlyCommandsChangeNothing(t *testing.T) {
	dir := testDir(t, fillOptions{n: 80, expired: 5, future: 5, overwritten: 10, deleted: 5})
	for _, err := range []error{
		flipByte(filepath.Join(dir, segment.FileName(1)), 500),
		flipByte(filepath.Join(dir, segment.FileName(4)), 100),
		tearTail(filepath.Join(dir, segment.FileName(4)), 20),
		os.WriteFile(filepath.Join(dir, "0000000000000001.hint.tmp-1"), []byte("x"), 0o600),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	compacted := filepath.Join(t.TempDir(), "compacted")
	if err := os.CopyFS(compacted, os.DirFS(filepath.Join("testdata", "fixtures", fixtureCompacted))); err != nil {
		t.Fatal(err)
	}
	sidecars := filepath.Join(t.TempDir(), "sidecars")
	if err := os.CopyFS(sidecars, os.DirFS(filepath.Join("testdata", "fixtures", fixtureSidecars))); err != nil {
		t.Fatal(err)
	}
	onSidecar("key-0003", func(path string) error { return flipByte(path, 7) })(t, sidecars)
	writeFile("sidecars/value.tmp-9", []byte("half"))(t, sidecars)
	for _, dir := range []string{dir, compacted, sidecars} {
		files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
		if err != nil {
			t.Fatal(err)
		}
		hints, err := filepath.Glob(filepath.Join(dir, "*.hint"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, hints...)
		cmds := [][]string{
			{"stats", dir}, {"stats", "--json", dir},
			{"ls", dir}, {"ls", "--json", dir}, {"ls", "--prefix", "key-001", "--limit", "2", dir},
			{"get", dir, "key-0020"}, {"get", "--json", dir, "key-0020"}, {"get", "--meta", dir, "key-0000"},
			{"get", dir, "key-0000"}, {"get", dir, "nosuchkey"},
			{"get", dir, "key-0003"}, {"get", dir, "key-0005"}, {"get", "--json", dir, "key-0006"}, {"get", "--meta", dir, "key-0005"},
			{"verify", dir}, {"verify", "--json", dir},
		}
		for _, f := range files {
			cmds = append(cmds, []string{"dump", f}, []string{"dump", "--json", "--hex", f})
		}
		for _, args := range cmds {
			requireNoChange(t, dir, func() {
				if r := run(args...); r.code == exitUsage {
					t.Errorf("fsinspect %s: exit status 2: %s", strings.Join(args, " "), r.stderr)
				}
			})
		}
	}
}

// TestLiveStress runs every command over and over against a directory that
// another process (this test binary, re-executed as kennel-writer) writes,
// rolls and compacts meanwhile, compact at the same time as the others: none
// may fail, and verify may find no problem, only what a write or a
// compaction in flight leaves.
func TestLiveStress(t *testing.T) { liveStress(t) }

// TestLiveStressSidecars is TestLiveStress with a writer that keeps most
// values in sidecar files. It found the engine's reload keeping its old set
// of live sidecar files, so that a process that reloaded swept the files of
// values it had not caught up with.
func TestLiveStressSidecars(t *testing.T) { liveStress(t, "sidecars") }

// liveStress is TestLiveStress, with a writer started with writerArgs.
func liveStress(t *testing.T, writerArgs ...string) {
	dir := testDir(t, fillOptions{n: 20})
	stopWriter := startWriter(t, dir, writerArgs...)

	rounds := 30
	if testing.Short() {
		rounds = 5
	}
	var lastID uint64
	sawMain := false
	for range rounds {
		compacted := make(chan result)
		go func() { compacted <- run("compact", dir) }()
		r := mustRun(t, exitOK, "stats", "--json", dir)
		var st statsReport
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatal(err)
		}
		// The writer compacts in the background: the compaction lock may
		// be held, but is never unknown.
		if st.Locks.Open != openShared || (st.Locks.Compaction != lockFree && st.Locks.Compaction != lockHeld) || st.Damaged != 0 {
			t.Errorf("stats of a live directory: locks %+v, damage %d", st.Locks, st.Damaged)
		}
		if f := st.State.StateFields; st.State.Status != stateOK || f.Generation == 0 || f.WriterDied || f.FailedSync != 0 || f.CompactionInterrupted {
			t.Errorf("stats of a live directory: state %+v %+v", st.State, f)
		}
		active := ""
		for _, s := range st.Segments {
			lastID = max(lastID, s.ID)
			sawMain = sawMain || s.Queue == "main"
			if s.State == "active" {
				active = filepath.Join(dir, s.File)
			}
		}
		mustRun(t, exitOK, "ls", "--prefix", "key-00", dir)
		mustRun(t, exitOK, "get", "--meta", dir, "key-0042")
		mustRun(t, exitOK, "get", dir, "key-0042")
		// The writer may have rolled since, and a compaction deleted the
		// segment.
		if r := run("dump", active); r.code != exitOK {
			if _, err := os.Stat(active); err == nil {
				t.Errorf("dump %s: exit status %d: %s", active, r.code, r.stderr)
			}
		}
		var v verifyReport
		if err := json.Unmarshal([]byte(mustRun(t, exitOK, "verify", "--json", dir).stdout), &v); err != nil {
			t.Fatal(err)
		}
		for _, f := range v.Findings {
			if !inFlight(f) {
				t.Errorf("verify of a live directory: %+v", f)
			}
		}
		if r := <-compacted; r.code != exitOK {
			t.Errorf("compact of a live directory: exit status %d: %s", r.code, r.stderr)
		}
	}
	stopWriter()
	if lastID < 3 || !sawMain {
		t.Errorf("the newest segment is %d, main segments seen: %v: the test did not see the writer roll, or a compaction", lastID, sawMain)
	}
	// The values the writer wrote over last left files that no sweep has
	// deleted yet.
	mustRun(t, exitOK, "compact", dir)
	var v verifyReport
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "verify", "--json", dir).stdout), &v); err != nil {
		t.Fatal(err)
	}
	for _, f := range v.Findings {
		t.Errorf("verify after the writer closed: %+v", f)
	}
}

// inFlight reports whether a finding of verify is what a writer, or a
// compaction, that is at work while verify runs leaves: a record or a
// temporary file being written, a file deleted (a compaction deletes a
// segment, then its hint), a sidecar file of a value written over that the
// sweep has not deleted yet, or whose record is not yet published.
func inFlight(f finding) bool {
	return f.Severity == sevWarning && (strings.HasPrefix(f.Message, "torn tail of the last segment") ||
		strings.HasPrefix(f.Message, "torn tail of a segment compaction has not finished") ||
		strings.Contains(f.Message, "a write in flight") || f.Message == "removed while verify ran" || strayHint(f) ||
		strings.HasPrefix(f.File, segment.SidecarDir+"/") && (strings.HasPrefix(f.Message, "named by no live record") ||
			strings.HasPrefix(f.Message, "temporary file: a sidecar write in flight")))
}

// strayHint reports whether a finding is a hint whose segment is gone.
func strayHint(f finding) bool {
	return f.Severity == sevWarning && strings.HasPrefix(f.Message, "hint of segment ") && strings.HasSuffix(f.Message, ", which does not exist")
}

// startWriter starts this test binary as kennel-writer on dir, waits until
// it has written a first batch, and returns the function that stops it and
// waits for it to exit (also called when the test ends).
func startWriter(t *testing.T, dir string, args ...string) (stop func()) {
	t.Helper()
	work := t.TempDir()
	ready, stopFile := filepath.Join(work, "ready"), filepath.Join(work, "stop")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+strings.Join(append([]string{dir, ready, stopFile}, args...), " "), "GORACE=atexit_sleep_ms=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		os.WriteFile(stopFile, nil, 0o644)
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer: %v\n%s", err, stderr.String())
		}
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			return stop
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the writer never got ready: %s", stderr.String())
		}
	}
}
