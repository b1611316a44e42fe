package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/vfs"
	"github.com/kennel-cache/kennel/segment"
)

// This file is the bad-input part of the reliability suite: input the
// cache must refuse, and surroundings that refuse the cache (permission
// bits, a full disk), get a clear error and lose nothing.
//
//   - TestBadInputRefused: a table of refused opens and calls, each with
//     the error it must wrap, and a check that no file under the test's
//     folder changed.
//   - TestPermissionDenied: directories and files the user may not read or
//     write. Permission bits do not bind root, so a root run re-executes
//     the test binary as nobody for it.
//   - TestFullDisk: a cache on a small tmpfs (where mount is allowed),
//     filled until writes fail; TestFullDiskTornWrite, the part of it that
//     needs no mount, through a vfs.FaultFS.
//
// Run them with: go test -race -run 'TestBadInput|TestPermission|TestFullDisk' ./engine/

// ---- helpers ----

// treeState is dirState for a whole tree: every file, folder and symlink
// under root (root included) with its mode and its contents or target.
func treeState(tb testing.TB, root string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var b []byte
		switch {
		case fi.Mode().IsRegular():
			b, err = os.ReadFile(path)
		case fi.Mode()&fs.ModeSymlink != 0:
			var target string
			target, err = os.Readlink(path)
			b = []byte(target)
		}
		rel, _ := filepath.Rel(root, path)
		out[rel] = fmt.Sprintf("%v %x", fi.Mode(), b)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// requireTreeUnchanged checks that every file under root is as before.
func requireTreeUnchanged(tb testing.TB, root string, before map[string]string) {
	tb.Helper()
	after := treeState(tb, root)
	for name, st := range before {
		switch now, ok := after[name]; {
		case !ok:
			tb.Errorf("%s was removed", name)
		case now != st:
			tb.Errorf("%s changed", name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			tb.Errorf("%s was created", name)
		}
	}
}

// openErr opens path and returns the error; a cache that opens is closed,
// and reported as an error that matches nothing.
func openErr(path string, opts engine.Options) error {
	c, err := engine.Open(path, opts)
	if err == nil {
		c.Close()
		return errors.New("Open succeeded")
	}
	return err
}

// requireClearError checks that err wraps want and reads as kennel's,
// naming what it is about (each of names, if any).
func requireClearError(tb testing.TB, what string, err, want error, names ...string) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("%s: %v; want an error wrapping %q", what, err, want)
	}
	if !strings.HasPrefix(err.Error(), "kennel: ") {
		tb.Errorf("%s: error %q lacks the kennel prefix", what, err)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			tb.Errorf("%s: error %q does not name %s", what, err, n)
		}
	}
}

// noCreate is a GetOrCreate create function that must not run.
func noCreate(tb testing.TB) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		tb.Errorf("create ran on bad input")
		return []byte("created"), nil
	}
}

// writeSource writes a source file for SetFile and returns its path.
func writeSource(tb testing.TB, path string, data []byte, mode os.FileMode) string {
	tb.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		tb.Fatal(err)
	}
	// A fixed mtime, so that a file given back with another one shows.
	mtime := time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		tb.Fatal(err)
	}
	return path
}

