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

// TestReadOnlyCommandsChangeNothing runs every command, in every output
// form, on a directory holding everything a directory can: expired and
// overwritten keys, tombstones, a damaged sealed segment, damage in the
// active segment, a torn tail and a file left by a crash. Not a byte, name,
// mode or modification time may change (bbolt's requireDBNoChange).
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

// TestLiveStress runs every command over and over against a directory that
// another process (this test binary, re-executed as kennel-writer) writes
// and rolls meanwhile: none may fail, and verify may find no problem, only
// the torn tail of a write in flight.
func TestLiveStress(t *testing.T) {
	dir := testDir(t, fillOptions{n: 20})
	work := t.TempDir()
	ready, stop := filepath.Join(work, "ready"), filepath.Join(work, "stop")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+strings.Join([]string{dir, ready, stop}, " "), "GORACE=atexit_sleep_ms=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stopWriter := func() {
		if stopped {
			return
		}
		stopped = true
		os.WriteFile(stop, nil, 0o644)
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer: %v\n%s", err, stderr.String())
		}
	}
	defer stopWriter()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer never got ready: %s", stderr.String())
		}
	}

	rounds := 30
	if testing.Short() {
		rounds = 5
	}
	segs := 0
	for range rounds {
		r := mustRun(t, exitOK, "stats", "--json", dir)
		var st statsReport
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatal(err)
		}
		if st.Locks.Open != openShared || st.Locks.Compaction != lockFree || st.Damaged != 0 {
			t.Errorf("stats of a live directory: locks %+v, damage %d", st.Locks, st.Damaged)
		}
		if f := st.State.StateFields; st.State.Status != stateOK || f.Generation == 0 || f.WriterDied || f.FailedSync != 0 {
			t.Errorf("stats of a live directory: state %+v %+v", st.State, f)
		}
		segs = len(st.Segments)
		mustRun(t, exitOK, "ls", "--prefix", "key-00", dir)
		mustRun(t, exitOK, "get", "--meta", dir, "key-0042")
		mustRun(t, exitOK, "get", dir, "key-0042")
		mustRun(t, exitOK, "dump", filepath.Join(dir, st.Segments[len(st.Segments)-1].File))
		var v verifyReport
		if err := json.Unmarshal([]byte(mustRun(t, exitOK, "verify", "--json", dir).stdout), &v); err != nil {
			t.Fatal(err)
		}
		for _, f := range v.Findings {
			if !strings.HasPrefix(f.Message, "torn tail of the last segment") && !strings.Contains(f.Message, "a write in flight") {
				t.Errorf("verify of a live directory: %+v", f)
			}
		}
	}
	stopWriter()
	if segs < 3 {
		t.Errorf("the writer rolled to only %d segments: the test did not see it roll", segs)
	}
	var v verifyReport
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "verify", "--json", dir).stdout), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Findings) != 0 {
		t.Errorf("verify after the writer closed: %+v", v.Findings)
	}
}
