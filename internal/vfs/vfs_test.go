package vfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// crashFS returns a CrashFS over a fresh root, and the root.
func crashFS(t *testing.T, tail Tail, seed uint64) (*CrashFS, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	return NewCrashFS(filepath.Join(filepath.Dir(root), "graveyard"), tail, seed, root), root
}

func crashAndReboot(t *testing.T, c *CrashFS) {
	t.Helper()
	c.Crash()
	if err := c.Reboot(); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeSynced(t *testing.T, c *CrashFS, path string, data []byte) File {
	t.Helper()
	f, err := c.Create(path, 0o600)
	must(t, err)
	_, err = f.Write(data)
	must(t, err)
	must(t, f.Datasync())
	return f
}

func wantFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if want == nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after the crash: %q, %v; want no file", filepath.Base(path), got, err)
		}
		return
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s after the crash: %q, %v; want %q", filepath.Base(path), got, err, want)
	}
}

// TestCrashNames: a name lasts only once its directory is synced, and a
// crash brings back what an unsynced rename replaced or a remove took.
func TestCrashNames(t *testing.T) {
	c, root := crashFS(t, TailDrop, 1)
	a, b, d := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "d")
	writeSynced(t, c, a, []byte("synced, named")).Close()
	must(t, c.SyncDir(root))
	writeSynced(t, c, b, []byte("synced, not named")).Close()
	must(t, c.Mkdir(d, 0o700))
	writeSynced(t, c, filepath.Join(d, "inner"), []byte("in a folder not named")).Close()
	must(t, c.SyncDir(d))
	crashAndReboot(t, c)
	wantFile(t, a, []byte("synced, named"))
	wantFile(t, b, nil)
	if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a folder whose parent was not synced survived: %v", err)
	}

	// A rename over a, and a remove of the renamed file's new name, both
	// unsynced: the crash restores a and the old name.
	writeSynced(t, c, b, []byte("new")).Close()
	must(t, c.SyncDir(root))
	must(t, c.Rename(b, a))
	wantFile(t, a, []byte("new"))
	must(t, c.Remove(a))
	crashAndReboot(t, c)
	wantFile(t, a, []byte("synced, named"))
	wantFile(t, b, []byte("new"))

	// Once synced, they stay.
	must(t, c.Rename(b, a))
	must(t, c.SyncDir(root))
	must(t, c.RenameNoReplace(a, b))
	if err := c.RenameNoReplace(b, b); !errors.Is(err, fs.ErrExist) {
		t.Errorf("RenameNoReplace over an existing name: %v, want fs.ErrExist", err)
	}
	must(t, c.SyncDir(root))
	crashAndReboot(t, c)
	wantFile(t, a, nil)
	wantFile(t, b, []byte("new"))
	if entries, _ := os.ReadDir(filepath.Dir(root)); len(entries) != 1 {
		t.Errorf("the graveyard outlived the reboot: %v", entries)
	}
}

// TestCrashData: what survives of bytes written after the last sync, for
// each Tail, and synced bytes written over.
func TestCrashData(t *testing.T) {
	synced := []byte("0123456789")
	unsynced := []byte("abcdefghijklmnopqrstuvwxyz")
	for _, tail := range []Tail{TailDrop, TailPrefix, TailZeros, TailGarbage} {
		for seed := range uint64(20) {
			c, root := crashFS(t, tail, seed)
			path := filepath.Join(root, "f")
			f := writeSynced(t, c, path, synced)
			must(t, c.SyncDir(root))
			_, err := f.Write(unsynced)
			must(t, err)
			_, err = f.WriteAt([]byte("XY"), 3) // over synced bytes
			must(t, err)
			if files, n := c.Unsynced(); files != 1 || n != int64(len(unsynced)+2) {
				t.Errorf("Unsynced() = %d files, %d bytes; want 1, %d", files, n, len(unsynced)+2)
			}
			f.Close()
			crashAndReboot(t, c)
			got, err := os.ReadFile(path)
			must(t, err)
			if len(got) < len(synced) || !bytes.Equal(got[:len(synced)], synced) {
				t.Fatalf("tail %d: synced bytes lost or changed: %q", tail, got)
			}
			rest := got[len(synced):]
			switch {
			case len(rest) > len(unsynced):
				t.Errorf("tail %d: %d bytes after the synced ones, only %d written", tail, len(rest), len(unsynced))
			case tail == TailDrop && len(rest) != 0:
				t.Errorf("TailDrop kept %q", rest)
			case tail == TailPrefix && !bytes.HasPrefix(unsynced, rest):
				t.Errorf("TailPrefix kept %q, not a prefix of what was written", rest)
			case tail == TailZeros && len(bytes.Trim(rest, "\x00")) != 0:
				t.Errorf("TailZeros kept %q", rest)
			}
		}
	}
}

// TestCrashedCallsFail: once crashed, nothing reaches the disk.
func TestCrashedCallsFail(t *testing.T) {
	c, root := crashFS(t, TailDrop, 1)
	f := writeSynced(t, c, filepath.Join(root, "f"), []byte("x"))
	c.Crash()
	calls := map[string]error{
		"Create":  func() error { _, err := c.Create(filepath.Join(root, "g"), 0o600); return err }(),
		"Write":   func() error { _, err := f.Write([]byte("y")); return err }(),
		"Sync":    f.Datasync(),
		"Rename":  c.Rename(filepath.Join(root, "f"), filepath.Join(root, "h")),
		"Remove":  c.Remove(filepath.Join(root, "f")),
		"SyncDir": c.SyncDir(root),
	}
	for name, err := range calls {
		if !errors.Is(err, ErrCrashed) {
			t.Errorf("%s after Crash: %v, want ErrCrashed", name, err)
		}
	}
	f.Close()
	if err := c.Reboot(); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(root, "f"), nil) // its name was never synced
}

// TestFaultFS: the chosen call fails, once or for good, and a failing write
// writes half.
func TestFaultFS(t *testing.T) {
	dir := t.TempDir()
	f := NewFaultFS(OS{})
	f.FailAt(3, syscall.ENOSPC, false)
	file, err := f.Create(filepath.Join(dir, "a"), 0o600) // call 1
	must(t, err)
	_, err = file.Write([]byte("ok")) // 2
	must(t, err)
	if n, err := file.Write([]byte("half")); n != 2 || !errors.Is(err, syscall.ENOSPC) { // 3
		t.Errorf("the failing write: %d, %v; want 2 bytes and ENOSPC", n, err)
	}
	must(t, file.Datasync()) // 4: once only
	f.FailAt(1, syscall.EIO, true)
	for _, err := range []error{file.Datasync(), f.SyncDir(dir), f.Remove(file.Name())} {
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("a call after a sticky fault: %v, want EIO", err)
		}
	}
	if calls, failed := f.Calls(); calls != 3 || failed != 3 {
		t.Errorf("Calls() = %d, %d; want 3, 3", calls, failed)
	}
	file.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "okha" {
		t.Errorf("file holds %q, want %q", b, "okha")
	}
}
