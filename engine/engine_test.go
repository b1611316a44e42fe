package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

func TestRoundTrip(t *testing.T) {
	c := openCache(t, t.TempDir(), smallOptions())
	model := map[string]string{}
	keys := []string{
		"a", "user:42", "../../etc/passwd", "\x00", "\xff\xff", "with space", "key/with/slashes",
		strings.Repeat("k", 4096), // the default MaxKeySize
	}
	for i, k := range keys {
		v := value(k, i, i*37)
		mustSet(t, c, k, v)
		model[k] = v
	}
	// Values from empty to larger than a segment.
	for _, size := range []int{0, 1, 100, 4000, 4096, 10_000, 100_000} {
		k := fmt.Sprintf("size-%d", size)
		v := value(k, size, size)
		mustSet(t, c, k, v)
		model[k] = v
	}
	checkModel(t, c, model)
	if s := c.Stats(); s.Sets != uint64(len(model)) || s.Keys != len(model) {
		t.Fatalf("Stats: %d sets, %d keys; want %d", s.Sets, s.Keys, len(model))
	}
}

// TestLargeValueFirstInSegment stores values larger than SegmentSize as the
// first record of a fresh cache, of a reopened one and after a roll: each
// must be readable, however the active segment was mapped.
func TestLargeValueFirstInSegment(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	big := value("big", 1, 3*4096)
	mustSet(t, c, "big", big) // first record of the first segment
	wantValue(t, c, "big", big)
	mustClose(t, c)

	c = openCache(t, dir, smallOptions())
	wantValue(t, c, "big", big)
	mustSet(t, c, "small", "s")
	big2 := value("big2", 2, 5*4096)
	mustSet(t, c, "big2", big2) // after a roll
	wantValue(t, c, "big2", big2)
	mustClose(t, c)

	// An empty cache reopened: its active segment holds only a header.
	dir2 := t.TempDir()
	mustClose(t, openCache(t, dir2, smallOptions()))
	c = openCache(t, dir2, smallOptions())
	mustSet(t, c, "big3", big)
	wantValue(t, c, "big3", big)
	mustClose(t, c)
	c = openCache(t, dir2, smallOptions())
	wantValue(t, c, "big3", big)
}

func TestReturnedValuesAreCopies(t *testing.T) {
	c := openCache(t, t.TempDir(), smallOptions())
	in := []byte("original")
	if err := c.Set([]byte("k"), in); err != nil {
		t.Fatal(err)
	}
	copy(in, "XXXXXXXX") // the caller reuses its buffer
	got, err := c.Get([]byte("k"))
	if err != nil || string(got) != "original" {
		t.Fatalf("Get = %q, %v after the caller changed its buffer", got, err)
	}
	copy(got, "YYYYYYYY") // the caller changes the returned value
	wantValue(t, c, "k", "original")
	// Scan's key and value are fn's to keep, and to change.
	if err := c.Scan(nil, func(k, v []byte) error { copy(k, "Z"); copy(v, "ZZZ"); return nil }); err != nil {
		t.Fatal(err)
	}
	wantValue(t, c, "k", "original")
}

func TestOverwrite(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	for i := range 200 { // enough to roll segments between versions
		mustSet(t, c, "k", value("k", i, 50))
		mustSet(t, c, fmt.Sprintf("other-%d", i%5), value("o", i, 30))
	}
	wantValue(t, c, "k", value("k", 199, 50))
	if n := c.Len(); n != 6 {
		t.Fatalf("Len = %d after overwrites, want 6", n)
	}
	if s := c.Stats(); s.DeadBytes == 0 || s.LiveBytes == 0 {
		t.Fatalf("Stats after overwrites: live %d dead %d", s.LiveBytes, s.DeadBytes)
	}
	// A shorter value replaces a longer one entirely.
	mustSet(t, c, "k", "short")
	wantValue(t, c, "k", "short")
	mustClose(t, c)
	c = openCache(t, dir, smallOptions())
	wantValue(t, c, "k", "short")
	if n := c.Len(); n != 6 {
		t.Fatalf("Len = %d after reopen, want 6", n)
	}
}