// fileStamp is what SetFile must not change about its source: everything
// Lstat tells but the access time.
func fileStamp(tb testing.TB, path string) string {
	tb.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		tb.Fatalf("source file: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("mode %v size %d mtime %v ino %d uid %d", fi.Mode(), fi.Size(), fi.ModTime().UTC(), st.Ino, st.Uid)
}

// tempFiles returns the temporary files in a cache directory and its
// sidecar folder.
func tempFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	for _, d := range []string{dir, filepath.Join(dir, segment.SidecarDir)} {
		entries, err := os.ReadDir(d)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			if strings.Contains(e.Name(), segment.TempInfix) {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

// chmod changes path's mode for the rest of the test; the cleanup gives it
// back, so that the temporary folder can be removed.
func chmod(tb testing.TB, path string, mode os.FileMode) {
	tb.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.Chmod(path, fi.Mode().Perm()) })
}

func symlink(tb testing.TB, target, path string) {
	tb.Helper()
	if err := os.Symlink(target, path); err != nil {
		tb.Fatal(err)
	}
}

func mustChmod(tb testing.TB, path string, mode os.FileMode) {
	tb.Helper()
	if err := os.Chmod(path, mode); err != nil {
		tb.Fatal(err)
	}
}

// badOptions are the options of the caches bad input is thrown at: small
// limits to cross, and nothing in the background that could change a file
// while a case looks.
func badOptions() engine.Options {
	return engine.Options{SegmentSize: 4096, Sync: engine.SyncNever, ManualCompaction: true,
		MaxKeySize: 16, MaxValueSize: 8 << 10, InlineLimit: 1 << 10, CacheSize: 64 << 10}
}

// badFixture writes a closed cache into root/cache that holds inline values
// over a few segments and values in sidecar files, and returns its
// directory and contents.
func badFixture(tb testing.TB, root string, opts engine.Options) (string, map[string]string) {
	tb.Helper()
	dir := filepath.Join(root, "cache")
	c := openCache(tb, dir, opts)
	model := map[string]string{}
	for i := range 30 {
		k := fmt.Sprintf("k%02d", i)
		model[k] = value(k, i, 200)
		mustSet(tb, c, k, model[k])
	}
	for i := range 3 {
		k := fmt.Sprintf("big%d", i)
		model[k] = value(k, i, 3000)
		mustSet(tb, c, k, model[k])
	}
	mustClose(tb, c)
	return dir, model
}

// firstSegment returns the path of the oldest segment of a cache
// directory: sealed, with a hint.
func firstSegment(tb testing.TB, dir string) string {
	tb.Helper()
	segs := files(tb, dir, segment.Suffix)
	if len(segs) < 2 {
		tb.Fatalf("fixture has %d segments, want several", len(segs))
	}
	return filepath.Join(dir, segs[0])
}

// ---- the table ----

// TestBadInputRefused throws bad input at a cache and at Open: each case
// must fail with the error it names, leave every file under the test's
// folder as it was (the cache's, and the sources of SetFile), and a cache
// it was thrown at must still hold everything, then and after a reopen.
// It gathers what TestBadInput, TestClosed, TestInvalidOptions and the
// Open tests of engine_test.go leave out.
func TestBadInputRefused(t *testing.T) {
	// What a case runs against: a fixture directory in root, and the cache
	// the case asks for open on it.
	type env struct {
		root, dir string
		model     map[string]string
		c         *engine.Cache
		src       string // a readable source file for SetFile, in root
		huge      string // a source file larger than the budget, in root
	}
	const (
		none     = iota // the case opens the directory itself
		open            // a cache open read-write
		readOnly        // a cache open with Options.ReadOnly
		closed          // a cache closed before the case runs
	)
	long := []byte(strings.Repeat("k", badOptions().MaxKeySize+1))
	key := []byte("k00")
	withOpts := func(f func(*engine.Options)) engine.Options {
		o := badOptions()
		f(&o)
		return o
	}
	ro := withOpts(func(o *engine.Options) { o.ReadOnly = true })
	// replaceWithSymlink moves path out of the directory and leaves a
	// symlink to it in its place.
	replaceWithSymlink := func(t *testing.T, e *env, path string) {
		t.Helper()
		moved := filepath.Join(e.root, "moved-"+filepath.Base(path))
		if err := os.Rename(path, moved); err != nil {
			t.Fatal(err)
		}
		symlink(t, moved, path)
	}
	batch := func(add func(*engine.Batch)) *engine.Batch {
		b := new(engine.Batch)
		b.Set([]byte("b-first"), []byte("v"))
		add(b)
		b.Set([]byte("b-last"), []byte("v"))
		return b
	}

	tests := []struct {
		name  string
		cache int
		setup func(t *testing.T, e *env)
		want  error
		call  func(t *testing.T, e *env) error
	}{
		// The directory.
		{name: "dir is a regular file", want: engine.ErrNotKennelDir,
			setup: func(t *testing.T, e *env) { writeSource(t, filepath.Join(e.root, "file"), []byte("data"), 0o600) },
			call:  func(t *testing.T, e *env) error { return openErr(filepath.Join(e.root, "file"), badOptions()) }},
		{name: "dir is a regular file, read-only", want: engine.ErrNotKennelDir,
			setup: func(t *testing.T, e *env) { writeSource(t, filepath.Join(e.root, "file"), []byte("data"), 0o600) },
			call:  func(t *testing.T, e *env) error { return openErr(filepath.Join(e.root, "file"), ro) }},
		{name: "dir under a regular file", want: syscall.ENOTDIR,
			setup: func(t *testing.T, e *env) { writeSource(t, filepath.Join(e.root, "file"), []byte("data"), 0o600) },
			call:  func(t *testing.T, e *env) error { return openErr(filepath.Join(e.root, "file", "cache"), badOptions()) }},
		// A symlink is refused rather than followed, target untouched.
		{name: "dir is a symlink to a cache", want: engine.ErrNotKennelDir,
			setup: func(t *testing.T, e *env) { symlink(t, e.dir, filepath.Join(e.root, "link")) },
			call:  func(t *testing.T, e *env) error { return openErr(filepath.Join(e.root, "link"), badOptions()) }},
		{name: "dir is a symlink to a cache, read-only", want: engine.ErrNotKennelDir,
			setup: func(t *testing.T, e *env) { symlink(t, e.dir, filepath.Join(e.root, "link")) },
			call:  func(t *testing.T, e *env) error { return openErr(filepath.Join(e.root, "link"), ro) }},
		{name: "dir is a dangling symlink", want: engine.ErrNotKennelDir,
			setup: func(t *testing.T, e *env) {
				symlink(t, filepath.Join(e.root, "nowhere"), filepath.Join(e.root, "link"))
			},
			call: func(t *testing.T, e *env) error { return openErr(filepath.Join(e.root, "link"), badOptions()) }},
		{name: "missing dir, read-only", want: fs.ErrNotExist,
			call: func(t *testing.T, e *env) error { return openErr(filepath.Join(e.root, "missing"), ro) }},
		{name: "empty dir, read-only", want: engine.ErrNotKennelDir,
			setup: func(t *testing.T, e *env) {
				if err := os.Mkdir(filepath.Join(e.root, "empty"), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			call: func(t *testing.T, e *env) error { return openErr(filepath.Join(e.root, "empty"), ro) }},
		{name: "newer format, read-only", want: engine.ErrIncompatible,
			setup: func(t *testing.T, e *env) {
				writeSource(t, filepath.Join(e.dir, "KENNEL"), []byte("kennel format 5\n"), 0o600)
			},
			call: func(t *testing.T, e *env) error { return openErr(e.dir, ro) }},
		{name: "newer segment, read-only", want: engine.ErrIncompatible,
			setup: func(t *testing.T, e *env) {
				newer := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion + 1, ID: 99})
				writeSource(t, filepath.Join(e.dir, segment.FileName(99)), newer, 0o600)
			},
			call: func(t *testing.T, e *env) error { return openErr(e.dir, ro) }},

		// Files of the directory replaced by symlinks: kennel opens its
		// files without following links, so a link is refused (or, for a
		// hint, ignored) and what it points to is never written.
		{name: "segment is a symlink", want: syscall.ELOOP,
			setup: func(t *testing.T, e *env) { replaceWithSymlink(t, e, firstSegment(t, e.dir)) },
			call:  func(t *testing.T, e *env) error { return openErr(e.dir, badOptions()) }},
		{name: "segment is a symlink, read-only", want: syscall.ELOOP,
			setup: func(t *testing.T, e *env) { replaceWithSymlink(t, e, firstSegment(t, e.dir)) },
			call:  func(t *testing.T, e *env) error { return openErr(e.dir, ro) }},
		{name: "lock file is a symlink", want: syscall.ELOOP,
			setup: func(t *testing.T, e *env) { replaceWithSymlink(t, e, filepath.Join(e.dir, "lock")) },
			call:  func(t *testing.T, e *env) error { return openErr(e.dir, badOptions()) }},
		{name: "state file is a symlink", want: syscall.ELOOP,
			setup: func(t *testing.T, e *env) { replaceWithSymlink(t, e, filepath.Join(e.dir, "state")) },
			call:  func(t *testing.T, e *env) error { return openErr(e.dir, badOptions()) }},
		{name: "sidecar folder is a symlink", want: engine.ErrNotKennelDir,
			setup: func(t *testing.T, e *env) { replaceWithSymlink(t, e, filepath.Join(e.dir, segment.SidecarDir)) },
			call:  func(t *testing.T, e *env) error { return openErr(e.dir, badOptions()) }},

		// Options TestInvalidOptions leaves out, on a directory in use.
		{name: "Compression unknown", want: engine.ErrInvalidOptions,
			call: func(t *testing.T, e *env) error {
				return openErr(e.dir, withOpts(func(o *engine.Options) { o.Compression = 7 }))
			}},
		{name: "CompressMinSize negative", want: engine.ErrInvalidOptions,
			call: func(t *testing.T, e *env) error {
				return openErr(e.dir, withOpts(func(o *engine.Options) { o.CompressMinSize = -1 }))
			}},
		{name: "FreshTime negative", want: engine.ErrInvalidOptions,
			call: func(t *testing.T, e *env) error {
				return openErr(e.dir, withOpts(func(o *engine.Options) { o.FreshTime = -time.Second }))
			}},
		{name: "GraceTime negative", want: engine.ErrInvalidOptions,
			call: func(t *testing.T, e *env) error {
				return openErr(e.dir, withOpts(func(o *engine.Options) { o.GraceTime = -time.Second }))
			}},
		{name: "ReadOnly and Exclusive", want: engine.ErrInvalidOptions,
			call: func(t *testing.T, e *env) error {
				return openErr(e.dir, withOpts(func(o *engine.Options) { o.ReadOnly, o.Exclusive = true, true }))
			}},

		// A key over MaxKeySize, for every call that takes a key.
		{name: "long key: Set", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error { return e.c.Set(long, []byte("v")) }},
		{name: "long key: SetWithTTL", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error { return e.c.SetWithTTL(long, []byte("v"), time.Hour) }},
		{name: "long key: SetReader", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error { return e.c.SetReader(long, strings.NewReader("v")) }},
		{name: "long key: SetFile", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error { return e.c.SetFile(long, e.src) }},
		{name: "long key: SetFile Movable", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error { return e.c.SetFile(long, e.src, engine.Movable()) }},
		{name: "long key: Batch Set", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error {
				return e.c.Write(batch(func(b *engine.Batch) { b.Set(long, []byte("v")) }))
			}},
		{name: "long key: Batch SetWithTTL", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error {
				return e.c.Write(batch(func(b *engine.Batch) { b.SetWithTTL(long, []byte("v"), time.Hour) }))
			}},
		{name: "long key: Batch Delete", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error { return e.c.Write(batch(func(b *engine.Batch) { b.Delete(long) })) }},
		{name: "long key: GetOrCreate", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error {
				_, err := e.c.GetOrCreate(context.Background(), long, noCreate(t))
				return err
			}},
		{name: "long key: Delete", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error { return e.c.Delete(long) }},
		{name: "long key: Lock", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error { _, err := e.c.Lock(context.Background(), long); return err }},
		{name: "long key: Open", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error { _, err := e.c.Open(long); return err }},
		{name: "long key: Stat", cache: open, want: engine.ErrKeyTooLarge,
			call: func(t *testing.T, e *env) error { _, err := e.c.Stat(long); return err }},
		// An empty key, where TestBadInput and the GetOrCreate tests do not
		// try one.
		{name: "empty key: SetReader", cache: open, want: engine.ErrEmptyKey,
			call: func(t *testing.T, e *env) error { return e.c.SetReader(nil, strings.NewReader("v")) }},
		{name: "empty key: SetFile", cache: open, want: engine.ErrEmptyKey,
			call: func(t *testing.T, e *env) error { return e.c.SetFile(nil, e.src, engine.Movable()) }},
		{name: "empty key: Open", cache: open, want: engine.ErrEmptyKey,
			call: func(t *testing.T, e *env) error { _, err := e.c.Open(nil); return err }},
		{name: "empty key: Stat", cache: open, want: engine.ErrEmptyKey,
			call: func(t *testing.T, e *env) error { _, err := e.c.Stat([]byte{}); return err }},

		// A value over its bound.
		{name: "big value: Batch", cache: open, want: engine.ErrValueTooLarge,
			call: func(t *testing.T, e *env) error {
				big := make([]byte, badOptions().MaxValueSize+1)
				return e.c.Write(batch(func(b *engine.Batch) { b.Set([]byte("k00"), big) }))
			}},
		{name: "big value: GetOrCreate", cache: open, want: engine.ErrValueTooLarge,
			call: func(t *testing.T, e *env) error {
				_, err := e.c.GetOrCreate(context.Background(), []byte("new"), func(context.Context) ([]byte, error) {
					return make([]byte, badOptions().MaxValueSize+1), nil
				})
				return err
			}},
		{name: "big value: SetReader past the budget", cache: open, want: engine.ErrValueTooLarge,
			call: func(t *testing.T, e *env) error {
				return e.c.SetReader(key, bytes.NewReader(make([]byte, badOptions().CacheSize+1)))
			}},
		{name: "big value: SetFile past the budget", cache: open, want: engine.ErrValueTooLarge,
			call: func(t *testing.T, e *env) error { return e.c.SetFile(key, e.huge) }},
		{name: "big value: SetFile Movable past the budget", cache: open, want: engine.ErrValueTooLarge,
			call: func(t *testing.T, e *env) error { return e.c.SetFile(key, e.huge, engine.Movable()) }},

		// A negative TTL where the TTL tests do not try one.
		{name: "negative ttl: SetReader", cache: open, want: engine.ErrInvalidTTL,
			call: func(t *testing.T, e *env) error {
				return e.c.SetReader(key, strings.NewReader("v"), engine.WithTTL(-time.Second))
			}},
		{name: "negative ttl: SetFile", cache: open, want: engine.ErrInvalidTTL,
			call: func(t *testing.T, e *env) error { return e.c.SetFile(key, e.src, engine.WithTTL(-time.Second)) }},
		{name: "negative ttl: SetFile Movable", cache: open, want: engine.ErrInvalidTTL,
			call: func(t *testing.T, e *env) error {
				return e.c.SetFile(key, e.src, engine.Movable(), engine.WithTTL(-time.Nanosecond))
			}},
		{name: "negative grace: GetOrCreate", cache: open, want: engine.ErrInvalidTTL,
			call: func(t *testing.T, e *env) error {
				_, err := e.c.GetOrCreate(context.Background(), []byte("new"), noCreate(t), engine.Grace(-time.Second))
				return err
			}},

		// Writes to a read-only cache.
		{name: "read-only: Set", cache: readOnly, want: engine.ErrReadOnly,
			call: func(t *testing.T, e *env) error { return e.c.Set(key, []byte("v")) }},
		{name: "read-only: Delete", cache: readOnly, want: engine.ErrReadOnly,
			call: func(t *testing.T, e *env) error { return e.c.Delete(key) }},
		{name: "read-only: Batch", cache: readOnly, want: engine.ErrReadOnly,
			call: func(t *testing.T, e *env) error { return e.c.Write(batch(func(*engine.Batch) {})) }},
		{name: "read-only: SetFile", cache: readOnly, want: engine.ErrReadOnly,
			call: func(t *testing.T, e *env) error { return e.c.SetFile(key, e.src) }},
		{name: "read-only: SetFile Movable", cache: readOnly, want: engine.ErrReadOnly,
			call: func(t *testing.T, e *env) error { return e.c.SetFile(key, e.src, engine.Movable()) }},
		{name: "read-only: Compact", cache: readOnly, want: engine.ErrReadOnly,
			call: func(t *testing.T, e *env) error { return e.c.Compact() }},
		{name: "read-only: Lock", cache: readOnly, want: engine.ErrReadOnly,
			call: func(t *testing.T, e *env) error { _, err := e.c.Lock(context.Background(), key); return err }},

		// Every call on a closed cache.
		{name: "closed: Get", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { _, err := e.c.Get(key); return err }},
		{name: "closed: Get of a sidecar value", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { _, err := e.c.Get([]byte("big0")); return err }},
		{name: "closed: Open", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { _, err := e.c.Open([]byte("big0")); return err }},
		{name: "closed: Stat", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { _, err := e.c.Stat(key); return err }},
		{name: "closed: Set", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { return e.c.Set(key, []byte("v")) }},
		{name: "closed: Set of a sidecar value", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { return e.c.Set(key, make([]byte, 2<<10)) }},
		{name: "closed: SetReader", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { return e.c.SetReader(key, strings.NewReader("v")) }},
		{name: "closed: SetFile", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { return e.c.SetFile(key, e.src) }},
		{name: "closed: SetFile Movable", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { return e.c.SetFile(key, e.src, engine.Movable()) }},
		{name: "closed: Batch with a sidecar value", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error {
				return e.c.Write(batch(func(b *engine.Batch) { b.Set([]byte("b-big"), make([]byte, 2<<10)) }))
			}},
		{name: "closed: Delete", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { return e.c.Delete(key) }},
		{name: "closed: GetOrCreate", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error {
				_, err := e.c.GetOrCreate(context.Background(), []byte("new"), noCreate(t))
				return err
			}},
		{name: "closed: Lock", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { _, err := e.c.Lock(context.Background(), key); return err }},
		{name: "closed: Compact", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { return e.c.Compact() }},
		{name: "closed: Sync", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { return e.c.Sync() }},
		{name: "closed: Scan", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error {
				return e.c.Scan(nil, func(k, v []byte) error { t.Errorf("Scan yielded %q after Close", k); return nil })
			}},
		{name: "closed: Keys", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error {
				return e.c.Keys(nil, func(ki engine.KeyInfo) error { t.Errorf("Keys yielded %q after Close", ki.Key); return nil })
			}},
		{name: "closed: Segments", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { _, err := e.c.Segments(); return err }},
		{name: "closed: Close", cache: closed, want: engine.ErrClosed,
			call: func(t *testing.T, e *env) error { return e.c.Close() }},
	}
	template, model := badFixture(t, t.TempDir(), badOptions())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			e := &env{root: root, dir: filepath.Join(root, "cache"), model: model}
			if err := os.CopyFS(e.dir, os.DirFS(template)); err != nil {
				t.Fatal(err)
			}
			e.src = writeSource(t, filepath.Join(root, "source"), randomBytes(1, 3000), 0o640)
			e.huge = writeSource(t, filepath.Join(root, "huge"), randomBytes(2, int(badOptions().CacheSize)+1), 0o640)
			switch tt.cache {
			case open:
				e.c = openCache(t, e.dir, badOptions())
			case readOnly:
				e.c = openCache(t, e.dir, ro)
			case closed:
				e.c = openCache(t, e.dir, badOptions())
				mustClose(t, e.c)
			}
			if tt.setup != nil {
				tt.setup(t, e)
			}
			before := treeState(t, root)
			err := tt.call(t, e)
			requireClearError(t, tt.name, err, tt.want)
			requireTreeUnchanged(t, root, before)
			if tt.cache == open || tt.cache == readOnly {
				checkModel(t, e.c, e.model)
				mustClose(t, e.c)
			}
			if tt.cache != none {
				checkModel(t, openCache(t, e.dir, badOptions()), e.model)
			}
		})
	}

	// A hint replaced by a symlink (here to another segment's hint, which
	// would misplace every key) is not followed: the segment is scanned,
	// and the link's target is left as it was.
	t.Run("hint is a symlink", func(t *testing.T) {
		root := t.TempDir()
		dir, model := badFixture(t, root, badOptions())
		hints := files(t, dir, segment.HintSuffix)
		if len(hints) < 2 {
			t.Fatalf("fixture has %d hints, want several", len(hints))
		}
		other := filepath.Join(root, "other.hint")
		if err := os.Rename(filepath.Join(dir, hints[1]), other); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, hints[0])); err != nil {
			t.Fatal(err)
		}
		symlink(t, other, filepath.Join(dir, hints[0]))
		before := treeState(t, root)
		checkModel(t, openCache(t, dir, ro), model)
		requireTreeUnchanged(t, root, before)
		c := openCache(t, dir, badOptions())
		checkModel(t, c, model)
		mustClose(t, c)
		if now := treeState(t, root)["other.hint"]; now != before["other.hint"] {
			t.Errorf("the symlinked hint's target changed")
		}
	})

	// Bounds that are not refusals.
	t.Run("SetReader past MaxValueSize within the budget", func(t *testing.T) {
		// Streamed values are bounded by the budget alone (Options).
		c := openCache(t, t.TempDir(), badOptions())
		data := randomBytes(3, badOptions().MaxValueSize+1)
		if err := c.SetReader(key, bytes.NewReader(data)); err != nil {
			t.Fatalf("SetReader of %d bytes within a budget of %d: %v", len(data), badOptions().CacheSize, err)
		}
		wantBytes(t, c, string(key), data)
	})
	// What a closed cache leaves its callers: handles opened before Close
	// read their values to the end, and a key's lock reports the close.
	t.Run("handles and locks across Close", func(t *testing.T) {
		dir, model := badFixture(t, t.TempDir(), badOptions())
		c := openCache(t, dir, badOptions())
		var handles []*engine.Handle
		for _, k := range []string{"k00", "big0"} {
			h, err := c.Open([]byte(k))
			if err != nil {
				t.Fatal(err)
			}
			handles = append(handles, h)
		}
		lock, err := c.Lock(context.Background(), []byte("k00"))
		if err != nil {
			t.Fatal(err)
		}
		mustClose(t, c)
		for i, k := range []string{"k00", "big0"} {
			got, err := io.ReadAll(handles[i])
			if err != nil || string(got) != model[k] {
				t.Errorf("handle of %s read after Close: %.20q (%d bytes), %v; want its %d bytes", k, got, len(got), err, len(model[k]))
			}
			if err := handles[i].Close(); err != nil {
				t.Errorf("closing the handle of %s after Close: %v", k, err)
			}
		}
		if err := lock.Unlock(); !errors.Is(err, engine.ErrClosed) {
			t.Errorf("Unlock after Close: %v, want ErrClosed (Close released the lock)", err)
		}
		// The lock is free for the next user of the directory.
		c = openCache(t, dir, badOptions())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l, err := c.Lock(ctx, []byte("k00"))
		if err != nil {
			t.Fatalf("Lock after the holder's cache closed: %v", err)
		}
		l.Unlock()
	})
}

