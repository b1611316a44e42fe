package lockf

import (
	"errors"
	"fmt"
	"runtime"
)

// Errors returned by this package. Check them with errors.Is: most are
// returned wrapped with the range or path they concern.
var (
	// ErrUnsupported is returned by Open when the platform or the kernel has no
	// open file description locks (anything but Linux, or Linux before 3.15).
	// It wraps errors.ErrUnsupported.
	ErrUnsupported = fmt.Errorf("kennel: open file description locks are not supported on %s/%s: %w",
		runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)

	// ErrNotRegular is returned by Open when the path names something other
	// than a regular file (a directory, a FIFO, a device).
	ErrNotRegular = errors.New("kennel: lock file is not a regular file")

	// ErrClosed is returned when a File is used after Close, by waiters that
	// Close woke, and by Held.Unlock after Close (Close already released the
	// lock).
	ErrClosed = errors.New("kennel: lock file closed")

	// ErrInvalidRange is returned when a Range has a length below 1, a negative
	// start, or an end past the largest int64.
	ErrInvalidRange = errors.New("kennel: invalid lock range")

	// ErrInvalidMode is returned when a Mode is neither Shared nor Exclusive.
	ErrInvalidMode = errors.New("kennel: invalid lock mode")

	// ErrNotHeld is returned by Held.Unlock when the lock was already released.
	ErrNotHeld = errors.New("kennel: lock not held")
)