func TestDeleteAndHas(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	mustSet(t, c, "a", "1")
	mustSet(t, c, "b", "2")
	if ok, err := c.Has([]byte("a")); !ok || err != nil {
		t.Fatalf("Has(a) = %v, %v", ok, err)
	}
	mustDelete(t, c, "a")
	wantMissing(t, c, "a")
	wantValue(t, c, "b", "2")
	mustDelete(t, c, "a")         // again: not an error
	mustDelete(t, c, "never-set") // absent: not an error
	if n := c.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
	mustSet(t, c, "a", "again")
	wantValue(t, c, "a", "again")
	mustDelete(t, c, "b")
	if s := c.Stats(); s.Deletes != 4 {
		t.Fatalf("Stats.Deletes = %d, want 4", s.Deletes)
	}
	mustClose(t, c)

	// Deletes survive reopen, including a tombstone in a later segment than
	// the value it deletes.
	c = openCache(t, dir, smallOptions())
	wantValue(t, c, "a", "again")
	wantMissing(t, c, "b")
	for i := range 100 {
		mustSet(t, c, fmt.Sprintf("fill-%03d", i), value("fill", i, 60))
	}
	mustDelete(t, c, "a")
	mustClose(t, c)
	c = openCache(t, dir, smallOptions())
	wantMissing(t, c, "a")
	if n := c.Len(); n != 100 {
		t.Fatalf("Len = %d after reopen, want 100", n)
	}
	mustClose(t, c)
	removeHints(t, dir)
	c = openCache(t, dir, smallOptions())
	wantMissing(t, c, "a")
	wantMissing(t, c, "b")
}

func TestNilValue(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	if err := c.Set([]byte("nil"), nil); err != nil {
		t.Fatalf("Set(nil value): %v", err)
	}
	if err := c.Set([]byte("empty"), []byte{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"nil", "empty"} {
		v, err := c.Get([]byte(k))
		if err != nil || len(v) != 0 {
			t.Fatalf("Get(%q) = %q, %v; want an empty value", k, v, err)
		}
		if ok, _ := c.Has([]byte(k)); !ok {
			t.Fatalf("Has(%q) = false for an empty value", k)
		}
	}
	mustClose(t, c)
	c = openCache(t, dir, smallOptions())
	checkModel(t, c, map[string]string{"nil": "", "empty": ""})
}

func TestBadInput(t *testing.T) {
	opts := smallOptions()
	opts.MaxKeySize = 16
	opts.MaxValueSize = 100
	c := openCache(t, t.TempDir(), opts)
	mustSet(t, c, "present", "value")

	long := bytes.Repeat([]byte("k"), 17)
	big := make([]byte, 101)
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"Set empty key", c.Set(nil, []byte("v")), engine.ErrEmptyKey},
		{"Set zero-length key", c.Set([]byte{}, []byte("v")), engine.ErrEmptyKey},
		{"Get empty key", func() error { _, err := c.Get(nil); return err }(), engine.ErrEmptyKey},
		{"Has empty key", func() error { _, err := c.Has(nil); return err }(), engine.ErrEmptyKey},
		{"Delete empty key", c.Delete(nil), engine.ErrEmptyKey},
		{"SetWithTTL empty key", c.SetWithTTL(nil, nil, time.Second), engine.ErrEmptyKey},
		{"Set long key", c.Set(long, []byte("v")), engine.ErrKeyTooLarge},
		{"Get long key", func() error { _, err := c.Get(long); return err }(), engine.ErrKeyTooLarge},
		{"Has long key", func() error { _, err := c.Has(long); return err }(), engine.ErrKeyTooLarge},
		{"Delete long key", c.Delete(long), engine.ErrKeyTooLarge},
		{"Set big value", c.Set([]byte("present"), big), engine.ErrValueTooLarge},
		{"SetWithTTL big value", c.SetWithTTL([]byte("present"), big, time.Second), engine.ErrValueTooLarge},
		{"negative ttl", c.SetWithTTL([]byte("present"), []byte("x"), -time.Nanosecond), engine.ErrInvalidTTL},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		} else if !strings.HasPrefix(tt.err.Error(), "kennel: ") {
			t.Errorf("%s: error %q lacks the kennel prefix", tt.name, tt.err)
		}
	}
	// Limits are inclusive, and nothing stored was damaged by bad input.
	if err := c.Set(long[:16], big[:100]); err != nil {
		t.Fatalf("Set at the limits: %v", err)
	}
	wantValue(t, c, "present", "value")
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	if s := c.Stats(); s.Sets != 2 {
		t.Fatalf("Stats.Sets = %d, want 2: failed Sets were counted", s.Sets)
	}
}

