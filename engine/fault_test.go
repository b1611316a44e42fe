package engine_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kennel-cache/kennel/cmd/fsinspect/inspect"
	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/vfs"
	"github.com/kennel-cache/kennel/segment"
)

// faultOptions are those of the fault loop: small segments, so that the
// workload rolls and compacts, and small inline values, so that it writes
// sidecar files.
func faultOptions() engine.Options {
	return engine.Options{SegmentSize: 4 << 10, InlineLimit: 100, ManualCompaction: true, Sync: engine.SyncAlways}
}

// faultWorkload is a fixed sequence of writes that touches every write
// path: puts inline and in sidecar files, a batch, deletes, SetReader, a
// roll (the values fill several segments), a sync and a compaction. It
// records what each write attempted in tried (every value a key was given,
// "" for a delete) and the writes that returned nil in acked, and stops
// at the first error unless keepGoing.
func faultWorkload(c *engine.Cache, tried map[string][]string, acked map[string]string, keepGoing bool) {
	do := func(key, value string, err error) bool {
		tried[key] = append(tried[key], value)
		if err == nil {
			acked[key] = value
		}
		return err == nil || keepGoing
	}
	for i := range 24 {
		key := fmt.Sprintf("key-%02d", i%10)
		value := fmt.Sprintf("%s=%d:", key, i) + strings.Repeat("v", (i*37)%250)
		var err error
		switch i % 6 {
		case 0:
			err = c.SetReader([]byte(key), strings.NewReader(value))
		case 1:
			var b engine.Batch
			b.Set([]byte(key), []byte(value))
			other := fmt.Sprintf("key-%02d", (i+5)%10)
			b.Delete([]byte(other))
			err = c.Write(&b)
			if !do(other, "", err) {
				do(key, value, err) // the batch may have landed whole
				return
			}
		case 2:
			err = c.Delete([]byte(key))
			if errors.Is(err, engine.ErrNotFound) {
				err = nil
			}
			value = ""
		case 3:
			if err = c.Compact(); !do("", "", err) {
				return
			}
			err = c.Set([]byte(key), []byte(value))
		default:
			err = c.Set([]byte(key), []byte(value))
		}
		if !do(key, value, err) {
			return
		}
	}
	do("", "", c.Sync())
}

var faultStride = flag.Int("kennel.fault-stride", 4, "TestFaultLoop fails every this many calls of its workload (CI runs 4; a soak run, 1)")

// TestFaultLoop fails filesystem call number N of faultWorkload, for every
// N the workload makes, with EIO and with ENOSPC, for every later call too
// (a dead or full disk) and once (a transient error), the way SQLite's I/O
// error tests do. After each run the directory must reopen on the real
// filesystem with every acknowledged write there, no key holding a value
// that was never written to it, and fsinspect verify finding no problem.
func TestFaultLoop(t *testing.T) {
	calls := func() int {
		fsys := vfs.NewFaultFS(vfs.OS{})
		c := openCache(t, filepath.Join(t.TempDir(), "c"), engine.WithFS(faultOptions(), fsys))
		faultWorkload(c, map[string][]string{}, map[string]string{}, false)
		mustClose(t, c)
		n, _ := fsys.Calls()
		return n
	}()
	runs, failedCalls := 0, 0
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.ENOSPC} {
		for _, sticky := range []bool{true, false} {
			for n := 1; n <= calls; n += *faultStride {
				where := fmt.Sprintf("%v on call %d (sticky %v)", errno, n, sticky)
				dir := filepath.Join(t.TempDir(), "c")
				fsys := vfs.NewFaultFS(vfs.OS{})
				fsys.FailAt(n, errno, sticky)
				tried, acked := map[string][]string{}, map[string]string{}
				if c, err := engine.Open(dir, engine.WithFS(faultOptions(), fsys)); err == nil {
					faultWorkload(c, tried, acked, !sticky)
					c.Close()
				} else if !errors.Is(err, errno) {
					t.Errorf("%s: Open: %v, want an error wrapping %v", where, err, errno)
				}
				_, failed := fsys.Calls()
				failedCalls += failed
				checkAfterFaults(t, where, dir, tried, acked)
				runs++
			}
		}
	}
	t.Logf("%d runs over %d filesystem calls, %d calls failed", runs, calls, failedCalls)
}

