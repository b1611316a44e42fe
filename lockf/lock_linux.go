//go:build linux

package lockf

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// This file is the only one that talks to the kernel. Every call here is
// non-blocking (F_OFD_SETLK, never F_OFD_SETLKW), and every call is retried on
// EINTR.

func sysOpen(path string, perm os.FileMode) (int, error) {
	const flags = unix.O_RDWR | unix.O_CREAT | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NOCTTY
	var fd int
	for {
		var err error
		fd, err = unix.Open(path, flags, uint32(perm.Perm()))
		if err == nil {
			break
		}
		if err != unix.EINTR {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		sysClose(fd)
		return -1, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		sysClose(fd)
		return -1, fmt.Errorf("%w: %s", ErrNotRegular, path)
	}
	// Probe once for OFD lock support: kernels before 3.15 answer EINVAL to
	// F_OFD_GETLK, and it is better to refuse at Open than at the first Lock.
	if _, _, err := sysGetLock(fd, AppendRange()); err != nil {
		sysClose(fd)
		return -1, fmt.Errorf("%s: %w", path, err)
	}
	return fd, nil
}

func fstat(fd int, st *unix.Stat_t) error {
	for {
		err := unix.Fstat(fd, st)
		if err != unix.EINTR {
			return err
		}
	}
}

// sysClose closes fd, which releases every OFD lock taken through it: the
// descriptor is the last reference to its open file description because it
// is opened O_CLOEXEC and never duplicated.
func sysClose(fd int) error {
	// close(2) must not be retried on EINTR on Linux: the descriptor is
	// released even when the call is interrupted, and a retry could close a
	// descriptor another goroutine has just been given.
	return unix.Close(fd)
}

func flock(r Range, typ int16) unix.Flock_t {
	// l_pid must be 0 for OFD commands; the kernel returns EINVAL otherwise.
	return unix.Flock_t{Type: typ, Whence: io.SeekStart, Start: r.Start, Len: r.Len}
}

func fcntl(fd int, cmd int, lk *unix.Flock_t) error {
	for {
		err := unix.FcntlFlock(uintptr(fd), cmd, lk)
		if err != unix.EINTR {
			return err
		}
	}
}

// sysTryLock tries to set a lock of the given mode on r without waiting. It
// reports false, with a nil error, when another open file description holds a
// conflicting lock. Locks already held on r through fd itself never conflict:
// the kernel converts them to the new mode.
func sysTryLock(fd int, r Range, mode Mode) (bool, error) {
	typ := int16(unix.F_RDLCK)
	if mode == Exclusive {
		typ = unix.F_WRLCK
	}
	lk := flock(r, typ)
	switch err := fcntl(fd, unix.F_OFD_SETLK, &lk); err {
	case nil:
		return true, nil
	case unix.EAGAIN, unix.EACCES: // POSIX allows either for "held by someone else"
		return false, nil
	default:
		return false, kernelError("F_OFD_SETLK", r, err)
	}
}

// sysUnlock releases whatever lock fd holds on r.
func sysUnlock(fd int, r Range) error {
	lk := flock(r, unix.F_UNLCK)
	if err := fcntl(fd, unix.F_OFD_SETLK, &lk); err != nil {
		return kernelError("F_OFD_SETLK(F_UNLCK)", r, err)
	}
	return nil
}

// sysGetLock asks the kernel whether a lock held through another open file
// description conflicts with an exclusive lock on r, and if so which mode the
// first such lock has.
func sysGetLock(fd int, r Range) (Mode, bool, error) {
	lk := flock(r, unix.F_WRLCK)
	if err := fcntl(fd, unix.F_OFD_GETLK, &lk); err != nil {
		return 0, false, kernelError("F_OFD_GETLK", r, err)
	}
	switch lk.Type {
	case unix.F_UNLCK:
		return 0, false, nil
	case unix.F_RDLCK:
		return Shared, true, nil
	default:
		return Exclusive, true, nil
	}
}

func kernelError(op string, r Range, err error) error {
	if errors.Is(err, unix.EINVAL) {
		// Valid ranges and l_pid 0 are checked before every call, so EINVAL
		// means the kernel does not know the OFD commands.
		return fmt.Errorf("%s on %v: %w (%w)", op, r, ErrUnsupported, err)
	}
	return fmt.Errorf("%s on %v: %w", op, r, err)
}