// TestClosed: every method of a closed cache returns ErrClosed (Len
// returns 0), and nothing written before Close is lost.
func TestClosed(t *testing.T) {
	dir := t.TempDir()
	c, err := engine.Open(dir, smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "k", "v")
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	k := []byte("k")
	checks := map[string]error{
		"Get":        func() error { _, err := c.Get(k); return err }(),
		"Has":        func() error { _, err := c.Has(k); return err }(),
		"Set":        c.Set(k, []byte("new")),
		"Set new":    c.Set([]byte("new key"), []byte("new")),
		"SetWithTTL": c.SetWithTTL(k, []byte("new"), time.Hour),
		"Delete":     c.Delete(k),
		"Scan":       c.Scan(nil, func(k, v []byte) error { t.Errorf("Scan called fn after Close"); return nil }),
		"Sync":       c.Sync(),
		"Close":      c.Close(),
	}
	for name, err := range checks {
		if !errors.Is(err, engine.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if n := c.Len(); n != 0 {
		t.Errorf("Len after Close = %d, want 0", n)
	}
	c = openCache(t, dir, smallOptions())
	checkModel(t, c, map[string]string{"k": "v"})
}

func TestInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts engine.Options
	}{
		{"SegmentSize too small", engine.Options{SegmentSize: 100}},
		{"SegmentSize negative", engine.Options{SegmentSize: -1}},
		{"SegmentSize too large", engine.Options{SegmentSize: 8 << 30}},
		{"CacheSize negative", engine.Options{CacheSize: -1}},
		{"DefaultTTL negative", engine.Options{DefaultTTL: -time.Second}},
		{"Sync unknown", engine.Options{Sync: engine.SyncPolicy(99)}},
		{"Sync negative", engine.Options{Sync: engine.SyncPolicy(-1)}},
		{"SyncInterval negative", engine.Options{SyncInterval: -time.Second}},
		{"MaxKeySize negative", engine.Options{MaxKeySize: -1}},
		{"MaxKeySize too large", engine.Options{MaxKeySize: 1 << 20}},
		{"MaxValueSize negative", engine.Options{MaxValueSize: -1}},
		{"MaxValueSize too large", engine.Options{MaxValueSize: 2 << 30}},
		{"FileMode not a permission", engine.Options{FileMode: os.ModeDir | 0o600}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			c, err := engine.Open(dir, tt.opts)
			if !errors.Is(err, engine.ErrInvalidOptions) {
				if err == nil {
					c.Close()
				}
				t.Fatalf("Open: %v, want ErrInvalidOptions", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("Open with invalid options touched the directory: %v", err)
			}
		})
	}
}

func TestOpenCreatesPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "cache")
	c := openCache(t, dir, smallOptions())
	mustSet(t, c, "k", "v")
	mustClose(t, c)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fi, _ := e.Info()
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: readable by others", e.Name(), fi.Mode().Perm())
		}
	}
}

func TestOpenForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	requireOpenRefused(t, dir, engine.ErrNotKennelDir, "of a foreign directory")
}

