package engine_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

func init() {
	childRoles["sidecar-crash"] = childSidecarCrash
	childRoles["sidecar-writer"] = childSidecarWriter
}

// sidecarOptions keeps every sidecar file until the test says (no
// background compaction, no grace) unless a test sets them.
func sidecarOptions() engine.Options {
	return engine.Options{ManualCompaction: true, SidecarGrace: -1, InlineLimit: 1 << 10}
}

// randomBytes returns n reproducible bytes.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sidecarFiles returns the names of the files in dir's sidecar folder.
func sidecarFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, segment.SidecarDir))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func wantBytes(tb testing.TB, c *engine.Cache, key string, want []byte) {
	tb.Helper()
	got, err := c.Get([]byte(key))
	if err != nil || !bytes.Equal(got, want) {
		tb.Fatalf("Get(%s): %d bytes, %v; want %d bytes", key, len(got), err, len(want))
	}
	h, err := c.Open([]byte(key))
	if err != nil {
		tb.Fatalf("Open(%s): %v", key, err)
	}
	defer h.Close()
	got, err = io.ReadAll(h)
	if err != nil || !bytes.Equal(got, want) || h.Size() != int64(len(want)) {
		tb.Fatalf("Open(%s) read %d bytes (size %d), %v; want %d bytes", key, len(got), h.Size(), err, len(want))
	}
}

func inode(tb testing.TB, path string) uint64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestSidecarValues covers the ways a value gets into a sidecar file: Set
// above InlineLimit, SetReader, a batch, zero bytes; and that every way
// reads back, by Get, Open and Scan, before and after reopen.
func TestSidecarValues(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, sidecarOptions())
	values := map[string][]byte{
		"inline": []byte("small"),
		"large":  randomBytes(1, 100<<10),
		"reader": randomBytes(2, 3<<20+17),
		"empty":  {},
		"batch":  randomBytes(3, 5000),
	}
	if err := c.Set([]byte("inline"), values["inline"]); err != nil {
		t.Fatal(err)
	}
	if err := c.Set([]byte("large"), values["large"]); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReader([]byte("reader"), bytes.NewReader(values["reader"])); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReader([]byte("empty"), strings.NewReader("")); err != nil {
		t.Fatal(err)
	}
	var b engine.Batch
	b.Set([]byte("batch"), values["batch"])
	b.Set([]byte("batch-inline"), []byte("x"))
	values["batch-inline"] = []byte("x")
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	check := func(c *engine.Cache) {
		t.Helper()
		for k, v := range values {
			wantBytes(t, c, k, v)
		}
		n := 0
		if err := c.Scan(nil, func(k, v []byte) error {
			n++
			if !bytes.Equal(v, values[string(k)]) {
				return fmt.Errorf("Scan: %s has %d bytes, want %d", k, len(v), len(values[string(k)]))
			}
			return nil
		}); err != nil || n != len(values) {
			t.Fatalf("Scan: %d keys, %v", n, err)
		}
	}
	check(c)
	if s := c.Stats(); s.SidecarFiles != 4 || s.SidecarBytes != int64(100<<10+3<<20+17+5000) {
		t.Fatalf("Stats: %d sidecar files of %d bytes, want 4", s.SidecarFiles, s.SidecarBytes)
	}
	if got := len(sidecarFiles(t, dir)); got != 4 {
		t.Fatalf("%d files in the sidecar folder, want 4", got)
	}
	h, err := c.Open([]byte("inline"))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := h.Path(); p != "" || err != nil || h.File() != nil {
		t.Fatalf("inline value: Path %q, %v, File %v; want none", p, err, h.File())
	}
	h.Close()
	mustClose(t, c)
	c = openCache(t, dir, sidecarOptions())
	check(c)

	// Every value in a sidecar file.
	opts := sidecarOptions()
	opts.InlineLimit = -1
	c2 := openCache(t, t.TempDir(), opts)
	mustSet(t, c2, "tiny", "t")
	if s := c2.Stats(); s.SidecarFiles != 1 {
		t.Fatalf("InlineLimit -1: %d sidecar files, want 1", s.SidecarFiles)
	}
	wantValue(t, c2, "tiny", "t")
}

