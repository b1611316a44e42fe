package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/lockf"
	"github.com/kennel-cache/kennel/segment"
)

// TestCompact runs testdata/script/compact.txtar.
func TestCompact(t *testing.T) { runScript(t, "compact") }

// compactJSON runs compact --json with args and decodes its report.
func compactJSON(t *testing.T, args ...string) compactReport {
	t.Helper()
	var r compactReport
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, append([]string{"compact", "--json"}, args...)...).stdout), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCompactReclaims compacts a directory of many segments with
// overwritten, deleted and expired keys, and checks what compact reports
// against the directory before and after, and every key's value.
func TestCompactReclaims(t *testing.T) {
	o := fillOptions{n: 300, valueSize: 200, expired: 20, future: 10, overwritten: 60, deleted: 25}
	dir := testDir(t, o)
	before := checkAccounting(t, dir)

	r := compactJSON(t, dir)
	after := checkAccounting(t, dir)
	if r.DiskBefore != before.DiskBytes || r.DiskAfter != after.DiskBytes || r.DiskAfter >= r.DiskBefore {
		t.Errorf("disk %d -> %d; stats says %d -> %d, and want less after", r.DiskBefore, r.DiskAfter, before.DiskBytes, after.DiskBytes)
	}
	if r.SegmentsBefore != len(before.Segments) || r.SegmentsAfter != len(after.Segments) {
		t.Errorf("segments %d -> %d; stats says %d -> %d", r.SegmentsBefore, r.SegmentsAfter, len(before.Segments), len(after.Segments))
	}
	if r.KeysBefore != o.n-o.deleted || r.KeysAfter != o.n-o.deleted-o.expired || r.Evicted != uint64(o.expired) || after.ExpiredKeys != 0 {
		t.Errorf("keys %d -> %d, %d evicted, %d expired left; want %d -> %d, %d evicted, none left",
			r.KeysBefore, r.KeysAfter, r.Evicted, after.ExpiredKeys, o.n-o.deleted, o.n-o.deleted-o.expired, o.expired)
	}
	// Each rewritten segment was deleted whole; what of it was live was
	// copied, and nothing else was.
	if r.Rewritten == 0 || r.ReclaimedBytes <= r.CopiedBytes || r.CopiedBytes <= 0 || r.BudgetBytes != 0 {
		t.Errorf("%d segments rewritten, %d bytes reclaimed, %d copied, budget %d", r.Rewritten, r.ReclaimedBytes, r.CopiedBytes, r.BudgetBytes)
	}
	if r.LongestPauseNs <= 0 || r.DurationNs < r.LongestPauseNs {
		t.Errorf("longest pause %d ns, in a run of %d ns", r.LongestPauseNs, r.DurationNs)
	}
	// The log's active segment is left alone: the dead records it holds
	// (the second values' predecessors are elsewhere, but the tombstones
	// are there) stay.
	for _, s := range after.Segments {
		if s.Queue == "small" && s.State != "active" && s.DeadBytes+s.ExpiredBytes > 0 {
			t.Errorf("sealed log segment %d still holds %d dead and %d expired bytes", s.ID, s.DeadBytes, s.ExpiredBytes)
		}
	}
	checkValues(t, dir, o)
	if v := mustRun(t, exitOK, "verify", dir); !strings.HasSuffix(v.stdout, "no problems found\n") {
		t.Errorf("verify after compact:\n%s", v.stdout)
	}
}

// checkValues checks with get that every key fill wrote with o has the
// value it was last given, and that the deleted and expired ones have none.
func checkValues(t *testing.T, dir string, o fillOptions) {
	t.Helper()
	for i := range o.n {
		key := string(fillKey(i))
		want := fillValue(i, o.valueSize)
		if i >= o.expired+o.future && i < o.expired+o.future+o.overwritten {
			want = fillValue(i+o.n, o.valueSize)
		}
		r := run("get", dir, key)
		switch {
		case i < o.expired || i >= o.n-o.deleted:
			if r.code != exitFailed {
				t.Errorf("get %s, expired or deleted: exit status %d, %q", key, r.code, r.stdout)
			}
		case r.code != exitOK || r.stdout != string(want):
			t.Errorf("get %s: exit status %d, %q; want %q", key, r.code, r.stdout, want)
		}
	}
}

