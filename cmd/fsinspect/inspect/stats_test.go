package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/lockf"
	"github.com/kennel-cache/kennel/segment"
)

// TestStats runs testdata/script/stats.txtar.
func TestStats(t *testing.T) { runScript(t, "stats") }

// TestStatsAccounting checks that stats accounts for every byte: in each
// segment, live, expired and dead records plus the header (and the seal of
// a sealed log segment) make up the segment, and the totals are the sums
// over segments. It checks it again after a compaction, whose segments have
// no seal, and take ids after the log's active segment.
func TestStatsAccounting(t *testing.T) {
	dir := testDir(t, fillOptions{n: 200, valueSize: 300, expired: 17, future: 9, overwritten: 31, deleted: 23})
	r := checkAccounting(t, dir)
	if r.Keys != 200-23 || r.ExpiredKeys != 17 || r.SidecarKeys != 0 || r.Locks != freeLocks || r.FormatVersion != 4 {
		t.Errorf("keys %d, expired %d, sidecars %d, locks %+v, format %d; want 177, 17, 0, free, 4",
			r.Keys, r.ExpiredKeys, r.SidecarKeys, r.Locks, r.FormatVersion)
	}
	if len(r.Segments) < 3 {
		t.Fatalf("%d segments; the test wants several", len(r.Segments))
	}
	// The writer closed: the log ends where the last segment does.
	last := r.Segments[len(r.Segments)-1]
	if f := r.State.StateFields; r.State.Status != stateOK || f == nil || uint64(f.Segment) != last.ID || int64(f.Offset) != last.Bytes ||
		f.Position != fmt.Sprintf("%d:%d", last.ID, last.Bytes) || f.Generation != 1 || f.Writing || f.WriterDied || f.FailedSync != 0 ||
		f.Compacting || f.CompactionInterrupted {
		t.Errorf("state %+v %+v; want published %d:%d, generation 1, no writer, no failed sync, no compaction", r.State, f, last.ID, last.Bytes)
	}
	for _, s := range r.Segments {
		if s.Queue != "small" {
			t.Errorf("segment %d in queue %s before any compaction", s.ID, s.Queue)
		}
	}

	mustRun(t, exitOK, "compact", dir)
	r = checkAccounting(t, dir)
	if r.Keys != 200-23-17 || r.ExpiredKeys != 0 {
		t.Errorf("after compaction: keys %d, expired %d; want 160, 0", r.Keys, r.ExpiredKeys)
	}
	compacted := 0
	for _, s := range r.Segments {
		if s.Queue == "main" {
			compacted++
			if s.ID < last.ID {
				t.Errorf("compacted segment %d, before the log's active segment %d", s.ID, last.ID)
			}
		}
	}
	if compacted == 0 {
		t.Errorf("no segment in the main queue after a compaction: %+v", r.Segments)
	}
	if f := r.State.StateFields; f == nil || uint64(f.Segment) != last.ID || f.Compacting || f.CompactionInterrupted {
		t.Errorf("state after a compaction %+v; want the log still in segment %d, no compaction", f, last.ID)
	}
}

// checkAccounting runs stats on dir, checks that its bytes add up, and
// returns its report.
func checkAccounting(t *testing.T, dir string) statsReport {
	t.Helper()
	var r statsReport
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "stats", "--json", dir).stdout), &r); err != nil {
		t.Fatal(err)
	}
	var lastLog uint64
	for _, s := range r.Segments {
		if s.Queue == "small" {
			lastLog = s.ID
		}
	}
	var live, expired, dead, disk int64
	for _, s := range r.Segments {
		// Every log segment but the last was rolled by a live writer, which
		// ended it with a seal record: neither live nor dead. A segment
		// compaction wrote has none, and is sealed once it has its hint.
		wantState, seal := "sealed", int64(segment.SealRecordSize)
		switch {
		case s.Queue == "main":
			seal = 0
		case s.ID == lastLog:
			wantState, seal = "active", 0
		}
		if got := s.LiveBytes + s.ExpiredBytes + s.DeadBytes + segment.HeaderSize + seal; got != s.Bytes {
			t.Errorf("segment %d (%s): live %d + expired %d + dead %d + header + seal %d = %d, want its %d bytes",
				s.ID, s.Queue, s.LiveBytes, s.ExpiredBytes, s.DeadBytes, seal, got, s.Bytes)
		}
		if s.State != wantState || s.Hint != (wantState == "sealed") {
			t.Errorf("segment %d (%s): state %s, hint %v; want %s", s.ID, s.Queue, s.State, s.Hint, wantState)
		}
		live, expired, dead = live+s.LiveBytes, expired+s.ExpiredBytes, dead+s.DeadBytes
	}
	if live != r.LiveBytes || expired != r.ExpiredBytes || dead != r.DeadBytes {
		t.Errorf("totals live %d, expired %d, dead %d; segments add up to %d, %d, %d",
			r.LiveBytes, r.ExpiredBytes, r.DeadBytes, live, expired, dead)
	}
	// The directory's files and the sidecar folder's count, not folders.
	for _, d := range []string{dir, filepath.Join(dir, segment.SidecarDir)} {
		entries, err := os.ReadDir(d)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().IsRegular() {
				disk += fi.Size()
			}
		}
	}
	if r.DiskBytes != disk || r.BudgetBytes != 1<<30 || r.BudgetSource != "default" {
		t.Errorf("disk %d of %d (%s), want %d of 1 GiB (default)", r.DiskBytes, r.BudgetBytes, r.BudgetSource, disk)
	}
	return r
}

