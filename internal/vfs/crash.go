package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// ErrCrashed is what every call of a CrashFS returns between Crash and
// Reboot: the machine is off.
var ErrCrashed = errors.New("vfs: crashed")

// Tail says what a crash leaves of the bytes written to a file after its
// last Datasync.
type Tail int

const (
	// TailDrop loses them all: the file ends where it was synced.
	TailDrop Tail = iota
	// TailPrefix keeps a random prefix of them (the disk wrote some
	// blocks).
	TailPrefix
	// TailZeros keeps a random length of them, reading as zeros (the
	// size reached the disk before the data).
	TailZeros
	// TailGarbage keeps a random length of them, reading as random bytes.
	TailGarbage
	// TailMixed picks one of the above for each file.
	TailMixed
)

// CrashFS is a strict filesystem for crash tests: it remembers, of every
// file and name it creates, changes or removes, what has been made durable,
// and on Crash and Reboot puts the real files under its roots back to what
// a power cut would have kept:
//
//   - a file's bytes up to its last Datasync, and of the bytes written
//     since, what the Tail mode says; bytes written over synced bytes go
//     back to what they were;
//   - a name created, renamed or removed only once SyncDir ran on its
//     directory (for a rename, the directory it moved to): until then the
//     crash undoes it, which brings a removed or replaced file back.
//
// It works on the real files (kept in sync with what the program wrote
// until the crash) rather than in memory so that the engine can map them
// as it does in production. Files it did not create are taken as durable
// as they are when first opened. Removed and replaced files wait in a
// graveyard folder beside the roots until Reboot.
//
// A test runs a cache on it, calls Crash at any moment (every later call
// fails with ErrCrashed, as writes do when the power is gone), closes the
// cache, and calls Reboot before it opens the directory again.
type CrashFS struct {
	graveyard string
	roots     []string
	tail      Tail
	rng       *rand.Rand

	mu      sync.Mutex
	crashed bool
	crashIn int // calls until the power cut CrashAt asked for; 0 for none
	calls   int // calls since the last Reboot
	files   map[fileKey]*fileLog
	pending []dirOp // names not yet made durable, oldest first
	saved   int     // files sent to the graveyard
}

// fileKey identifies a file by its inode, which its renames keep. Removed
// files stay linked in the graveyard, so an inode is not reused while the
// CrashFS may need it.
type fileKey struct{ dev, ino uint64 }

// fileLog is what the CrashFS knows of a file's durable content.
type fileLog struct {
	order  int         // when the CrashFS first saw it, so that Reboot cuts files in a seeded order
	synced int64       // bytes that survive a crash
	undo   []overwrite // synced bytes written over since the last sync, oldest first
	writes int64       // bytes written since the last sync, for tests' statistics
}

type overwrite struct {
	off int64
	old []byte
}

// dirOp is a change of a directory's names that no SyncDir made durable.
type dirOp struct {
	kind  string // "create", "rename", "remove" or "mkdir"
	dir   string // whose sync makes it durable
	name  string // the name created, removed, or renamed to
	from  string // for a rename: the old name
	grave string // the removed or replaced file, kept to bring it back
}

// NewCrashFS returns a CrashFS for the directories under roots, with its
// graveyard in graveyard (an empty folder outside the roots, on the same
// filesystem), and seed for the random parts of Tail.
func NewCrashFS(graveyard string, tail Tail, seed uint64, roots ...string) *CrashFS {
	for i, r := range roots {
		roots[i] = filepath.Clean(r)
	}
	return &CrashFS{
		graveyard: graveyard,
		roots:     roots,
		tail:      tail,
		rng:       rand.New(rand.NewPCG(seed, 0x6372617368)),
		files:     make(map[fileKey]*fileLog),
	}
}

var _ FS = (*CrashFS)(nil)

// Crash cuts the power: every call from now on fails with ErrCrashed.
func (c *CrashFS) Crash() {
	c.mu.Lock()
	c.crashed = true
	c.mu.Unlock()
}

// CrashAt cuts the power just before call number n from now (1 for the
// next): every FS call and every write, Datasync and Chmod of its files
// counts. A test that sweeps n over a workload's calls crashes it at every
// step that touches the disk.
func (c *CrashFS) CrashAt(n int) {
	c.mu.Lock()
	c.crashIn = n
	c.mu.Unlock()
}

// Calls returns the calls made since the CrashFS was made or rebooted.
func (c *CrashFS) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// Crashed reports whether the power is off.
func (c *CrashFS) Crashed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crashed
}