// TestSetFileMoveAndCopy checks that Movable moves the file itself (the
// same inode, the source path gone), that a copy leaves the source, and
// that files that must not be moved (a second hard link) are copied.
func TestSetFileMoveAndCopy(t *testing.T) {
	dir := t.TempDir()
	src := t.TempDir()
	c := openCache(t, dir, sidecarOptions())
	data := randomBytes(4, 2<<20)

	moved := filepath.Join(src, "moved")
	os.WriteFile(moved, data, 0o644)
	ino := inode(t, moved)
	if err := c.SetFile([]byte("moved"), moved, engine.Movable()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(moved); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("source after a move: %v, want gone", err)
	}
	h, err := c.Open([]byte("moved"))
	if err != nil {
		t.Fatal(err)
	}
	path, err := h.Path()
	if err != nil || !filepath.IsAbs(path) {
		t.Fatalf("Path: %q, %v", path, err)
	}
	if got := inode(t, path); got != ino {
		t.Fatalf("the sidecar is inode %d, the moved file was %d", got, ino)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("a moved file has mode %v, want the cache's 0600", fi.Mode().Perm())
	}
	h.Close()
	wantBytes(t, c, "moved", data)

	copied := filepath.Join(src, "copied")
	os.WriteFile(copied, data, 0o644)
	if err := c.SetFile([]byte("copied"), copied); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(copied); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("source after a copy: %d bytes, %v", len(got), err)
	}
	wantBytes(t, c, "copied", data)

	linked := filepath.Join(src, "linked")
	os.WriteFile(linked, data, 0o644)
	os.Link(linked, linked+"2")
	if err := c.SetFile([]byte("linked"), linked, engine.Movable()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(linked); err != nil {
		t.Fatalf("a file with two links was moved: %v", err)
	}
	wantBytes(t, c, "linked", data)

	if err := c.SetFile([]byte("nothing"), filepath.Join(src, "absent"), engine.Movable()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("SetFile of a missing file: %v, want not exist", err)
	}
	if err := c.SetFile([]byte("dir"), src); err == nil {
		t.Fatal("SetFile of a directory succeeded")
	}
	mustClose(t, c)
	c = openCache(t, dir, sidecarOptions())
	wantBytes(t, c, "moved", data)
}

// TestSetFileCrossFilesystem moves a file from another filesystem: the
// rename fails with EXDEV and the file is copied instead, not an error.
func TestSetFileCrossFilesystem(t *testing.T) {
	dir := t.TempDir()
	other := otherFilesystem(t, dir)
	src := filepath.Join(other, "value")
	data := randomBytes(5, 1<<20)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c := openCache(t, dir, sidecarOptions())
	if err := c.SetFile([]byte("k"), src, engine.Movable()); err != nil {
		t.Fatalf("SetFile across filesystems: %v", err)
	}
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("the source of a copy across filesystems: %v, want kept", err)
	}
	wantBytes(t, c, "k", data)
}

// otherFilesystem returns a temporary directory on another filesystem than
// dir, or skips the test saying why there is none.
func otherFilesystem(t *testing.T, dir string) string {
	t.Helper()
	dev := func(p string) uint64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.Sys().(*syscall.Stat_t).Dev
	}
	for _, root := range []string{"/dev/shm", os.TempDir(), "/run/user", "/var/tmp"} {
		if d := dev(root); d != 0 && d != dev(dir) {
			other, err := os.MkdirTemp(root, "kennel-xfs-")
			if err != nil {
				continue
			}
			t.Cleanup(func() { os.RemoveAll(other) })
			return other
		}
	}
	t.Skip("no second filesystem here (tried /dev/shm, $TMPDIR, /run/user, /var/tmp)")
	return ""
}

// lazyReader yields n pseudo-random bytes a chunk at a time, holding none.
type lazyReader struct {
	r    *rand.Rand
	left int64
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), l.left)]
	for i := range p {
		p[i] = byte(l.r.Uint32())
	}
	l.left -= int64(len(p))
	return len(p), nil
}

