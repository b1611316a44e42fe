package engine_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

var malformedStride = flag.Int("kennel.malformed-stride", 16, "TestMalformedFiles damages every Nth byte of each file (1: every byte, for a soak run)")

// TestMalformedFiles damages a small cache directory one way at a time:
// at byte offsets of every file, a flipped bit, a zeroed byte, the file
// cut there; and garbage or zeros appended to each file. After each, the
// directory is opened and every key read. Nothing may panic; a damaged
// segment, hint or sidecar file never stops the open; and every key gives
// either its last value or, only if the damaged file held one of its
// records, an error or one of its older values (a damaged tombstone lets
// an older value back): never bytes that were not its value.
func TestMalformedFiles(t *testing.T) {
	pristine := t.TempDir()
	opts := engine.Options{SegmentSize: 4 << 10, InlineLimit: 300, ManualCompaction: true, SidecarGrace: -1}
	history := make(map[string][][]byte) // every value each key had, oldest first; nil: deleted
	c := openCache(t, pristine, opts)
	put := func(key string, v []byte) {
		if err := c.Set([]byte(key), v); err != nil {
			t.Fatal(err)
		}
		history[key] = append(history[key], v)
	}
	for i := range 40 {
		put(fmt.Sprintf("k%02d", i%24), bytes.Repeat([]byte{byte('a' + i%26)}, 40+i*13))
	}
	mustDelete(t, c, "k03")
	history["k03"] = append(history["k03"], nil)
	// The file that holds each key's newest record (none for a deleted
	// key: any segment may hold its older records and tombstone).
	holder := make(map[string]string)
	for key := range history {
		if ki, err := c.Stat([]byte(key)); err == nil {
			holder[key] = segment.FileName(ki.Segment)
			if ki.Kind == segment.KindPutSidecar.String() {
				h, _ := c.Open([]byte(key))
				p, _ := h.Path()
				h.Close()
				holder[key] = filepath.Join(segment.SidecarDir, filepath.Base(p))
			}
		}
	}
	mustClose(t, c)

	var paths []string
	filepath.WalkDir(pristine, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(pristine, path)
			paths = append(paths, rel)
		}
		return nil
	})

	scratch := filepath.Join(t.TempDir(), "cache")
	cases := 0
	check := func(file, what string, damage func(path string) error) {
		t.Helper()
		cases++
		os.RemoveAll(scratch)
		if err := os.CopyFS(scratch, os.DirFS(pristine)); err != nil {
			t.Fatal(err)
		}
		if err := damage(filepath.Join(scratch, file)); err != nil {
			t.Fatal(err)
		}
		c, err := engine.Open(scratch, opts)
		if err != nil {
			// Only the directory's own files may make it unreadable:
			// the format file, the shared state, the lock file.
			if strings.HasSuffix(file, segment.Suffix) || strings.HasSuffix(file, segment.HintSuffix) || strings.HasPrefix(file, segment.SidecarDir) {
				t.Fatalf("%s %s: Open: %v", file, what, err)
			}
			return
		}
		defer c.Close()
		for key, values := range history {
			got, err := c.Get([]byte(key))
			last := values[len(values)-1]
			switch {
			case err == nil && last != nil && bytes.Equal(got, last):
				continue
			case errors.Is(err, engine.ErrNotFound) && last == nil:
				continue
			}
			// Anything else only for a key whose records the damage
			// could reach, and never bytes the key did not hold.
			reached := holder[key] == file ||
				strings.HasSuffix(file, segment.Suffix) && (holder[key] == "" || olderIn(key, file, pristine))
			if reached {
				if err != nil && (errors.Is(err, engine.ErrNotFound) || errors.Is(err, engine.ErrCorrupt)) {
					continue
				}
				if err == nil && heldOnce(values, got) {
					continue
				}
			}
			t.Fatalf("%s %s: Get(%s) = %d bytes, %v; last value %d bytes", file, what, key, len(got), err, len(last))
		}
	}

	for _, file := range paths {
		data, err := os.ReadFile(filepath.Join(pristine, file))
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += *malformedStride {
			bit := byte(1) << (off % 8)
			check(file, fmt.Sprintf("bit %d of byte %d flipped", off%8, off), rewrite(data, func(b []byte) []byte { b[off] ^= bit; return b }))
			check(file, fmt.Sprintf("byte %d zeroed", off), rewrite(data, func(b []byte) []byte { b[off] = 0; return b }))
			check(file, fmt.Sprintf("cut at %d", off), rewrite(data, func(b []byte) []byte { return b[:off] }))
		}
		check(file, "garbage appended", rewrite(data, func(b []byte) []byte { return append(b, "\xb7garbage\x01\x02\x03 not a record"...) }))
		check(file, "zeros appended", rewrite(data, func(b []byte) []byte { return append(b, make([]byte, 100)...) }))
	}
	t.Logf("%d damaged directories opened and read (%d files, every %d bytes)", cases, len(paths), *malformedStride)
}

// rewrite returns a damage that writes change(copy of data) over a file.
func rewrite(data []byte, change func([]byte) []byte) func(path string) error {
	return func(path string) error {
		return os.WriteFile(path, change(bytes.Clone(data)), 0o600)
	}
}

// heldOnce reports whether v is one of the values a key held.
func heldOnce(values [][]byte, v []byte) bool {
	for _, w := range values {
		if w != nil && bytes.Equal(w, v) {
			return true
		}
	}
	return false
}

// olderIn reports whether the segment file holds any record of key: its
// damage may then change which of the key's records wins.
func olderIn(key, file, dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, file))
	return err == nil && bytes.Contains(data, []byte(key))
}