func TestOpenIncompatibleFormat(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	mustSet(t, c, "k", "v")
	mustClose(t, c)
	for _, version := range []string{"1", "2", "3", "5"} { // older (no seals, flock; no compacted segments; no sidecars) and newer
		if err := os.WriteFile(filepath.Join(dir, "KENNEL"), []byte("kennel format "+version+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		requireOpenRefused(t, dir, engine.ErrIncompatible, "of a format "+version+" directory")
	}
}

func TestOpenGarbledFormatFile(t *testing.T) {
	for _, content := range []string{"", "kennel format one\n", "kennel format 1", "kennel format 1\nextra", "\x00\x00"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "KENNEL"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		before := dirState(t, dir)
		c, err := engine.Open(dir, smallOptions())
		if err == nil {
			c.Close()
			t.Fatalf("Open with format file %q succeeded", content)
		}
		if !errors.Is(err, engine.ErrNotKennelDir) && !errors.Is(err, engine.ErrIncompatible) {
			t.Errorf("format file %q: %v, want ErrNotKennelDir or ErrIncompatible", content, err)
		}
		requireNoChange(t, dir, before)
	}
}

func TestOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := engine.Open(path, smallOptions())
	if err == nil {
		c.Close()
		t.Fatalf("Open of a regular file succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "data" {
		t.Fatalf("Open changed the file to %q", b)
	}
	// A path under a file cannot be created either.
	if c, err := engine.Open(filepath.Join(path, "sub"), smallOptions()); err == nil {
		c.Close()
		t.Fatalf("Open of a path under a file succeeded")
	}
}

// TestOpenExclusive: Options.Exclusive opens a directory only if no other
// cache has it open read-write, and keeps others out while it has it;
// read-only opens work beside it. A refused Open harms nothing.
func TestOpenExclusive(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	mustSet(t, c, "k", "v")
	excl := smallOptions()
	excl.Exclusive = true
	requireOpenRefusedWith(t, dir, excl, engine.ErrLocked, "exclusively beside a shared open")
	wantValue(t, c, "k", "v")
	mustSet(t, c, "k2", "v2")
	mustClose(t, c)

	c = openCache(t, dir, excl)
	mustSet(t, c, "k3", "v3")
	requireOpenRefusedWith(t, dir, smallOptions(), engine.ErrLocked, "beside an exclusive open")
	requireOpenRefusedWith(t, dir, excl, engine.ErrLocked, "exclusively twice")
	ro := smallOptions()
	ro.ReadOnly = true
	r := openCache(t, dir, ro)
	checkModel(t, r, map[string]string{"k": "v", "k2": "v2", "k3": "v3"})
	mustSet(t, c, "k4", "v4")
	wantValue(t, r, "k4", "v4") // the reader follows the exclusive writer
	mustClose(t, r)
	mustClose(t, c)
	c = openCache(t, dir, smallOptions())
	checkModel(t, c, map[string]string{"k": "v", "k2": "v2", "k3": "v3", "k4": "v4"})
}

// TestTempFilesRemoved: temporary files a crash left behind are removed on
// open; other kennel files are kept.
func TestTempFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	mustSet(t, c, "k", "v")
	mustClose(t, c)
	tmp := filepath.Join(dir, "0000000000000001.hint.tmp-12345")
	if err := os.WriteFile(tmp, []byte("half a hint"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = openCache(t, dir, smallOptions())
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file survived Open: %v", err)
	}
	wantValue(t, c, "k", "v")
}

// TestRefusedOpenChangesNothing: a directory refused because one of its
// segments has a newer format keeps everything, temporary files included.
func TestRefusedOpenChangesNothing(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	mustSet(t, c, "k", "v")
	mustClose(t, c)
	newer := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion + 1, ID: 7})
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(7)), newer, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0000000000000001.hint.tmp-1"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	requireOpenRefused(t, dir, engine.ErrIncompatible, "with a newer segment")
}

// TestMaxKeySize stores keys of the largest size the options allow, and
// reads them back through hints and through scans.
func TestMaxKeySize(t *testing.T) {
	dir := t.TempDir()
	opts := smallOptions()
	opts.MaxKeySize = 65535
	c := openCache(t, dir, opts)
	model := map[string]string{}
	for i := range 3 {
		k := strings.Repeat(string(rune('a'+i)), 65535)
		model[k] = value("big key", i, 10)
		mustSet(t, c, k, model[k])
	}
	if err := c.Set(bytes.Repeat([]byte("x"), 65536), nil); !errors.Is(err, engine.ErrKeyTooLarge) {
		t.Fatalf("Set of a 65536-byte key: %v, want ErrKeyTooLarge", err)
	}
	checkModel(t, c, model)
	mustClose(t, c)
	c = openCache(t, dir, opts)
	checkModel(t, c, model)
	mustClose(t, c)
	removeHints(t, dir)
	c = openCache(t, dir, opts)
	checkModel(t, c, model)
}

// TestChangeSegmentSize reopens a cache with a smaller, then a larger
// SegmentSize than it was written with.
func TestChangeSegmentSize(t *testing.T) {
	dir := t.TempDir()
	model := map[string]string{}
	n := 0
	for _, size := range []int64{64 << 10, 4096, 1 << 20, 4096} {
		opts := smallOptions()
		opts.SegmentSize = size
		c := openCache(t, dir, opts)
		checkModel(t, c, model)
		for range 300 {
			k := fmt.Sprintf("k%03d", n%400)
			model[k] = value(k, n, n%500)
			mustSet(t, c, k, model[k])
			n++
		}
		checkModel(t, c, model)
		mustClose(t, c)
	}
}