// Reboot puts the files back to what survived the crash (Crash must have
// been called, and the cache closed) and starts a new life in which every
// file is durable as it is.
func (c *CrashFS) Reboot() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.crashed {
		return errors.New("vfs: Reboot without Crash")
	}
	for i := len(c.pending) - 1; i >= 0; i-- {
		if err := c.undo(c.pending[i]); err != nil {
			return err
		}
	}
	type found struct {
		path string
		fi   fs.FileInfo
		log  *fileLog
	}
	var files []found
	for _, root := range c.roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return nil // a root whose creation the crash undid
			}
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if log := c.files[keyOf(fi)]; log != nil {
				files = append(files, found{path, fi, log})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("vfs: reboot: %w", err)
		}
	}
	// Names are random (temporary files, sidecar files), the order files
	// were first seen is not: cut in that order, so a seed replays a cut.
	slices.SortFunc(files, func(a, b found) int { return a.log.order - b.log.order })
	for _, f := range files {
		if err := c.cut(f.path, f.fi.Size(), f.log); err != nil {
			return fmt.Errorf("vfs: reboot: %w", err)
		}
		// The cut changes no time a crash would: keep the mtime, which
		// the engine uses (a sidecar file's keep-until).
		if err := os.Chtimes(f.path, time.Time{}, f.fi.ModTime()); err != nil {
			return fmt.Errorf("vfs: reboot: %w", err)
		}
	}
	if err := os.RemoveAll(c.graveyard); err != nil {
		return err
	}
	c.crashed, c.crashIn, c.calls, c.pending, c.files = false, 0, 0, nil, make(map[fileKey]*fileLog)
	return nil
}

// undo reverts a directory change that was not durable.
func (c *CrashFS) undo(op dirOp) error {
	ignoreMissing := func(err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	switch op.kind {
	case "create":
		return ignoreMissing(os.Remove(op.name))
	case "mkdir":
		return os.RemoveAll(op.name)
	case "rename":
		if err := ignoreMissing(os.Rename(op.name, op.from)); err != nil {
			return err
		}
	}
	if op.grave != "" {
		return os.Link(op.grave, op.name)
	}
	return nil
}

// cut puts a file's bytes back to what a crash keeps of them.
func (c *CrashFS) cut(path string, size int64, log *fileLog) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for i := len(log.undo) - 1; i >= 0; i-- {
		if _, err := f.WriteAt(log.undo[i].old, log.undo[i].off); err != nil {
			return err
		}
	}
	if size <= log.synced {
		return nil
	}
	tail := c.tail
	if tail == TailMixed {
		tail = Tail(c.rng.IntN(int(TailMixed)))
	}
	keep := int64(0)
	if tail != TailDrop {
		keep = c.rng.Int64N(size - log.synced + 1)
	}
	if err := f.Truncate(log.synced + keep); err != nil {
		return err
	}
	if keep == 0 || tail == TailPrefix {
		return nil
	}
	b := make([]byte, keep)
	if tail == TailGarbage {
		for i := range b {
			b[i] = byte(c.rng.Uint32())
		}
	}
	_, err = f.WriteAt(b, log.synced)
	return err
}

// Unsynced returns how many files hold bytes written since their last
// sync, and how many such bytes: what a crash now can lose.
func (c *CrashFS) Unsynced() (files int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, log := range c.files {
		if log.writes > 0 {
			files++
			bytes += log.writes
		}
	}
	return files, bytes
}

func keyOf(fi fs.FileInfo) fileKey {
	st := fi.Sys().(*syscall.Stat_t)
	return fileKey{dev: uint64(st.Dev), ino: st.Ino}
}

// begin takes the lock for a call, failing it if the power is off.
func (c *CrashFS) begin(op, path string) error {
	c.mu.Lock()
	c.calls++
	if c.crashIn > 0 {
		if c.crashIn--; c.crashIn == 0 {
			c.crashed = true
		}
	}
	if c.crashed {
		c.mu.Unlock()
		return &os.PathError{Op: op, Path: path, Err: ErrCrashed}
	}
	return nil
}

// track starts the log of a file just opened: empty for a new file,
// durable as it is for an existing one the CrashFS does not know.
func (c *CrashFS) track(f *os.File, created bool, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	k := keyOf(fi)
	log := c.files[k]
	if log == nil {
		log = &fileLog{order: len(c.files)}
		if !created {
			log.synced = fi.Size()
		}
		c.files[k] = log
	}
	if created {
		c.pending = append(c.pending, dirOp{kind: "create", dir: filepath.Dir(f.Name()), name: f.Name()})
	}
	return &crashFile{File: f, fs: c, log: log}, nil
}

func (c *CrashFS) Create(name string, perm fs.FileMode) (File, error) {
	if err := c.begin("open", name); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|noFollow, perm)
	return c.track(f, true, err)
}

func (c *CrashFS) OpenWrite(name string) (File, error) {
	if err := c.begin("open", name); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	f, err := os.OpenFile(name, os.O_RDWR|noFollow, 0)
	return c.track(f, false, err)
}

func (c *CrashFS) OpenRead(name string) (File, error) {
	if err := c.begin("open", name); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	f, err := os.OpenFile(name, os.O_RDONLY|noFollow, 0)
	return c.track(f, false, err)
}

func (c *CrashFS) CreateTemp(dir, pattern string) (File, error) {
	if err := c.begin("createtemp", dir); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	f, err := os.CreateTemp(dir, pattern)
	return c.track(f, true, err)
}