// ---- permissions ----

// nobody is the user TestPermissionDenied runs as when started as root.
const nobody = 65534

// permChildEnv marks the re-executed test binary of TestPermissionDenied;
// permForeignEnv names a file of another user (root) in it.
const (
	permChildEnv   = "KENNEL_BADINPUT_PERM_CHILD"
	permForeignEnv = "KENNEL_BADINPUT_FOREIGN_FILE"
)

// TestPermissionDenied: a directory or file the user may not read or write
// gets a clear error naming it, and a refused call changes nothing; what
// may still be read is read, and a value that cannot be is an error, never
// a wrong value. Root ignores permission bits, so a root run re-executes
// this test as nobody (the cases run in the child; its output is logged).
func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		permissionCases(t)
		return
	}
	if os.Getenv(permChildEnv) != "" {
		t.Fatal("the child meant to run as nobody runs as root")
	}
	// Everything the child needs must be reachable by nobody: the test
	// binary (go test builds it in a 0700 folder) and its temporary
	// folder go into a folder of our own.
	base, err := os.MkdirTemp("", "kennel-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	mustChmod(t, base, 0o755)
	for d := filepath.Dir(base); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("%s is not searchable by other users: nobody cannot reach a folder under it", d)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	bin := filepath.Join(base, "engine.test")
	copyExecutable(t, os.Args[0], bin)
	tmp := filepath.Join(base, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	foreign := writeSource(t, filepath.Join(base, "foreign"), randomBytes(4, 5000), 0o600)
	foreignBefore := fileStamp(t, foreign)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestPermissionDenied$", "-test.v", "-test.count=1")
	cmd.Dir = tmp
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "TMPDIR" && name != "GOCOVERDIR" && name != "GORACE" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp, permChildEnv+"=1", permForeignEnv+"="+foreign,
		strings.TrimSpace("GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=20"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skipf("cannot switch to uid %d: %v", nobody, err)
		}
		t.Fatalf("start the test binary as uid %d: %v", nobody, err)
	}
	err = cmd.Wait()
	t.Logf("the cases, run as uid %d:\n%s", nobody, out.String())
	switch {
	case err != nil:
		t.Fatalf("the cases failed as uid %d: %v", nobody, err)
	case strings.Contains(out.String(), "--- SKIP: TestPermissionDenied "):
		t.Skipf("the cases skipped as uid %d (see the log)", nobody)
	case !strings.Contains(out.String(), "--- PASS: TestPermissionDenied "):
		t.Fatalf("the child ran no permission case")
	}
	if now := fileStamp(t, foreign); now != foreignBefore {
		t.Errorf("another user's file given to SetFile changed: %s, was %s", now, foreignBefore)
	}
	if got, _ := os.ReadFile(foreign); !bytes.Equal(got, randomBytes(4, 5000)) {
		t.Errorf("another user's file given to SetFile changed its bytes")
	}
}

