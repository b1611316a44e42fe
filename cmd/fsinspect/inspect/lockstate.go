package inspect

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// lockFile is the name of the directory's lock file (engine/dir.go).
const lockFile = "lock"

// Lock states, as stats prints them.
const (
	lockHeld = "held by a writer"
	lockFree = "free"
)

// lockState reports whether a writer has the directory open. Today the
// engine holds an exclusive flock(2) on DIR/lock for as long as a writer has
// the directory open, so a shared flock attempt that would block means a
// writer. The attempt is made on a descriptor of its own, never waits, and
// is released at once; the lock file is never created. A writer that opens
// the directory in the microseconds the probe holds the shared lock would be
// refused with engine.ErrLocked: the probe is a snapshot, taken once.
//
// This is the one place to change when the engine moves to byte-range OFD
// locks (package lockf): F_OFD_GETLK tests a range without taking it.
func lockState(dir string) (string, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return lockFree, nil // no writer has ever opened the directory
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return "", err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		lerr = flockEINTR(int(fd), unix.LOCK_SH|unix.LOCK_NB)
		if lerr == nil {
			lerr = flockEINTR(int(fd), unix.LOCK_UN)
		}
	}); err != nil {
		return "", err
	}
	switch {
	case errors.Is(lerr, unix.EWOULDBLOCK):
		return lockHeld, nil
	case lerr != nil:
		return "", &os.PathError{Op: "flock", Path: f.Name(), Err: lerr}
	}
	return lockFree, nil
}

func flockEINTR(fd, how int) error {
	for {
		if err := unix.Flock(fd, how); err != unix.EINTR {
			return err
		}
	}
}