// TestCompactBudget checks that --budget evicts until the directory fits,
// and that what is left is read back right: a key has its value or none.
func TestCompactBudget(t *testing.T) {
	o := fillOptions{n: 1000, valueSize: 300}
	dir := testDir(t, o)
	const budget = 200 << 10
	r := compactJSON(t, "--budget", "200KiB", dir)
	if r.BudgetBytes != budget || r.DiskBefore <= budget || r.DiskAfter > budget || r.Evicted == 0 ||
		r.KeysAfter != r.KeysBefore-int(r.Evicted) {
		t.Errorf("budget %d: disk %d -> %d, keys %d -> %d, %d evicted", r.BudgetBytes, r.DiskBefore, r.DiskAfter, r.KeysBefore, r.KeysAfter, r.Evicted)
	}
	found := 0
	for i := range o.n {
		switch g := run("get", dir, string(fillKey(i))); {
		case g.code == exitOK && g.stdout == string(fillValue(i, o.valueSize)):
			found++
		case g.code != exitFailed:
			t.Errorf("get %s: exit status %d, %q", fillKey(i), g.code, g.stdout)
		}
	}
	if found != r.KeysAfter {
		t.Errorf("%d keys found, compact says %d are left", found, r.KeysAfter)
	}
}

// TestCompactWaits checks that compact waits while another process holds
// the compaction lock (here a lock taken by hand, through a file
// description of its own, as another process would), says so, and runs
// once the lock is free.
func TestCompactWaits(t *testing.T) {
	o := fillOptions{n: 60, valueSize: 100, expired: 5, overwritten: 10}
	dir := testDir(t, o)
	lf, err := lockf.Open(filepath.Join(dir, lockFile), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	held, err := lf.Lock(context.Background(), lockf.CompactionRange(), lockf.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb syncBuffer
	done := make(chan int)
	go func() { done <- (&env{stdout: &out, stderr: &errb, now: time.Now}).run([]string{"compact", dir}) }()
	const note = "another process is compacting"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(errb.String(), note); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("compact does not say it waits: %q", errb.String())
		}
	}
	select {
	case code := <-done:
		t.Fatalf("compact ran while the lock was held: exit status %d\n%s", code, out.String())
	case <-time.After(100 * time.Millisecond):
	}
	held.Unlock()
	if code := <-done; code != exitOK || !strings.Contains(out.String(), "evicted    5 live records") {
		t.Errorf("compact after the wait: exit status %d\n%s%s", code, out.String(), errb.String())
	}
	if want := fmt.Sprintf("fsinspect compact: %s %s; waiting for it to finish\n", note, dir); errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
	checkValues(t, dir, o)
}

// TestCompactAfterInterrupted runs compact after a compaction that was
// interrupted while another process has the directory open: the engine
// reloads before it compacts, compact passes on what it says, and the flag
// is cleared.
func TestCompactAfterInterrupted(t *testing.T) {
	o := fillOptions{n: 60, valueSize: 100, expired: 5, overwritten: 10}
	dir := testDir(t, o)
	openWriter(t, dir)
	editState(func(s *sharedstate.File) { s.SetCompacting(true) })(t, dir)
	r := mustRun(t, exitOK, "compact", dir)
	if want := `level=WARN msg="the previous compaction was interrupted; reloading the directory before compacting"`; !strings.HasPrefix(r.stderr, want) {
		t.Errorf("stderr %q, want the engine's warning %q", r.stderr, want)
	}
	var st statsReport
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "stats", "--json", dir).stdout), &st); err != nil {
		t.Fatal(err)
	}
	if f := st.State.StateFields; f == nil || f.Compacting || f.CompactionInterrupted {
		t.Errorf("state after compact: %+v", f)
	}
	checkValues(t, dir, o)
}