func copyExecutable(tb testing.TB, from, to string) {
	tb.Helper()
	src, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		tb.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		tb.Fatal(err)
	}
}

// permOptions are the options of the permission cases' caches.
func permOptions() engine.Options {
	return engine.Options{SegmentSize: 4096, Sync: engine.SyncNever, ManualCompaction: true,
		InlineLimit: 1 << 10, SidecarGrace: -1}
}

// permissionCases runs the cases as the current user, who must not be
// root.
func permissionCases(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(probe); err == nil {
		t.Skipf("permission bits do not bind uid %d (CAP_DAC_OVERRIDE?)", os.Geteuid())
	}
	opts, ro := permOptions(), permOptions()
	ro.ReadOnly = true

	// A directory the user may not even search: Open fails, read-write
	// or read-only, naming it and the permission, and changes nothing.
	t.Run("directory without access", func(t *testing.T) {
		root := t.TempDir()
		dir, model := badFixture(t, root, opts)
		before := treeState(t, root)
		chmod(t, dir, 0)
		for _, o := range []engine.Options{opts, ro} {
			err := openErr(dir, o)
			requireClearError(t, fmt.Sprintf("Open (read-only %v)", o.ReadOnly), err, fs.ErrPermission, dir)
			if errors.Is(err, engine.ErrNotKennelDir) {
				t.Errorf("Open: %v: a directory it may not read is not a foreign one", err)
			}
		}
		mustChmod(t, dir, 0o700)
		requireTreeUnchanged(t, root, before)
		checkModel(t, openCache(t, dir, opts), model)
	})

	// A new directory under a folder the user may not write.
	t.Run("parent not writable", func(t *testing.T) {
		parent := t.TempDir()
		chmod(t, parent, 0o500)
		dir := filepath.Join(parent, "cache")
		requireClearError(t, "Open", openErr(dir, opts), fs.ErrPermission, dir)
		if entries, _ := os.ReadDir(parent); len(entries) != 0 {
			t.Errorf("a refused Open left %d files", len(entries))
		}
	})

	// A directory (and its sidecar folder) the user may read but not
	// write: a read-write Open is refused, clearly, before it writes
	// anything; a read-only one reads every value.
	t.Run("directory read-only", func(t *testing.T) {
		root := t.TempDir()
		dir, model := badFixture(t, root, opts)
		before := treeState(t, root)
		chmod(t, dir, 0o500)
		chmod(t, filepath.Join(dir, segment.SidecarDir), 0o500)
		c, err := engine.Open(dir, opts)
		if err == nil {
			// What it does if it opens anyway: it must not claim writes
			// it cannot make.
			werr := c.Set([]byte("new"), []byte("v"))
			cerr := c.Close()
			t.Errorf("Open read-write of a directory it may not write succeeded (a Set then: %v; Close: %v)", werr, cerr)
		} else {
			requireClearError(t, "Open read-write", err, fs.ErrPermission, dir)
		}
		r := openCache(t, dir, ro)
		checkModel(t, r, model)
		requireClearError(t, "Set on the read-only open", r.Set([]byte("new"), []byte("v")), engine.ErrReadOnly)
		mustClose(t, r)
		mustChmod(t, filepath.Join(dir, segment.SidecarDir), 0o700)
		mustChmod(t, dir, 0o700)
		requireTreeUnchanged(t, root, before)
	})

	// A sealed segment the user may not read: Open fails naming it (it
	// cannot skip the segment: an older value of a key it overwrote would
	// come back). A cache that had it open before reads on (its mapping).
	t.Run("segment unreadable", func(t *testing.T) {
		root := t.TempDir()
		dir, model := badFixture(t, root, opts)
		c := openCache(t, dir, opts)
		before := treeState(t, root)
		seg := firstSegment(t, dir)
		chmod(t, seg, 0)
		for _, o := range []engine.Options{opts, ro} {
			requireClearError(t, fmt.Sprintf("Open (read-only %v)", o.ReadOnly), openErr(dir, o), fs.ErrPermission, seg)
		}
		checkModel(t, c, model)
		mustClose(t, c)
		mustChmod(t, seg, 0o600)
		requireTreeUnchanged(t, root, before)
		checkModel(t, openCache(t, dir, opts), model)
	})

	// A hint the user may not read is no hint: the segment is scanned.
	t.Run("hint unreadable", func(t *testing.T) {
		dir, model := badFixture(t, t.TempDir(), opts)
		hint := strings.TrimSuffix(firstSegment(t, dir), segment.Suffix) + segment.HintSuffix
		chmod(t, hint, 0)
		checkModel(t, openCache(t, dir, ro), model)
		checkModel(t, openCache(t, dir, opts), model)
	})

	// A sidecar file the user may not read: its value is an error, never
	// another value; every other key reads; nothing deletes the file, and
	// once readable again the value is back.
	t.Run("sidecar file unreadable", func(t *testing.T) {
		dir, model := badFixture(t, t.TempDir(), opts)
		c := openCache(t, dir, opts)
		h, err := c.Open([]byte("big1"))
		if err != nil {
			t.Fatal(err)
		}
		path := h.File().Name()
		h.Close()
		chmod(t, path, 0)
		requireUnreadable := func(c *engine.Cache) {
			t.Helper()
			v, err := c.Get([]byte("big1"))
			if err == nil || v != nil {
				t.Fatalf("Get of a value whose file is unreadable: %.20q, %v", v, err)
			}
			// A file it may not read is not damage: no ErrCorrupt, no
			// corruption counted or logged.
			requireClearError(t, "Get of a value whose file is unreadable", err, fs.ErrPermission, path)
			if errors.Is(err, engine.ErrCorrupt) {
				t.Errorf("Get of a value whose file is unreadable: %v; want no ErrCorrupt", err)
			}
			if n := c.Stats().Corruptions; n != 0 {
				t.Errorf("an unreadable file counted as %d corruptions", n)
			}
			if h, err := c.Open([]byte("big1")); err == nil {
				h.Close()
				t.Errorf("Open of a value whose file is unreadable succeeded")
			}
			for k, v := range model {
				if k != "big1" {
					wantValue(t, c, k, v)
				}
			}
			err = c.Scan(nil, func(k, v []byte) error {
				if string(v) != model[string(k)] {
					t.Errorf("Scan yielded %s = %.20q, want %.20q", k, v, model[string(k)])
				}
				return nil
			})
			if err == nil {
				t.Errorf("Scan over a value whose file is unreadable reported nothing")
			}
		}
		requireUnreadable(c)
		// A compaction keeps the value (its record names the file).
		if err := c.Compact(); err != nil {
			t.Fatalf("Compact: %v", err)
		}
		requireUnreadable(c)
		mustClose(t, c)
		requireUnreadable(openCache(t, dir, ro))
		mustChmod(t, path, 0o600)
		checkModel(t, openCache(t, dir, opts), model)
	})

	// A sidecar folder the user may not read: the first Open read-write
	// refuses it, naming it; a read-only Open reads the inline values, and
	// the values in sidecar files are errors. A cache that had it open
	// before gets errors for sidecar values and writes, inline ones work.
	t.Run("sidecar folder unreadable", func(t *testing.T) {
		root := t.TempDir()
		dir, model := badFixture(t, root, opts)
		sidecars := filepath.Join(dir, segment.SidecarDir)
		c := openCache(t, dir, opts)
		chmod(t, sidecars, 0)
		requireSidecarsFail := func(c *engine.Cache) {
			t.Helper()
			for k, v := range model {
				got, err := c.Get([]byte(k))
				switch {
				case !strings.HasPrefix(k, "big"):
					if err != nil || string(got) != v {
						t.Errorf("Get(%s) = %.20q, %v; want its value", k, got, err)
					}
				case err == nil || !strings.Contains(err.Error(), "permission denied"):
					t.Errorf("Get(%s) in an unreadable folder = %.20q, %v; want an error saying permission denied", k, got, err)
				}
			}
		}
		requireSidecarsFail(c)
		requireClearError(t, "Set of a sidecar value", c.Set([]byte("big9"), make([]byte, 2<<10)), fs.ErrPermission, sidecars)
		requireClearError(t, "SetReader", c.SetReader([]byte("big9"), strings.NewReader("v")), fs.ErrPermission, sidecars)
		mustSet(t, c, "new", "inline")
		model["new"] = "inline"
		mustClose(t, c)

		mustChmod(t, sidecars, 0o700)
		before := treeState(t, root)
		mustChmod(t, sidecars, 0)
		err := openErr(dir, opts)
		requireClearError(t, "Open read-write", err, fs.ErrPermission, sidecars)
		requireSidecarsFail(openCache(t, dir, ro))
		mustChmod(t, sidecars, 0o700)
		requireTreeUnchanged(t, root, before)
		checkModel(t, openCache(t, dir, opts), model)
	})

	// A sidecar folder the user may write but not read, so that it cannot
	// be synced (opening it for fsync needs read): the name of a file
	// written into it cannot be made durable, and kennel must say so, in
	// the write or else in the Sync or Close after it, under every sync
	// policy; never claim it durable. A write that fails stores nothing.
	t.Run("sync fails", func(t *testing.T) {
		dir, model := badFixture(t, t.TempDir(), opts)
		sidecars := filepath.Join(dir, segment.SidecarDir)
		for i, policy := range []engine.SyncPolicy{engine.SyncNever, engine.SyncInterval, engine.SyncAlways} {
			for _, viaClose := range []bool{false, true} {
				o := opts
				o.Sync, o.SyncInterval = policy, time.Hour
				c := openCache(t, dir, o)
				chmod(t, sidecars, 0o300)
				k := fmt.Sprintf("big%d%v", i, viaClose)
				v := value(k, i, 3000)
				what := fmt.Sprintf("a sidecar write under Sync %v", policy)
				if err := c.Set([]byte(k), []byte(v)); err != nil {
					requireClearError(t, what, err, fs.ErrPermission, sidecars)
					wantMissing(t, c, k)
					t.Logf("%s: %v", what, err)
				} else {
					// Stored, and so it must stay; but durable it is not.
					model[k] = v
					var err error
					if viaClose {
						what, err = "Close after "+what, c.Close()
					} else {
						what, err = "Sync after "+what, c.Sync()
					}
					requireClearError(t, what, err, fs.ErrPermission, sidecars)
				}
				c.Close()
				mustChmod(t, sidecars, 0o700)
			}
		}
		if tmp := tempFiles(t, dir); len(tmp) != 0 {
			t.Errorf("temporary files left: %v", tmp)
		}
		c := openCache(t, dir, opts)
		checkModel(t, c, model)
		if files := sidecarFiles(t, dir); len(files) != len(model)-30 {
			t.Errorf("the sidecar folder holds %d files for %d sidecar values", len(files), len(model)-30)
		}
	})

	// SetFile of a file the user may not read: a clear error naming it,
	// nothing stored, and the file as it was (also when it was moved in
	// to be adopted, and given back).
	t.Run("SetFile unreadable source", func(t *testing.T) {
		dir, model := badFixture(t, t.TempDir(), opts)
		c := openCache(t, dir, opts)
		src := t.TempDir()
		own := writeSource(t, filepath.Join(src, "own"), randomBytes(5, 5000), 0o600)
		mustChmod(t, own, 0)
		sources := []string{own}
		if foreign := os.Getenv(permForeignEnv); foreign != "" {
			sources = append(sources, foreign) // root's, mode 0600
		}
		for _, path := range sources {
			stamp := fileStamp(t, path)
			for _, movable := range []bool{false, true} {
				var opt []engine.SetOption
				if movable {
					opt = append(opt, engine.Movable())
				}
				err := c.SetFile([]byte("file"), path, opt...)
				requireClearError(t, fmt.Sprintf("SetFile(%s, movable %v)", filepath.Base(path), movable), err, fs.ErrPermission, path)
				wantMissing(t, c, "file")
				if now := fileStamp(t, path); now != stamp {
					t.Errorf("SetFile(%s, movable %v) changed the source: %s, was %s", filepath.Base(path), movable, now, stamp)
				}
			}
		}
		mustChmod(t, own, 0o600)
		if got, _ := os.ReadFile(own); !bytes.Equal(got, randomBytes(5, 5000)) {
			t.Errorf("the source's bytes changed")
		}

		// A readable file in a folder the user may not write cannot be
		// moved: it is copied, or refused clearly, and stays.
		ro := t.TempDir()
		path := writeSource(t, filepath.Join(ro, "file"), randomBytes(6, 5000), 0o600)
		chmod(t, ro, 0o500)
		stamp := fileStamp(t, path)
		if err := c.SetFile([]byte("file"), path, engine.Movable()); err != nil {
			requireClearError(t, "SetFile Movable from a folder not writable", err, fs.ErrPermission, path)
			t.Logf("SetFile Movable of a file that cannot be moved: %v", err)
		} else {
			model["file"] = string(randomBytes(6, 5000))
		}
		if now := fileStamp(t, path); now != stamp {
			t.Errorf("SetFile Movable changed a source it could not move: %s, was %s", now, stamp)
		}
		checkModel(t, c, model)
		if files := sidecarFiles(t, dir); len(files) != len(model)-30 {
			t.Errorf("the sidecar folder holds %d files for %d sidecar values", len(files), len(model)-30)
		}
	})
}