// TestSetReaderStreams stores a value eight times larger than what the
// test lets the process allocate meanwhile, and reads it back through a
// handle the same way: neither side holds the value in memory.
func TestSetReaderStreams(t *testing.T) {
	const size, bound = 128 << 20, 16 << 20
	c := openCache(t, t.TempDir(), sidecarOptions())
	allocated := func(fn func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	var err error
	if n := allocated(func() {
		err = c.SetReader([]byte("big"), &lazyReader{r: rand.New(rand.NewPCG(9, 9)), left: size})
	}); err != nil || n > bound {
		t.Fatalf("SetReader of %d MiB: %v, allocated %d MiB (bound %d MiB)", size>>20, err, n>>20, bound>>20)
	}
	var read int64
	if n := allocated(func() {
		var h *engine.Handle
		if h, err = c.Open([]byte("big")); err != nil {
			return
		}
		defer h.Close()
		want := &lazyReader{r: rand.New(rand.NewPCG(9, 9)), left: size}
		buf, wbuf := make([]byte, 1<<20), make([]byte, 1<<20)
		for {
			k, rerr := h.Read(buf)
			io.ReadFull(want, wbuf[:k])
			if !bytes.Equal(buf[:k], wbuf[:k]) {
				err = fmt.Errorf("bytes differ at %d", read)
				return
			}
			read += int64(k)
			if rerr == io.EOF {
				return
			}
			if rerr != nil {
				err = rerr
				return
			}
		}
	}); err != nil || read != size || n > bound {
		t.Fatalf("reading back: %d bytes, %v, allocated %d MiB (bound %d MiB)", read, err, n>>20, bound>>20)
	}
}

// TestSetReaderFailure stores nothing when the reader fails, and leaves no
// file behind.
func TestSetReaderFailure(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, sidecarOptions())
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("some bytes"), iotestErr{boom})
	if err := c.SetReader([]byte("k"), r); !errors.Is(err, boom) {
		t.Fatalf("SetReader with a failing reader: %v, want boom", err)
	}
	wantMissing(t, c, "k")
	if files := sidecarFiles(t, dir); len(files) != 0 {
		t.Fatalf("files left behind: %v", files)
	}
	opts := sidecarOptions()
	opts.CacheSize = 1 << 20
	small := openCache(t, t.TempDir(), opts)
	if err := small.SetReader([]byte("k"), &lazyReader{r: rand.New(rand.NewPCG(1, 1)), left: 2 << 20}); !errors.Is(err, engine.ErrValueTooLarge) {
		t.Fatalf("SetReader of a value over the budget: %v, want ErrValueTooLarge", err)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

// TestHandleOutlivesValue reads a handle to the end after its key was
// overwritten, deleted, and compacted away with no grace.
func TestHandleOutlivesValue(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, sidecarOptions())
	old := randomBytes(6, 300<<10)
	if err := c.Set([]byte("k"), old); err != nil {
		t.Fatal(err)
	}
	h, err := c.Open([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	first := make([]byte, 1000)
	if _, err := io.ReadFull(h, first); err != nil {
		t.Fatal(err)
	}
	if err := c.Set([]byte("k"), randomBytes(7, 200<<10)); err != nil {
		t.Fatal(err)
	}
	mustDelete(t, c, "k")
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	if files := sidecarFiles(t, dir); len(files) != 0 {
		t.Fatalf("after delete and compaction with no grace, files %v remain", files)
	}
	rest, err := io.ReadAll(h)
	if err != nil || !bytes.Equal(append(first, rest...), old) {
		t.Fatalf("handle after overwrite, delete and sweep: %d bytes, %v", len(first)+len(rest), err)
	}
	buf := make([]byte, 10)
	if _, err := h.ReadAt(buf, 5000); err != nil || !bytes.Equal(buf, old[5000:5010]) {
		t.Fatalf("ReadAt: %v", err)
	}
	if pos, err := h.Seek(-10, io.SeekEnd); err != nil || pos != int64(len(old))-10 {
		t.Fatalf("Seek: %d, %v", pos, err)
	}
}

// TestSidecarPathGrace hands a path out, then overwrites the key, and
// evicts: the path stays readable by name until its grace period is over,
// and the next sweep after that deletes it.
func TestSidecarPathGrace(t *testing.T) {
	const grace = 1500 * time.Millisecond
	dir := t.TempDir()
	opts := sidecarOptions()
	opts.SidecarGrace = grace
	opts.CacheSize = 4 << 20
	c := openCache(t, dir, opts)
	old := randomBytes(8, 256<<10)
	if err := c.Set([]byte("k"), old); err != nil {
		t.Fatal(err)
	}
	h, err := c.Open([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	path, err := h.Path()
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	handedOut := time.Now()
	if err := c.Set([]byte("k"), randomBytes(9, 256<<10)); err != nil {
		t.Fatal(err)
	}
	// Fill the budget several times over: "k" and every older value are
	// evicted, and compaction sweeps all along.
	for i := range 64 {
		if err := c.Set(fmt.Appendf(nil, "fill-%d", i), randomBytes(uint64(i), 256<<10)); err != nil {
			t.Fatal(err)
		}
		if err := c.Compact(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if since := time.Since(handedOut); since < grace && (err != nil || !bytes.Equal(got, old)) {
		t.Fatalf("%v after it was handed out (grace %v), the path gives %d bytes, %v", since, grace, len(got), err)
	}
	// The values never handed out went with their eviction.
	if s := c.Stats(); s.DiskBytes > opts.CacheSize+opts.CacheSize/4 {
		t.Fatalf("directory holds %d bytes, budget %d", s.DiskBytes, opts.CacheSize)
	}
	time.Sleep(time.Until(handedOut.Add(grace + 100*time.Millisecond)))
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after its grace, the old sidecar is still there: %v", err)
	}
}

// TestSidecarDamage: a sidecar file cut short, changed in place, removed or
// replaced gives ErrCorrupt, never wrong bytes.
func TestSidecarDamage(t *testing.T) {
	data := randomBytes(10, 200<<10)
	for _, tc := range []struct {
		name   string
		damage func(path string) error
	}{
		{"truncated", func(p string) error { return os.Truncate(p, int64(len(data))-1) }},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }},
		{"flipped", func(p string) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte{data[len(data)/2] ^ 1}, int64(len(data)/2))
			return err
		}},
		{"removed", os.Remove},
		{"symlink", func(p string) error {
			other := p + "-elsewhere"
			if err := os.WriteFile(other, data, 0o600); err != nil {
				return err
			}
			os.Remove(p)
			return os.Symlink(other, p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := openCache(t, dir, sidecarOptions())
			if err := c.Set([]byte("k"), data); err != nil {
				t.Fatal(err)
			}
			h, _ := c.Open([]byte("k"))
			path, _ := h.Path()
			h.Close()
			if err := tc.damage(path); err != nil {
				t.Fatal(err)
			}
			if v, err := c.Get([]byte("k")); !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("Get: %d bytes, %v; want ErrCorrupt", len(v), err)
			}
			h, err := c.Open([]byte("k"))
			if err == nil {
				_, err = io.ReadAll(h)
				h.Close()
			}
			if !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("Open and read: %v; want ErrCorrupt", err)
			}
			if c.Stats().Corruptions == 0 {
				t.Fatal("the damage was not counted")
			}
		})
	}
}