var freeLocks = lockReport{Open: openNone, Append: lockFree, Compaction: lockFree}

// TestLockState checks the lock probe against caches and lock holders in
// this process: OFD locks belong to open file descriptions, not processes,
// so the probe's own open of the lock file sees the locks taken through
// every other, in this process as in others. It also checks that the probe
// takes no lock and creates no lock file.
func TestLockState(t *testing.T) {
	dir := testDir(t, fillOptions{n: 10})
	lockPath := filepath.Join(dir, lockFile)
	check := func(what string, want lockReport) {
		t.Helper()
		if got := lockState(dir); got != want {
			t.Errorf("%s: lockState = %+v, want %+v", what, got, want)
		}
	}
	statsLine := func(what, label, value string) {
		t.Helper()
		if r := mustRun(t, exitOK, "stats", dir); !hasRow(r.stdout, label, value) {
			t.Errorf("stats with %s: no row %s %q in\n%s", what, label, value, r.stdout)
		}
	}
	open := func(o engine.Options) *engine.Cache {
		t.Helper()
		c, err := engine.Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	closeCache := func(c *engine.Cache) {
		t.Helper()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}

	requireNoChange(t, dir, func() { check("nobody", freeLocks) })
	statsLine("nobody", "open", "not read-write by any process")

	c1, c2 := open(engine.Options{}), open(engine.Options{})
	check("two caches", lockReport{Open: openShared, Append: lockFree, Compaction: lockFree})
	statsLine("two caches", "open", "read-write, by one or more processes (OFD locks carry no PID: 'fuser -v "+lockPath+"' lists them)")
	statsLine("two caches", "append", "free")
	// A read-only cache takes no lock.
	closeCache(c1)
	closeCache(c2)
	ro := open(engine.Options{ReadOnly: true})
	check("a read-only cache", freeLocks)
	closeCache(ro)

	c := open(engine.Options{Exclusive: true})
	check("an exclusive cache", lockReport{Open: openExclusive, Append: lockHeld, Compaction: lockFree})
	statsLine("an exclusive cache", "open", "read-write, by one process alone (Options.Exclusive)")
	statsLine("an exclusive cache", "append", "held for good by the exclusive process")
	closeCache(c)

	// Locks held by hand, as an appender, a compactor and an opener hold
	// them.
	lf, err := lockf.Open(lockPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []lockf.Range{lockf.AppendRange(), lockf.CompactionRange(), lockf.OpenRange()} {
		if _, err := lf.Lock(context.Background(), r, lockf.Exclusive); err != nil {
			t.Fatal(err)
		}
	}
	check("append, compaction and open locks held", lockReport{Open: openNone, Opening: true, Append: lockHeld, Compaction: lockHeld})
	statsLine("the locks held", "append", "held: a process is appending")
	statsLine("the locks held", "compaction", "held: a process is compacting")
	statsLine("the locks held", "open", "not read-write by any process; a process is opening it")
	if err := lf.Close(); err != nil {
		t.Fatal(err)
	}

	// The probes let go of nothing they took: an exclusive writer can still
	// open the directory.
	closeCache(open(engine.Options{Exclusive: true}))
	requireNoChange(t, dir, func() { check("after all that", freeLocks) })

	// No lock file: nobody can hold a lock, and the probe creates none.
	if err := os.Remove(lockPath); err != nil {
		t.Fatal(err)
	}
	requireNoChange(t, dir, func() { check("without a lock file", freeLocks) })

	// A lock file the probe cannot open read-write: unknown, and stats still
	// says everything else.
	if err := os.Mkdir(lockPath, 0o700); err != nil {
		t.Fatal(err)
	}
	got := lockState(dir)
	if got.Open != lockUnknown || got.Append != lockUnknown || got.Compaction != lockUnknown || !strings.Contains(got.Error, "not a regular file") {
		t.Errorf("with a directory for a lock file: %+v", got)
	}
	statsLine("a directory for a lock file", "open", "unknown ("+lockPath+" is not a regular file)")
	if os.Geteuid() != 0 { // root opens any file
		if err := os.Remove(lockPath); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(lockPath, nil, 0o400); err != nil {
			t.Fatal(err)
		}
		requireNoChange(t, dir, func() {
			if got := lockState(dir); got.Open != lockUnknown || !strings.Contains(got.Error, "permission denied") {
				t.Errorf("with a read-only lock file: %+v", got)
			}
		})
	}
}

// TestStatsState checks what stats says of the shared state file: a writer
// that died mid-append, a failed sync, a compaction that was interrupted, a
// directory without a state file or with a damaged one.
func TestStatsState(t *testing.T) {
	dir := testDir(t, fillOptions{n: 10})
	stats := func() (statsReport, string) {
		t.Helper()
		var r statsReport
		if err := json.Unmarshal([]byte(mustRun(t, exitOK, "stats", "--json", dir).stdout), &r); err != nil {
			t.Fatal(err)
		}
		return r, mustRun(t, exitOK, "stats", dir).stdout
	}
	line := func(out, label, value string) {
		t.Helper()
		if !hasRow(out, label, value) {
			t.Errorf("no row %s %q in\n%s", label, value, out)
		}
	}

	r, out := stats()
	f := r.State.StateFields
	if r.State.Status != stateOK || f == nil || f.Position != "1:1472" || f.Segment != 1 || f.Offset != 1472 || f.Generation != 1 ||
		f.NextSeq != 11 || f.NextSegmentID != 2 {
		t.Fatalf("state %+v %+v", r.State, f)
	}
	line(out, "state", "published 1:1472 (segment 1, offset 1472), generation 1")
	if strings.Contains(out, "\nwriter ") || strings.Contains(out, "\nfailed sync ") || strings.Contains(out, "\ncompactor ") {
		t.Errorf("a clean directory:\n%s", out)
	}

	// The last writer died with the writing flag set, after a sync of
	// segment 1 failed; the last compactor died mid-run.
	editState(func(s *sharedstate.File) { s.SetWriting(true); s.SetFailedSync(1); s.SetCompacting(true) })(t, dir)
	r, out = stats()
	if f := r.State.StateFields; !f.Writing || !f.WriterDied || f.FailedSync != 1 || !f.Compacting || !f.CompactionInterrupted {
		t.Errorf("writer died, failed sync, compaction interrupted: %+v", f)
	}
	line(out, "writer", "a writer died mid-append (the writing flag is set and no process holds the append lock) past offset 1472 of segment 1: the next process to open the directory read-write recovers it")
	line(out, "failed sync", "segment 1: an fdatasync of it failed, so it is sealed, never synced or appended to again")
	line(out, "compactor", "the last compaction was interrupted (the compacting flag is set and no process holds the compaction lock: "+
		"its process died, or the run failed or was closed mid-run): the next process to open the directory read-write recovers it")

	// A process that has the directory open will seal the dead writer's
	// bytes at its next append, and reload before its next compaction.
	c, err := engine.Open(dir, engine.Options{ManualCompaction: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	editState(func(s *sharedstate.File) { s.SetWriting(true); s.SetCompacting(true) })(t, dir)
	_, out = stats()
	line(out, "writer", "a writer died mid-append (the writing flag is set and no process holds the append lock): the next append seals segment 1 at offset 1472, and what it wrote past there is never read")
	line(out, "compactor", "the last compaction was interrupted (the compacting flag is set and no process holds the compaction lock: "+
		"its process died, or the run failed or was closed mid-run): the next compaction reloads the directory before it rewrites anything")

	// A process appending and one compacting: the flags are set, and they
	// hold the locks.
	lf, err := lockf.Open(filepath.Join(dir, lockFile), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	held, err := lf.Lock(context.Background(), lockf.AppendRange(), lockf.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	compacting, err := lf.Lock(context.Background(), lockf.CompactionRange(), lockf.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	r, out = stats()
	if f := r.State.StateFields; !f.Writing || f.WriterDied || !f.Compacting || f.CompactionInterrupted {
		t.Errorf("a writer appending, a compactor compacting: %+v", f)
	}
	if strings.Contains(out, "\nwriter") || strings.Contains(out, "\ncompactor") {
		t.Errorf("a writer appending, a compactor compacting:\n%s", out)
	}
	line(out, "compaction", "held: a process is compacting")
	held.Unlock()
	compacting.Unlock()
	editState(func(s *sharedstate.File) { s.SetWriting(false); s.SetCompacting(false) })(t, dir)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// A damaged state file, and none at all.
	statePath := filepath.Join(dir, stateFile)
	if err := flipByte(statePath, 0); err != nil {
		t.Fatal(err)
	}
	r, out = stats()
	if r.State.Status != stateCorrupt || r.State.StateFields != nil || !strings.Contains(r.State.Error, "bad magic") {
		t.Errorf("damaged state file: %+v", r.State)
	}
	line(out, `state`, `corrupt: kennel: shared state file corrupt: bad magic "\x94ennelSF" (run 'fsinspect verify')`)
	if err := os.Remove(statePath); err != nil {
		t.Fatal(err)
	}
	r, out = stats()
	if r.State.Status != stateMissing || r.State.StateFields != nil {
		t.Errorf("no state file: %+v", r.State)
	}
	line(out, "state", "none (no state file: the directory was never opened read-write by a kennel that shares it)")
	if err := os.WriteFile(statePath, make([]byte, sharedstate.Size), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, _ = stats(); r.State.Status != stateUninit {
		t.Errorf("a zeroed state file: %+v", r.State)
	}
}

// hasRow reports whether a table in out has a row of two cells, label and
// value, whatever the column's width.
func hasRow(out, label, value string) bool {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + ` {2,}` + regexp.QuoteMeta(value) + `$`).MatchString(out)
}

// editState changes the shared state file of dir through a mapping of it,
// as a process that shares the directory does.
func editState(edit func(*sharedstate.File)) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		s, err := sharedstate.Open(filepath.Join(dir, stateFile), 0o600, false)
		if err != nil {
			t.Fatal(err)
		}
		edit(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatsSidecars checks what stats counts in the sidecar folder: the
// files live records name, those missing, those no live record names, and
// temporary and foreign files; then a folder that is not one, and none.
func TestStatsSidecars(t *testing.T) {
	// key-0006 to key-0009 in sidecar files of 100 bytes; key-0009 deleted,
	// so that its file is named by no live record.
	dir := testDir(t, fillOptions{n: 10, sidecars: 4, deleted: 1})
	for _, damage := range []func(*testing.T, string){
		onSidecar("key-0006", os.Remove),
		writeFile("sidecars/value.tmp-1", []byte("half")),
		writeFile("sidecars/notes.txt", []byte("mine")),
	} {
		damage(t, dir)
	}
	r := checkAccounting(t, dir)
	want := sidecarStats{
		Folder: "ok", LiveFiles: 3, LiveBytes: 300, Missing: 1, DiskFiles: 3, DiskBytes: 300,
		UnreferencedFiles: 1, UnreferencedBytes: 100, TempFiles: 1, TempBytes: 4, OtherFiles: 1,
	}
	if r.SidecarKeys != 3 || r.Sidecars != want {
		t.Errorf("%d sidecar keys, %+v\nwant 3, %+v", r.SidecarKeys, r.Sidecars, want)
	}
	out := mustRun(t, exitOK, "stats", dir).stdout
	for label, value := range map[string]string{
		"sidecars": "3 keys, 300 B in 3 files; 1 missing (run 'fsinspect verify')",
		"sidecar dir": "300 B in 3 files; 100 B in 1 file no live record names (compaction's sweep deletes them, after the grace period if their path was handed out); " +
			"4 B in 1 temporary file (writes in flight, or left by a crash); 1 file not kennel's",
	} {
		if !hasRow(out, label, value) {
			t.Errorf("no row %s %q in\n%s", label, value, out)
		}
	}

	folder := filepath.Join(dir, segment.SidecarDir)
	if err := os.Rename(folder, folder+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(segment.SidecarDir+".old", folder); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, exitOK, "stats", dir).stdout; !hasRow(out, "sidecar dir", "unusable: a symlink (run 'fsinspect verify')") {
		t.Errorf("a symlink for a sidecar folder:\n%s", out)
	}
	if err := os.Remove(folder); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, exitOK, "stats", dir).stdout
	if !hasRow(out, "sidecar dir", "none yet (the first read-write open creates it)") || !hasRow(out, "sidecars", "3 keys, 300 B in 3 files; 3 missing (run 'fsinspect verify')") {
		t.Errorf("no sidecar folder:\n%s", out)
	}
}