// TestCompactLive compacts over and over a directory that another process
// (kennel-writer) writes and compacts meanwhile: every compact runs, and
// no key ever reads back a value it was not given. The writer sets
// key-NNNN (NNNN below 300) to values that start with "value-MMMM;", MMMM
// a write count equal to NNNN modulo 300, and never deletes the keys below
// 100.
func TestCompactLive(t *testing.T) {
	dir := testDir(t, fillOptions{n: 20})
	stopWriter := startWriter(t, dir)
	checkKeys := func() {
		t.Helper()
		for i := range 100 {
			r := mustRun(t, exitOK, "get", dir, string(fillKey(i)))
			var n int
			if _, err := fmt.Sscanf(r.stdout, "value-%d;", &n); err != nil || n%300 != i || !bytes.Equal([]byte(r.stdout), fillValue(n, len(r.stdout))) {
				t.Fatalf("get %s: %q", fillKey(i), r.stdout)
			}
		}
	}
	rewritten := uint64(0)
	for range 10 {
		r := compactJSON(t, dir)
		rewritten += r.Rewritten
		checkKeys()
	}
	stopWriter()
	if rewritten == 0 {
		t.Error("no compaction rewrote a segment: the test did not compact while the writer wrote")
	}
	compactJSON(t, dir)
	checkKeys()
	if v := mustRun(t, exitOK, "verify", dir); !strings.HasSuffix(v.stdout, "no problems found\n") {
		t.Errorf("verify after compact:\n%s", v.stdout)
	}
}

// syncBuffer is a strings.Builder that a command may write to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCompactSweepsSidecars checks that compact reports the bytes of the
// sidecar files it deleted: those of values written over, at once if their
// path was never handed out, else once the grace recorded in it is over;
// never a live value's.
func TestCompactSweepsSidecars(t *testing.T) {
	// Every value in a sidecar file of 100 bytes; key-0000 to key-0004
	// then written over with values kept inline, after the paths of
	// key-0000's and key-0001's files were handed out.
	o := fillOptions{n: 20, valueSize: 100, sidecars: 20, overwritten: 5}
	dir := testDir(t, fillOptions{n: o.n, valueSize: o.valueSize, sidecars: o.sidecars})
	c, err := engine.Open(dir, engine.Options{ManualCompaction: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range o.overwritten {
		if i < 2 {
			if err := handOut(c, fillKey(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Set(fillKey(i), fillValue(i+o.n, o.valueSize)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if s := checkAccounting(t, dir).Sidecars; s.LiveFiles != 15 || s.UnreferencedFiles != 5 || s.UnreferencedBytes != 500 {
		t.Fatalf("before compact: %+v", s)
	}

	r := compactJSON(t, dir)
	if r.SweptBytes != 300 {
		t.Errorf("compact within the grace period: %d bytes swept; want the 300 never handed out", r.SweptBytes)
	}
	if s := checkAccounting(t, dir).Sidecars; s.LiveFiles != 15 || s.UnreferencedFiles != 2 || s.UnreferencedBytes != 200 {
		t.Errorf("after compact: %+v", s)
	}
	// End the grace the hand-outs recorded (the files' mtimes).
	entries, err := os.ReadDir(filepath.Join(dir, segment.SidecarDir))
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Second)
	for _, e := range entries {
		if err := os.Chtimes(filepath.Join(dir, segment.SidecarDir, e.Name()), past, past); err != nil {
			t.Fatal(err)
		}
	}
	r = compactJSON(t, dir)
	if r.SweptBytes != 200 || r.DiskBefore-r.DiskAfter != 200 {
		t.Errorf("compact after the grace: %d bytes swept, disk %d -> %d", r.SweptBytes, r.DiskBefore, r.DiskAfter)
	}
	if s := checkAccounting(t, dir).Sidecars; s.LiveFiles != 15 || s.DiskFiles != 15 || s.UnreferencedFiles != 0 || s.Missing != 0 {
		t.Errorf("after compact: %+v", s)
	}
	checkValues(t, dir, o)
	if v := mustRun(t, exitOK, "verify", dir); !strings.HasSuffix(v.stdout, "no problems found\n") {
		t.Errorf("verify after compact:\n%s", v.stdout)
	}
}