// TestSidecarBudget writes sidecar values worth ten budgets: the directory
// stays within the budget (sidecar files count), and evicted values' files
// are deleted.
func TestSidecarBudget(t *testing.T) {
	dir := t.TempDir()
	opts := engine.Options{CacheSize: 8 << 20, SidecarGrace: -1, InlineLimit: 4 << 10}
	c := openCache(t, dir, opts)
	peak := int64(0)
	for i := range 320 {
		if err := c.Set(fmt.Appendf(nil, "v-%d", i), randomBytes(uint64(i), 256<<10)); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, c.Stats().DiskBytes)
	}
	// Slack: the segment compaction writes into, and values in flight.
	if peak > opts.CacheSize+opts.CacheSize/4 {
		t.Fatalf("directory peaked at %d bytes, budget %d", peak, opts.CacheSize)
	}
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	if files := len(sidecarFiles(t, dir)); files != s.SidecarFiles || s.Evicted == 0 {
		t.Fatalf("%d files in the sidecar folder, %d values in sidecars, %d evicted", files, s.SidecarFiles, s.Evicted)
	}
	t.Logf("peak %d bytes of %d; %d values kept, %d evicted", peak, opts.CacheSize, s.SidecarFiles, s.Evicted)
}

// TestSidecarReadOnly reads sidecar values from a read-only cache while a
// writer has the directory open.
func TestSidecarReadOnly(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, sidecarOptions())
	data := randomBytes(11, 70<<10)
	if err := c.Set([]byte("k"), data); err != nil {
		t.Fatal(err)
	}
	ro := openCache(t, dir, engine.Options{ReadOnly: true})
	wantBytes(t, ro, "k", data)
	if err := ro.SetReader([]byte("x"), strings.NewReader("x")); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("SetReader on a read-only cache: %v", err)
	}
	mustClose(t, c)
	for name, call := range map[string]func() error{
		"SetReader": func() error { return c.SetReader([]byte("k"), strings.NewReader("x")) },
		"SetFile":   func() error { return c.SetFile([]byte("k"), "/dev/null") },
		"Open":      func() error { _, err := c.Open([]byte("k")); return err },
	} {
		if err := call(); !errors.Is(err, engine.ErrClosed) {
			t.Errorf("%s on a closed cache: %v, want ErrClosed", name, err)
		}
	}
}

