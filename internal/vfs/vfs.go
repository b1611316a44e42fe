package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FS is the set of calls that change what is on disk, or what survives a
// crash: creating and writing files, syncing them and their directories,
// renaming and removing names. Reads (opening segments and sidecar files
// to map or read them, listing directories) go to the os package directly:
// they change nothing a crash could lose.
type FS interface {
	// Create makes a new file for reading and writing, failing if name
	// exists (O_EXCL) or is a symlink.
	Create(name string, perm fs.FileMode) (File, error)
	// OpenWrite opens an existing file for reading and writing, not
	// following a symlink.
	OpenWrite(name string) (File, error)
	// OpenRead opens an existing file read-only, not following a symlink:
	// enough to Chmod and Datasync it, not to write.
	OpenRead(name string) (File, error)
	// CreateTemp makes a new file in dir with a name made of pattern and a
	// random part where pattern has a "*" (os.CreateTemp), mode 0600.
	CreateTemp(dir, pattern string) (File, error)
	// Rename renames from to to, replacing to if it exists.
	Rename(from, to string) error
	// RenameNoReplace renames from to to, failing with an error wrapping
	// fs.ErrExist if to exists.
	RenameNoReplace(from, to string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// Mkdir makes a directory.
	Mkdir(name string, perm fs.FileMode) error
	// MkdirAll makes a directory and any missing parents.
	MkdirAll(name string, perm fs.FileMode) error
	// SyncDir makes the names created, renamed and removed in dir durable.
	SyncDir(dir string) error
	// Chtimes sets a file's access and modification times (a zero time
	// leaves one unchanged).
	Chtimes(name string, atime, mtime time.Time) error
	// FSType returns the filesystem type of dir (statfs's f_type).
	FSType(dir string) (int64, error)
}

// File is a file opened for writing through an FS.
type File interface {
	io.Writer
	io.WriterAt
	io.Closer
	// Name returns the path the file was opened by.
	Name() string
	// Chmod changes the file's mode.
	Chmod(mode fs.FileMode) error
	// Datasync makes the file's data and size durable (fdatasync(2)), not
	// its name: that takes SyncDir of its directory.
	Datasync() error
	// OS returns the open file underneath, to map it or hand it to code
	// that reads.
	OS() *os.File
}

// OS is the real filesystem.
type OS struct{}

var _ FS = OS{}

const noFollow = syscall.O_NOFOLLOW | syscall.O_CLOEXEC

func (OS) Create(name string, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|noFollow, perm)
	return wrap(f, err)
}

func (OS) OpenWrite(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|noFollow, 0)
	return wrap(f, err)
}

func (OS) OpenRead(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|noFollow, 0)
	return wrap(f, err)
}

func (OS) CreateTemp(dir, pattern string) (File, error) {
	return wrap(os.CreateTemp(dir, pattern))
}

func (OS) Rename(from, to string) error { return os.Rename(from, to) }

// RenameNoReplace uses renameat2's RENAME_NOREPLACE; where the filesystem
// does not support it, a hard link and an unlink, which never replace
// either.
func (OS) RenameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		if err != nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
		}
		return nil
	}
	if err := os.Link(from, to); err != nil {
		return err
	}
	return os.Remove(from)
}

func (OS) Remove(name string) error                          { return os.Remove(name) }
func (OS) Mkdir(name string, perm fs.FileMode) error         { return os.Mkdir(name, perm) }
func (OS) MkdirAll(name string, perm fs.FileMode) error      { return os.MkdirAll(name, perm) }
func (OS) Chtimes(name string, atime, mtime time.Time) error { return os.Chtimes(name, atime, mtime) }

func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (OS) FSType(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return int64(st.Type), nil
}

// osFile is a File of the real filesystem.
type osFile struct{ *os.File }

func wrap(f *os.File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (f osFile) OS() *os.File    { return f.File }
func (f osFile) Datasync() error { return Fdatasync(f.File) }

// Fdatasync makes f's data durable (fdatasync(2), retried on EINTR). It
// goes through SyscallConn so that it holds a reference on the descriptor
// and cannot race with a concurrent Close.
func Fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = unix.Fdatasync(int(fd)); serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		// Control fails only when the file was closed first.
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: os.ErrClosed}
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
