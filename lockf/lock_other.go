//go:build !linux

package lockf

import "os"

// Open file description locks are Linux-only (F_OFD_SETLK arrived in 3.15).
// Elsewhere Open fails with ErrUnsupported and nothing else is reachable; the
// stubs below exist so that the module builds on every platform.

func sysOpen(path string, perm os.FileMode) (int, error) {
	return -1, &os.PathError{Op: "open", Path: path, Err: ErrUnsupported}
}

func sysClose(fd int) error { return ErrUnsupported }

func sysTryLock(fd int, r Range, mode Mode) (bool, error) { return false, ErrUnsupported }

func sysUnlock(fd int, r Range) error { return ErrUnsupported }

func sysGetLock(fd int, r Range) (Mode, bool, error) { return 0, false, ErrUnsupported }