// checkAfterFaults reopens dir on the real filesystem and checks every key
// against the writes tried and acknowledged.
func checkAfterFaults(t *testing.T, where, dir string, tried map[string][]string, acked map[string]string) {
	t.Helper()
	c, err := engine.Open(dir, engine.Options{ManualCompaction: true})
	if err != nil {
		t.Fatalf("%s: reopen on the real filesystem: %v", where, err)
	}
	defer mustClose(t, c)
	for i := range 12 {
		key := fmt.Sprintf("key-%02d", i)
		v, err := c.Get([]byte(key))
		got := string(v)
		switch {
		case errors.Is(err, engine.ErrNotFound):
			got = ""
		case err != nil:
			t.Errorf("%s: %s: %v", where, key, err)
			continue
		}
		if want, ok := acked[key]; ok && got == want {
			continue
		}
		// A write that failed may have reached the file (a write that
		// failed after it, or a sync, does not undo it); one that
		// returned must be there, unless a write of the key after it
		// failed and may have landed.
		possible := !hasKey(acked, key) && got == ""
		for _, v := range triedAfter(tried[key], acked, key) {
			possible = possible || v == got
		}
		if !possible {
			t.Errorf("%s: %s holds %.24q; acknowledged %.24q, tried %.24q", where, key, got, acked[key], tried[key])
		}
	}
	var out bytes.Buffer
	if code := inspect.Main([]string{"verify", dir}, &out, &out); code != 0 {
		t.Errorf("%s: fsinspect verify: exit status %d:\n%s", where, code, out.String())
	}
}

func hasKey(m map[string]string, key string) bool { _, ok := m[key]; return ok }

// triedAfter returns the values tried for key from its last acknowledged
// one on (all of them if none was acknowledged).
func triedAfter(tried []string, acked map[string]string, key string) []string {
	want, ok := acked[key]
	if !ok {
		return tried
	}
	for i := len(tried) - 1; i >= 0; i-- {
		if tried[i] == want {
			return tried[i:]
		}
	}
	return tried
}

// TestNetworkFSRefused: a directory on NFS is refused with ErrNetworkFS
// unless AllowNetworkFS, and nothing is created in it.
func TestNetworkFSRefused(t *testing.T) {
	dir := t.TempDir()
	nfs := vfs.TypeFS{FS: vfs.OS{}, Type: 0x6969}
	if _, err := engine.Open(dir, engine.WithFS(engine.Options{}, nfs)); !errors.Is(err, engine.ErrNetworkFS) || !strings.Contains(err.Error(), "nfs") {
		t.Fatalf("Open on NFS: %v, want ErrNetworkFS naming nfs", err)
	}
	if names := dirState(t, dir); len(names) != 0 {
		t.Errorf("a refused Open left %v", names)
	}
	c := openCache(t, dir, engine.WithFS(engine.Options{AllowNetworkFS: true}, nfs))
	mustSet(t, c, "k", "v")
	mustClose(t, c)
}

// failSegmentRemoval is the real filesystem, but for the first removal of
// a segment file, which fails with EIO.
type failSegmentRemoval struct {
	vfs.FS
	failed bool
}

func (f *failSegmentRemoval) Remove(name string) error {
	if _, ok := segment.ParseFileName(filepath.Base(name)); ok && !f.failed {
		f.failed = true
		return &os.PathError{Op: "remove", Path: name, Err: syscall.EIO}
	}
	return f.FS.Remove(name)
}

// TestReclaimedSegmentNotRemoved is a bug TestFaultLoop found: when a
// reclaimed segment could not be deleted, compaction logged it and went
// on, counting the segment's dead puts as gone, and then dropped the
// tombstone that shadowed one of them. A reopen read the put again: a
// deleted key came back. The run now stops with the error, and the next
// one reloads the directory first.
func TestReclaimedSegmentNotRemoved(t *testing.T) {
	dir := t.TempDir()
	fsys := &failSegmentRemoval{FS: vfs.OS{}}
	opts := engine.Options{SegmentSize: 4 << 10, ManualCompaction: true, Sync: engine.SyncNever}
	c := openCache(t, dir, engine.WithFS(opts, fsys))
	mustSet(t, c, "gone", "deleted value") // segment 1
	for i := range 8 {
		mustSet(t, c, fmt.Sprintf("fill-%d", i), value("fill", i, 1000)) // rolls to segment 3
	}
	mustDelete(t, c, "gone")
	if err := c.Compact(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Compact with a segment that cannot be deleted: %v, want EIO", err)
	}
	if err := c.Compact(); err != nil {
		t.Fatalf("second Compact: %v", err)
	}
	mustClose(t, c)
	c = openCache(t, dir, opts)
	if v, err := c.Get([]byte("gone")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("deleted key after reopen: %q, %v; want ErrNotFound", v, err)
	}
	for i := range 8 {
		wantValue(t, c, fmt.Sprintf("fill-%d", i), value("fill", i, 1000))
	}
	mustClose(t, c)
}