// TestSidecarCrash kills a child at each crash point of a sidecar write:
// after its bytes are written and before its rename, and after the rename
// before its record. On reopen the key has its old value, no temporary
// file is left, and an unreferenced file goes at the next sweep.
func TestSidecarCrash(t *testing.T) {
	for _, point := range []string{"sidecar-written", "sidecar-named"} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			c := openCache(t, dir, sidecarOptions())
			old := randomBytes(12, 80<<10)
			if err := c.Set([]byte("k"), old); err != nil {
				t.Fatal(err)
			}
			mustClose(t, c)
			cmd := childCommand("sidecar-crash", dir, "KENNEL_CRASH_POINT="+point)
			out, _ := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the child did not die at %s: %v\n%s", point, cmd.ProcessState, out)
			}
			c = openCache(t, dir, sidecarOptions())
			wantBytes(t, c, "k", old)
			for _, name := range sidecarFiles(t, dir) {
				if strings.Contains(name, segment.TempInfix) {
					t.Fatalf("temporary file %s left after reopen", name)
				}
			}
			if err := c.Compact(); err != nil {
				t.Fatal(err)
			}
			if files := sidecarFiles(t, dir); len(files) != 1 {
				t.Fatalf("after the sweep the folder holds %v, want the one live file", files)
			}
		})
	}
}

// childSidecarCrash stores a sidecar value and SIGKILLs itself at the
// crash point KENNEL_CRASH_POINT.
func childSidecarCrash(dir string) int {
	point := os.Getenv("KENNEL_CRASH_POINT")
	engine.SetCrashPoint(func(name string) {
		if name == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	})
	c, err := engine.Open(dir, sidecarOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c.Set([]byte("k"), randomBytes(13, 90<<10))
	fmt.Fprintln(os.Stderr, "crash point not reached")
	return 1
}

// TestSidecarTwoProcesses has two processes overwrite the same keys with
// sidecar values at once: every read gives one whole value that some
// process wrote, and once both are done and compaction swept, exactly one
// file per key remains.
func TestSidecarTwoProcesses(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, sidecarOptions())
	var wg sync.WaitGroup
	var failures []string
	var mu sync.Mutex
	for id := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := childCommand("sidecar-writer", dir, fmt.Sprintf("KENNEL_WRITER_ID=%d", id))
			if out, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("writer %d: %v\n%s", id, err, out))
				mu.Unlock()
			}
		}()
	}
	// Read meanwhile: each value names its writer and round, and its bytes
	// follow from that.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	reads := 0
	for loop := true; loop; {
		select {
		case <-done:
			loop = false
		default:
		}
		for k := range sidecarWriterKeys {
			v, err := c.Get(fmt.Appendf(nil, "shared-%d", k))
			if errors.Is(err, engine.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("Get during the writes: %v", err)
			}
			checkWriterValue(t, k, v)
			reads++
		}
	}
	for _, f := range failures {
		t.Error(f)
	}
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	if files := sidecarFiles(t, dir); len(files) != sidecarWriterKeys {
		t.Fatalf("%d files in the sidecar folder after the sweep, want %d", len(files), sidecarWriterKeys)
	}
	mustClose(t, c)
	c = openCache(t, dir, sidecarOptions())
	for k := range sidecarWriterKeys {
		v, err := c.Get(fmt.Appendf(nil, "shared-%d", k))
		if err != nil {
			t.Fatal(err)
		}
		checkWriterValue(t, k, v)
	}
	t.Logf("%d concurrent reads checked", reads)
}