// ---- a full disk ----

// mountTmpfs mounts a tmpfs of size bytes on a new folder, for the rest of
// the test, or skips the test where mounting is not allowed.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	mnt, err := os.MkdirTemp("", "kennel-full-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(mnt) })
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", mnt).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s): a full disk is tested where mount is allowed", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// fillFile writes zeros to path until the disk is full.
func fillFile(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				tb.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

// requireENOSPC checks that a write failed for want of space, and says so.
func requireENOSPC(tb testing.TB, what string, err error) {
	tb.Helper()
	requireClearError(tb, what, err, syscall.ENOSPC)
}

// fullModel is what a cache on a full disk must hold: the acknowledged
// writes, and for a batch that failed the writes that may have landed (a
// prefix of it, in order).
type fullModel struct {
	acked map[string]string
	batch []fullOp // a failed batch's writes
	old   []string // what its keys held before ("" for nothing)
}

type fullOp struct{ key, value string }

// check reads every key of m from c; Scan must find nothing else. It
// returns how many writes of the failed batch are there.
func (m *fullModel) check(tb testing.TB, c *engine.Cache) int {
	tb.Helper()
	want := maps.Clone(m.acked)
	landed := 0
	for i, op := range m.batch {
		got, err := c.Get([]byte(op.key))
		if err == nil && string(got) == op.value && landed == i {
			landed++
			want[op.key] = op.value
			continue
		}
		if m.old[i] == "" {
			wantMissing(tb, c, op.key)
		} else {
			wantValue(tb, c, op.key, m.old[i])
			want[op.key] = m.old[i]
		}
	}
	checkModel(tb, c, want)
	return landed
}

// settle makes the first landed writes of the failed batch acknowledged,
// and its other keys hold what they held before.
func (m *fullModel) settle(landed int) {
	for i, op := range m.batch {
		switch {
		case i < landed:
			m.acked[op.key] = op.value
		case m.old[i] != "":
			m.acked[op.key] = m.old[i]
		}
	}
	m.batch, m.old = nil, nil
}

// TestFullDiskTornWrite: a write that fails part-way (as one does when the
// disk fills: the bytes that fit reach the file) leaves no record that a
// later scan could take back. Here a batch fails after its first records
// reached the file, a shorter write lands over their start, and the reopen
// scans the segment: the batch's whole records after that write must not
// come back over the value acknowledged before. TestFullDisk does the same
// on a real full disk where it can mount one; this runs everywhere.
func TestFullDiskTornWrite(t *testing.T) {
	dir := t.TempDir()
	fsys := vfs.NewFaultFS(vfs.OS{})
	opts := engine.Options{Sync: engine.SyncNever, ManualCompaction: true, Compression: engine.CompressNone}
	c := openCache(t, dir, engine.WithFS(opts, fsys))
	mustSet(t, c, "x", "acknowledged")
	b := new(engine.Batch)
	for _, k := range []string{"b0", "x", "b2", "b3"} {
		b.Set([]byte(k), []byte(value(k, 1, 300)))
	}
	fsys.FailAt(1, syscall.ENOSPC, false) // the batch's pwrite writes half and fails
	requireENOSPC(t, "a batch whose write runs out of space", c.Write(b))
	if _, failed := fsys.Calls(); failed != 1 {
		t.Fatalf("%d calls failed, want the batch's write", failed)
	}
	mustSet(t, c, "c", "short")
	model := map[string]string{"x": "acknowledged", "c": "short"}
	checkModel(t, c, model)
	mustClose(t, c)
	c = openCache(t, dir, opts)
	checkModel(t, c, model)
	if n := c.Stats().Corruptions; n != 0 {
		t.Errorf("the reopen found %d corruptions in what a failed write left", n)
	}
}

// TestFullDisk runs a cache on a tmpfs of 2 MiB until writes fail for want
// of space. Every write that failed says so (it wraps ENOSPC and names what
// failed) and stored nothing: no torn record, no temporary file. Every
// write acknowledged before reads back, in the cache and after a reopen,
// also a read-only one on the still full disk. Once space is freed, writes
// work again in the same cache and after a reopen. An Open that needs
// space fails cleanly, rather than die of SIGBUS in a mapped file.
func TestFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, 2<<20)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 256<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	// Sources for SetFile: one on another filesystem (copied), one on the
	// tmpfs (moved in by rename, which needs no space).
	outside := writeSource(t, filepath.Join(t.TempDir(), "outside"), randomBytes(7, 20<<10), 0o600)
	inside := writeSource(t, filepath.Join(mnt, "inside"), randomBytes(8, 6<<10), 0o600)

	dir := filepath.Join(mnt, "cache")
	opts := engine.Options{SegmentSize: 64 << 10, InlineLimit: 4 << 10, Sync: engine.SyncAlways,
		Compression: engine.CompressNone, ManualCompaction: true, SidecarGrace: -1}
	c := openCache(t, dir, opts)
	m := &fullModel{acked: map[string]string{}}

	// Fill: values of about 1 KiB, one in twenty in a sidecar file, one in
	// ten overwriting an earlier key (dead records for Compact).
	var err error
	var failed string
	for n := 0; err == nil; n++ {
		if n == 100_000 {
			t.Fatal("the disk never filled")
		}
		k := fmt.Sprintf("k%05d", n)
		if n%10 == 9 {
			k = fmt.Sprintf("k%05d", n-5)
		}
		v := value(k, n, 900+n%200)
		if n%20 == 19 {
			v = value(k, n, 6<<10)
		}
		if err = c.Set([]byte(k), []byte(v)); err == nil {
			m.acked[k] = v
		} else {
			failed = k
		}
	}
	requireENOSPC(t, "Set on a full disk", err)
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("Set on a full disk: %v does not name the file it could not write", err)
	}
	t.Logf("full after %d keys: %v", len(m.acked), err)
	if v, ok := m.acked[failed]; ok {
		wantValue(t, c, failed, v)
	} else {
		wantMissing(t, c, failed)
	}

	// Writes that need a page of their own fail, and leave nothing.
	sidecarValue := []byte(value("side", 0, 6<<10))
	requireENOSPC(t, "Set of a sidecar value", c.Set([]byte("side"), sidecarValue))
	requireENOSPC(t, "SetReader", c.SetReader([]byte("reader"), bytes.NewReader(sidecarValue)))
	requireENOSPC(t, "SetFile", c.SetFile([]byte("file"), outside))
	requireENOSPC(t, "SetFile Movable from another filesystem", c.SetFile([]byte("file"), outside, engine.Movable()))
	// A batch larger than what is left, over a segment roll.
	b := new(engine.Batch)
	for i := range 80 {
		k := fmt.Sprintf("b%02d", i)
		if i%2 == 1 {
			k = fmt.Sprintf("k%05d", i*10) // an existing key
		}
		v := value(k, i, 1000)
		b.Set([]byte(k), []byte(v))
		m.batch = append(m.batch, fullOp{k, v})
		m.old = append(m.old, m.acked[k])
	}
	requireENOSPC(t, "a batch", c.Write(b))
	for _, op := range m.batch {
		delete(m.acked, op.key)
	}
	// Small writes may still fit in the last page; either they are
	// stored or they fail with ENOSPC.
	small := func(what string, err error, apply func()) {
		t.Helper()
		if err == nil {
			apply()
		} else {
			requireENOSPC(t, what, err)
		}
	}
	small("Delete", c.Delete([]byte("k00000")), func() { delete(m.acked, "k00000") })
	stamp := fileStamp(t, inside)
	err = c.SetFile([]byte("inside"), inside, engine.Movable())
	small("SetFile Movable", err, func() { m.acked["inside"] = string(randomBytes(8, 6<<10)) })
	if err != nil {
		if now := fileStamp(t, inside); now != stamp {
			t.Errorf("a failed SetFile Movable did not give the file back as it was: %s, was %s", now, stamp)
		}
	}
	// Compact needs room to copy into.
	if err := c.Compact(); err != nil {
		requireENOSPC(t, "Compact", err)
		t.Logf("Compact on a full disk: %v", err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	landed := m.check(t, c)
	t.Logf("%d of the failed batch's %d writes read back", landed, len(m.batch))
	if err := c.Sync(); err != nil {
		t.Errorf("Sync on a full disk, with every write either synced or refused: %v", err)
	}

	// Space is freed: the same cache writes again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "after", "inline")
	m.acked["after"] = "inline"
	if err := c.Set([]byte("side"), sidecarValue); err != nil {
		t.Fatalf("Set of a sidecar value once space is back: %v", err)
	}
	m.acked["side"] = string(sidecarValue)
	if err := c.SetReader([]byte("reader"), bytes.NewReader(sidecarValue)); err != nil {
		t.Fatalf("SetReader once space is back: %v", err)
	}
	m.acked["reader"] = string(sidecarValue)
	if err := c.SetFile([]byte("file"), outside); err != nil {
		t.Fatalf("SetFile once space is back: %v", err)
	}
	m.acked["file"] = string(randomBytes(7, 20<<10))
	mustDelete(t, c, "k00001")
	delete(m.acked, "k00001")
	if got := m.check(t, c); got != landed {
		t.Fatalf("%d writes of the failed batch read back, %d before", got, landed)
	}
	if err := c.Compact(); err != nil {
		t.Fatalf("Compact once space is back: %v", err)
	}
	m.check(t, c)
	// No file of a failed write is left behind: the sidecar folder holds
	// the acknowledged values' files, no more.
	sidecars := 0
	for _, v := range m.acked {
		if len(v) > opts.InlineLimit {
			sidecars++
		}
	}
	if files := sidecarFiles(t, dir); len(files) != sidecars {
		t.Errorf("the sidecar folder holds %d files for %d values", len(files), sidecars)
	}
	mustClose(t, c)

	// A reopen finds every acknowledged write, and of the failed batch at
	// least what the cache showed.
	c = openCache(t, dir, opts)
	if got := m.check(t, c); got < landed {
		t.Fatalf("%d writes of the failed batch read back after reopen, %d before", got, landed)
	} else {
		t.Logf("%d of the failed batch's writes read back after reopen", got)
		m.settle(got)
	}
	if n := c.Stats().Corruptions; n != 0 {
		t.Errorf("the reopen found %d corruptions", n)
	}

	// Full again, then closed: a read-only open reads everything; a
	// read-write one either opens or fails for want of space.
	filler2 := filepath.Join(mnt, "filler2")
	if err := os.WriteFile(filler2, make([]byte, 128<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	err = nil
	for n := 0; err == nil; n++ {
		k := fmt.Sprintf("r%05d", n)
		v := value(k, n, 1000)
		if err = c.Set([]byte(k), []byte(v)); err == nil {
			m.acked[k] = v
		}
	}
	requireENOSPC(t, "Set on a full disk after a reopen", err)
	mustClose(t, c)
	m.check(t, openCache(t, dir, engine.Options{ReadOnly: true}))
	if c, err := engine.Open(dir, opts); err == nil {
		m.check(t, c)
		mustClose(t, c)
	} else {
		requireENOSPC(t, "Open read-write on a full disk", err)
		t.Logf("Open read-write on a full disk: %v", err)
	}

	// Without its state file, which the first opener makes again: the
	// file's page cannot be had, and Open must say so (a store to a page
	// the disk cannot back kills the process with SIGBUS).
	if err := os.Remove(filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	fillFile(t, filepath.Join(mnt, "stuffing"))
	requireENOSPC(t, "Open read-write without a state file on a full disk", openErr(dir, opts))
	m.check(t, openCache(t, dir, engine.Options{ReadOnly: true}))

	// Space again: it opens, holds everything, and writes.
	os.Remove(filepath.Join(mnt, "stuffing"))
	os.Remove(filler2)
	c = openCache(t, dir, opts)
	m.check(t, c)
	mustSet(t, c, "last", "inline")
	m.acked["last"] = "inline"
	mustClose(t, c)
	m.check(t, openCache(t, dir, opts))
}