// bury links the file at name into the graveyard, so that a crash can
// bring it back once it is removed or replaced. It returns "" if there is
// no such file, or it is not a regular file (a directory removed is gone).
func (c *CrashFS) bury(name string) (string, error) {
	fi, err := os.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.Mode().IsRegular() {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.graveyard, 0o700); err != nil {
		return "", err
	}
	c.saved++
	grave := filepath.Join(c.graveyard, fmt.Sprint(c.saved))
	return grave, os.Link(name, grave)
}

func (c *CrashFS) rename(from, to string, replace bool) error {
	if err := c.begin("rename", to); err != nil {
		return err
	}
	defer c.mu.Unlock()
	var grave string
	var err error
	if replace {
		if grave, err = c.bury(to); err != nil {
			return err
		}
		err = os.Rename(from, to)
	} else {
		err = OS{}.RenameNoReplace(from, to)
	}
	if err != nil {
		if grave != "" {
			os.Remove(grave)
		}
		return err
	}
	c.pending = append(c.pending, dirOp{kind: "rename", dir: filepath.Dir(to), name: to, from: from, grave: grave})
	return nil
}

func (c *CrashFS) Rename(from, to string) error          { return c.rename(from, to, true) }
func (c *CrashFS) RenameNoReplace(from, to string) error { return c.rename(from, to, false) }

func (c *CrashFS) Remove(name string) error {
	if err := c.begin("remove", name); err != nil {
		return err
	}
	defer c.mu.Unlock()
	grave, err := c.bury(name)
	if err != nil {
		return err
	}
	if err := os.Remove(name); err != nil {
		if grave != "" {
			os.Remove(grave)
		}
		return err
	}
	if grave != "" {
		c.pending = append(c.pending, dirOp{kind: "remove", dir: filepath.Dir(name), name: name, grave: grave})
	}
	return nil
}

func (c *CrashFS) Mkdir(name string, perm fs.FileMode) error {
	if err := c.begin("mkdir", name); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if err := os.Mkdir(name, perm); err != nil {
		return err
	}
	c.pending = append(c.pending, dirOp{kind: "mkdir", dir: filepath.Dir(filepath.Clean(name)), name: name})
	return nil
}

// MkdirAll makes missing directories one by one, so that each is undone
// by a crash until its parent is synced.
func (c *CrashFS) MkdirAll(name string, perm fs.FileMode) error {
	name = filepath.Clean(name)
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		return nil
	}
	if parent := filepath.Dir(name); parent != name {
		if err := c.MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := c.Mkdir(name, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

func (c *CrashFS) SyncDir(dir string) error {
	if err := c.begin("fsync", dir); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if err := (OS{}).SyncDir(dir); err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	kept := c.pending[:0]
	for _, op := range c.pending {
		if op.dir != dir {
			kept = append(kept, op)
		}
	}
	c.pending = kept
	return nil
}

// Chtimes passes through: times are not part of what crash tests check.
func (c *CrashFS) Chtimes(name string, atime, mtime time.Time) error {
	if err := c.begin("chtimes", name); err != nil {
		return err
	}
	defer c.mu.Unlock()
	return os.Chtimes(name, atime, mtime)
}

func (c *CrashFS) FSType(dir string) (int64, error) { return OS{}.FSType(dir) }

// crashFile is a file of a CrashFS: it logs what its writes change.
type crashFile struct {
	*os.File
	fs  *CrashFS
	log *fileLog
}

func (f *crashFile) OS() *os.File { return f.File }

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.begin("write", f.Name()); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	if err := f.saveOverwritten(len(p), off); err != nil {
		return 0, err
	}
	n, err := f.File.WriteAt(p, off)
	f.log.writes += int64(n)
	return n, err
}

func (f *crashFile) Write(p []byte) (int, error) {
	if err := f.fs.begin("write", f.Name()); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if err := f.saveOverwritten(len(p), off); err != nil {
		return 0, err
	}
	n, err := f.File.Write(p)
	f.log.writes += int64(n)
	return n, err
}

// saveOverwritten keeps the synced bytes a write of n bytes at off is
// about to replace.
func (f *crashFile) saveOverwritten(n int, off int64) error {
	end := min(off+int64(n), f.log.synced)
	if off >= end {
		return nil
	}
	old := make([]byte, end-off)
	if _, err := f.File.ReadAt(old, off); err != nil && err != io.EOF {
		return err
	}
	f.log.undo = append(f.log.undo, overwrite{off: off, old: old})
	return nil
}

func (f *crashFile) Datasync() error {
	if err := f.fs.begin("fdatasync", f.Name()); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	if err := Fdatasync(f.File); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	f.log.synced, f.log.undo, f.log.writes = fi.Size(), nil, 0
	return nil
}

func (f *crashFile) Chmod(mode fs.FileMode) error {
	if err := f.fs.begin("chmod", f.Name()); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	return f.File.Chmod(mode)
}