const sidecarWriterKeys = 4

// writerValue is what writer id stores under key k in round n: a header
// naming them, then bytes that follow from it.
func writerValue(id, k, n int) []byte {
	head := fmt.Sprintf("%d/%d/%d;", id, k, n)
	return append([]byte(head), randomBytes(uint64(id<<20|k<<10|n), 20<<10+n)...)
}

func checkWriterValue(tb testing.TB, k int, v []byte) {
	tb.Helper()
	var id, key, n int
	head, _, ok := bytes.Cut(v, []byte(";"))
	if _, err := fmt.Sscanf(string(head), "%d/%d/%d", &id, &key, &n); !ok || err != nil || key != k || !bytes.Equal(v, writerValue(id, k, n)) {
		tb.Fatalf("key %d holds %d bytes that no writer wrote (head %q)", k, len(v), head)
	}
}

func childSidecarWriter(dir string) int {
	var id int
	fmt.Sscan(os.Getenv("KENNEL_WRITER_ID"), &id)
	c, err := engine.Open(dir, sidecarOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	for n := range 60 {
		for k := range sidecarWriterKeys {
			var err error
			if n%2 == 0 {
				err = c.Set(fmt.Appendf(nil, "shared-%d", k), writerValue(id, k, n))
			} else {
				err = c.SetReader(fmt.Appendf(nil, "shared-%d", k), bufio.NewReader(bytes.NewReader(writerValue(id, k, n))))
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	}
	return 0
}

// TestSidecarAfterReload: a process that reloads (another compacted)
// still knows which sidecar files are live, so its own sweep keeps them.
func TestSidecarAfterReload(t *testing.T) {
	dir := t.TempDir()
	opts := sidecarOptions()
	opts.SegmentSize = 4 << 10
	a := openCache(t, dir, opts)
	b := openCache(t, dir, opts)
	for i := range 8 { // overwrites across segments: something to reclaim
		mustSet(t, a, "dead", strings.Repeat("x", 900+i))
	}
	data := randomBytes(14, 10<<10)
	if err := b.SetReader([]byte("new"), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := b.Compact(); err != nil {
		t.Fatal(err)
	}
	if b.Stats().Compactions == 0 {
		t.Fatal("b compacted nothing: a would not reload")
	}
	wantBytes(t, a, "new", data) // a reloads here
	for i := range 8 {
		mustSet(t, a, "dead", strings.Repeat("y", 900+i))
	}
	if err := a.Compact(); err != nil {
		t.Fatal(err)
	}
	wantBytes(t, a, "new", data)
	wantBytes(t, b, "new", data)
}

// TestSetFileMoveFailureGivesBack: when the record of a file moved in
// cannot be written (here the cache closes under the write), the file goes
// back to its path with its mode and mtime: it is never lost.
func TestSetFileMoveFailureGivesBack(t *testing.T) {
	dir, src := t.TempDir(), t.TempDir()
	c := openCache(t, dir, sidecarOptions())
	path := filepath.Join(src, "value")
	data := randomBytes(15, 100<<10)
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(path, mtime, mtime)
	engine.SetCrashPoint(func(name string) {
		if name == "sidecar-named" {
			c.Close()
		}
	})
	defer engine.SetCrashPoint(nil)
	if err := c.SetFile([]byte("k"), path, engine.Movable()); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("SetFile on a cache closed under it: %v, want ErrClosed", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the moved file was not given back: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) || fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("given back as %d bytes, mode %v, mtime %v; want %d bytes, 0640, %v", len(got), fi.Mode().Perm(), fi.ModTime(), len(data), mtime)
	}
	if files := sidecarFiles(t, dir); len(files) != 0 {
		t.Fatalf("the sidecar folder still holds %v", files)
	}
}
