package vfs

import (
	"io/fs"
	"os"
	"sync"
	"time"
)

// FaultFS passes every call to another FS and fails the one chosen: the
// Nth call from when FailAt was called (every FS method and every write,
// Datasync and Chmod of its files counts; Close does not), with an errno
// such as EIO or ENOSPC, once or for every call after it too (a disk that
// died, or stays full). The first failing write writes half its bytes
// first, as a write that runs out of space does; later ones write nothing.
type FaultFS struct {
	base FS

	mu     sync.Mutex
	calls  int   // calls since FailAt
	failAt int   // the call to fail; 0 for none
	err    error // the errno it fails with
	sticky bool  // fail every call after it too
	failed int   // calls failed
}

var _ FS = (*FaultFS)(nil)

// NewFaultFS returns a FaultFS over base that fails nothing until FailAt.
func NewFaultFS(base FS) *FaultFS { return &FaultFS{base: base} }

// FailAt makes call number n (1 for the next one) fail with err, and every
// call after it too if sticky. n = 0 fails nothing.
func (f *FaultFS) FailAt(n int, err error, sticky bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.failAt, f.err, f.sticky, f.failed = 0, n, err, sticky, 0
}

// Calls returns the calls counted since FailAt, and how many failed.
func (f *FaultFS) Calls() (calls, failed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.failed
}

// fault counts a call and returns the error it must fail with, if any.
func (f *FaultFS) fault(op, path string) error {
	_, err := f.faultFirst(op, path)
	return err
}

// faultFirst is fault, also reporting whether the call is the first to fail.
func (f *FaultFS) faultFirst(op, path string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failAt == 0 || f.calls < f.failAt || f.calls > f.failAt && !f.sticky {
		return false, nil
	}
	f.failed++
	return f.failed == 1, &os.PathError{Op: op, Path: path, Err: f.err}
}

func (f *FaultFS) file(g File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: g, fs: f}, nil
}

func (f *FaultFS) Create(name string, perm fs.FileMode) (File, error) {
	if err := f.fault("open", name); err != nil {
		return nil, err
	}
	return f.file(f.base.Create(name, perm))
}

func (f *FaultFS) OpenWrite(name string) (File, error) {
	if err := f.fault("open", name); err != nil {
		return nil, err
	}
	return f.file(f.base.OpenWrite(name))
}

func (f *FaultFS) OpenRead(name string) (File, error) {
	if err := f.fault("open", name); err != nil {
		return nil, err
	}
	return f.file(f.base.OpenRead(name))
}

func (f *FaultFS) CreateTemp(dir, pattern string) (File, error) {
	if err := f.fault("createtemp", dir); err != nil {
		return nil, err
	}
	return f.file(f.base.CreateTemp(dir, pattern))
}

func (f *FaultFS) Rename(from, to string) error {
	if err := f.fault("rename", to); err != nil {
		return err
	}
	return f.base.Rename(from, to)
}

func (f *FaultFS) RenameNoReplace(from, to string) error {
	if err := f.fault("rename", to); err != nil {
		return err
	}
	return f.base.RenameNoReplace(from, to)
}

func (f *FaultFS) Remove(name string) error {
	if err := f.fault("remove", name); err != nil {
		return err
	}
	return f.base.Remove(name)
}

func (f *FaultFS) Mkdir(name string, perm fs.FileMode) error {
	if err := f.fault("mkdir", name); err != nil {
		return err
	}
	return f.base.Mkdir(name, perm)
}

func (f *FaultFS) MkdirAll(name string, perm fs.FileMode) error {
	if err := f.fault("mkdir", name); err != nil {
		return err
	}
	return f.base.MkdirAll(name, perm)
}

func (f *FaultFS) SyncDir(dir string) error {
	if err := f.fault("fsync", dir); err != nil {
		return err
	}
	return f.base.SyncDir(dir)
}

func (f *FaultFS) Chtimes(name string, atime, mtime time.Time) error {
	if err := f.fault("chtimes", name); err != nil {
		return err
	}
	return f.base.Chtimes(name, atime, mtime)
}

func (f *FaultFS) FSType(dir string) (int64, error) {
	if err := f.fault("statfs", dir); err != nil {
		return 0, err
	}
	return f.base.FSType(dir)
}

// faultFile is a file of a FaultFS.
type faultFile struct {
	File
	fs *FaultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	if first, err := f.fs.faultFirst("write", f.Name()); err != nil {
		if !first {
			return 0, err
		}
		n, _ := f.File.Write(p[:len(p)/2])
		return n, err
	}
	return f.File.Write(p)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if first, err := f.fs.faultFirst("write", f.Name()); err != nil {
		if !first {
			return 0, err
		}
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Datasync() error {
	if err := f.fs.fault("fdatasync", f.Name()); err != nil {
		return err
	}
	return f.File.Datasync()
}

func (f *faultFile) Chmod(mode fs.FileMode) error {
	if err := f.fs.fault("chmod", f.Name()); err != nil {
		return err
	}
	return f.File.Chmod(mode)
}

// TypeFS passes every call to another FS but reports every directory to be
// on filesystem type Type (NFS's 0x6969, say): it tests what a program does
// on a filesystem the machine has none of.
type TypeFS struct {
	FS
	Type int64
}

func (t TypeFS) FSType(string) (int64, error) { return t.Type, nil }
