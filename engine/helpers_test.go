package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

// testClock is a clock the test moves by hand: TTLs expire without sleeping.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := new(testClock)
	c.ns.Store(time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC).UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// smallOptions roll a segment every few kilobytes and leave syncing to Close
// and Sync, so that tests cover many segments cheaply.
func smallOptions() engine.Options {
	return engine.Options{SegmentSize: 4096, Sync: engine.SyncNever}
}

// openCache opens dir and closes the cache when the test ends, if the test
// has not closed it.
func openCache(tb testing.TB, dir string, opts engine.Options) *engine.Cache {
	tb.Helper()
	c, err := engine.Open(dir, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			tb.Errorf("Close at cleanup: %v", err)
		}
	})
	return c
}

func mustClose(tb testing.TB, c *engine.Cache) {
	tb.Helper()
	if err := c.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

func mustSet(tb testing.TB, c *engine.Cache, key, value string) {
	tb.Helper()
	if err := c.Set([]byte(key), []byte(value)); err != nil {
		tb.Fatalf("Set(%q): %v", key, err)
	}
}

func mustDelete(tb testing.TB, c *engine.Cache, key string) {
	tb.Helper()
	if err := c.Delete([]byte(key)); err != nil {
		tb.Fatalf("Delete(%q): %v", key, err)
	}
}

// wantValue checks that key holds exactly want.
func wantValue(tb testing.TB, c *engine.Cache, key, want string) {
	tb.Helper()
	got, err := c.Get([]byte(key))
	if err != nil {
		tb.Fatalf("Get(%q): %v, want %d bytes", key, err, len(want))
	}
	if !bytes.Equal(got, []byte(want)) {
		tb.Fatalf("Get(%q) = %.40q (%d bytes), want %.40q (%d bytes)", key, got, len(got), want, len(want))
	}
}

// wantMissing checks that key has no value.
func wantMissing(tb testing.TB, c *engine.Cache, key string) {
	tb.Helper()
	got, err := c.Get([]byte(key))
	if !errors.Is(err, engine.ErrNotFound) {
		tb.Fatalf("Get(%q) = %.40q, %v; want ErrNotFound", key, got, err)
	}
	if ok, err := c.Has([]byte(key)); ok || err != nil {
		tb.Fatalf("Has(%q) = %v, %v; want false", key, ok, err)
	}
}

// checkModel checks that the cache holds exactly model: every key's value,
// nothing else (through Scan), and Len.
func checkModel(tb testing.TB, c *engine.Cache, model map[string]string) {
	tb.Helper()
	for k, v := range model {
		wantValue(tb, c, k, v)
	}
	seen := 0
	err := c.Scan(nil, func(k, v []byte) error {
		want, ok := model[string(k)]
		if !ok {
			return fmt.Errorf("Scan yielded %q, which the cache should not hold", k)
		}
		if string(v) != want {
			return fmt.Errorf("Scan yielded %q = %.40q, want %.40q", k, v, want)
		}
		seen++
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if seen != len(model) {
		tb.Fatalf("Scan yielded %d keys, want %d", seen, len(model))
	}
	if n := c.Len(); n != len(model) {
		tb.Fatalf("Len = %d, want %d", n, len(model))
	}
}

// files returns the names in dir with the given suffix, sorted.
// lastSegmentID returns the highest segment id in dir. Ids are never
// reused, so it tells how many segments were ever created, also after
// compaction deleted some.
func lastSegmentID(tb testing.TB, dir string) uint64 {
	tb.Helper()
	var last uint64
	for _, name := range files(tb, dir, segment.Suffix) {
		if id, ok := segment.ParseFileName(name); ok {
			last = max(last, id)
		}
	}
	return last
}

func files(tb testing.TB, dir, suffix string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// removeHints deletes every hint file, so that Open must scan segments.
func removeHints(tb testing.TB, dir string) int {
	tb.Helper()
	hints := files(tb, dir, segment.HintSuffix)
	for _, h := range hints {
		if err := os.Remove(filepath.Join(dir, h)); err != nil {
			tb.Fatal(err)
		}
	}
	return len(hints)
}

// copyDir copies a closed cache directory to a new temporary one.
func copyDir(tb testing.TB, src string) string {
	tb.Helper()
	dst := filepath.Join(tb.TempDir(), "copy")
	if err := copyTree(src, dst); err != nil {
		tb.Fatalf("copy %s: %v", src, err)
	}
	return dst
}

// copyTree copies the regular files and folders under from to to,
// keeping their modes and modification times (a sidecar file's mtime says
// until when it is kept).
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, fi.Mode().Perm())
		case !fi.Mode().IsRegular():
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, fi.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(target, fi.ModTime(), fi.ModTime())
	})
}

// dirState is every file of a directory with its mode and contents, to
// prove that an operation changed nothing.
func dirState(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			tb.Fatal(err)
		}
		var b []byte
		if fi.Mode().IsRegular() {
			if b, err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
				tb.Fatal(err)
			}
		}
		out[e.Name()] = fmt.Sprintf("%v %x", fi.Mode(), b)
	}
	return out
}

func requireNoChange(tb testing.TB, dir string, before map[string]string) {
	tb.Helper()
	after := dirState(tb, dir)
	for name, st := range before {
		if after[name] != st {
			tb.Errorf("%s changed", name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			tb.Errorf("%s was created", name)
		}
	}
}

// segRecord is a record found by scanning a segment file.
type segRecord struct {
	off, end int
	kind     segment.Kind
	key      string
	value    string // as stored: compressed if codec says so
	codec    segment.Codec
}

// scanFile returns the whole records of a segment file in order.
func scanFile(tb testing.TB, path string) []segRecord {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out []segRecord
	s := segment.NewScanner(data, segment.HeaderSize)
	for s.Next() {
		r := s.Record()
		out = append(out, segRecord{s.Offset(), s.Offset() + s.Size(), r.Kind, string(r.Key), string(r.Value), r.Codec})
	}
	if end, err := s.Stop(); err != nil {
		tb.Fatalf("%s: stop at %d: %v", path, end, err)
	}
	return out
}

// value makes a value for key that says whose it is, so that a value
// returned for the wrong key, or torn, shows.
func value(key string, n, size int) string {
	b := fmt.Appendf(make([]byte, 0, size), "%s=%d;", key, n)
	for len(b) < size {
		b = append(b, '0'+byte(len(b)%10))
	}
	return string(b)
}

// requireOpenRefused checks that Open of dir fails with want (what names the
// case in the message) and leaves every file of dir as it was.
func requireOpenRefused(tb testing.TB, dir string, want error, what string) {
	tb.Helper()
	requireOpenRefusedWith(tb, dir, smallOptions(), want, what)
}

// requireOpenRefusedWith is requireOpenRefused with the given options.
func requireOpenRefusedWith(tb testing.TB, dir string, opts engine.Options, want error, what string) {
	tb.Helper()
	before := dirState(tb, dir)
	c, err := engine.Open(dir, opts)
	if !errors.Is(err, want) {
		if err == nil {
			c.Close()
		}
		tb.Fatalf("Open %s: %v, want %v", what, err, want)
	}
	requireNoChange(tb, dir, before)
}
