package inspect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

// TestStats runs testdata/script/stats.txtar.
func TestStats(t *testing.T) { runScript(t, "stats") }

// TestStatsAccounting checks that stats accounts for every byte: in each
// segment, live, expired and dead records plus the header make up the
// segment, and the totals are the sums over segments.
func TestStatsAccounting(t *testing.T) {
	dir := testDir(t, fillOptions{n: 200, valueSize: 300, expired: 17, future: 9, overwritten: 31, deleted: 23})
	var r statsReport
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "stats", "--json", dir).stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Keys != 200-23 || r.ExpiredKeys != 17 || r.SidecarKeys != 0 || r.Lock != "free" || r.FormatVersion != 1 {
		t.Errorf("keys %d, expired %d, sidecars %d, lock %q, format %d; want 177, 17, 0, free, 1",
			r.Keys, r.ExpiredKeys, r.SidecarKeys, r.Lock, r.FormatVersion)
	}
	if len(r.Segments) < 3 {
		t.Fatalf("%d segments; the test wants several", len(r.Segments))
	}
	var live, expired, dead, disk int64
	for i, s := range r.Segments {
		if got := s.LiveBytes + s.ExpiredBytes + s.DeadBytes + segment.HeaderSize; got != s.Bytes {
			t.Errorf("segment %d: live %d + expired %d + dead %d + header = %d, want its %d bytes",
				s.ID, s.LiveBytes, s.ExpiredBytes, s.DeadBytes, got, s.Bytes)
		}
		wantState := "sealed"
		if i == len(r.Segments)-1 {
			wantState = "active"
		}
		if s.State != wantState || s.Hint != (wantState == "sealed") {
			t.Errorf("segment %d: state %s, hint %v; want %s", s.ID, s.State, s.Hint, wantState)
		}
		live, expired, dead = live+s.LiveBytes, expired+s.ExpiredBytes, dead+s.DeadBytes
	}
	if live != r.LiveBytes || expired != r.ExpiredBytes || dead != r.DeadBytes {
		t.Errorf("totals live %d, expired %d, dead %d; segments add up to %d, %d, %d",
			r.LiveBytes, r.ExpiredBytes, r.DeadBytes, live, expired, dead)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		disk += fi.Size()
	}
	if r.DiskBytes != disk || r.BudgetBytes != 1<<30 || r.BudgetSource != "default" {
		t.Errorf("disk %d of %d (%s), want %d of 1 GiB (default)", r.DiskBytes, r.BudgetBytes, r.BudgetSource, disk)
	}
}

// TestLockState checks the lock probe against a writer in this process (a
// flock belongs to an open file description, so the probe's own open sees
// it), and that probing creates no lock file.
func TestLockState(t *testing.T) {
	dir := testDir(t, fillOptions{n: 10})
	c, err := engine.Open(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := lockState(dir); got != lockHeld || err != nil {
		t.Errorf("with a writer: lockState = %q, %v; want %q", got, err, lockHeld)
	}
	if r := mustRun(t, exitOK, "stats", dir); !strings.Contains(r.stdout, "lock       held by a writer\n") {
		t.Errorf("stats with a writer:\n%s", r.stdout)
	}
	// The probe let go of its shared lock: the writer can still be replaced.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = engine.Open(dir, engine.Options{})
	if err != nil {
		t.Fatalf("reopen after probing: %v", err)
	}
	c.Close()
	if got, err := lockState(dir); got != lockFree || err != nil {
		t.Errorf("without a writer: lockState = %q, %v; want %q", got, err, lockFree)
	}

	lock := filepath.Join(dir, lockFile)
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	requireNoChange(t, dir, func() {
		if got, err := lockState(dir); got != lockFree || err != nil {
			t.Errorf("without a lock file: lockState = %q, %v; want %q", got, err, lockFree)
		}
	})
}
