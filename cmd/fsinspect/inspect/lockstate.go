package inspect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kennel-cache/kennel/lockf"
)

// lockFile is the name of the directory's lock file (engine/dir.go).
const lockFile = "lock"

// What the lock probe says of the users range (lockReport.Open).
const (
	openNone      = "no"         // no process has the directory open read-write
	openShared    = "read-write" // one or more processes have it open read-write
	openExclusive = "exclusive"  // one process has it open alone (Options.Exclusive, or its first opener recovering it)
	lockUnknown   = "unknown"    // the probe could not run: see lockReport.Error
)

// What the lock probe says of the append and compaction locks.
const (
	lockFree = "free"
	lockHeld = "held"
)

// lockReport is what the lock probe found: which of the directory's named
// byte-range locks (package lockf) processes hold. It is part of stats' JSON
// output.
type lockReport struct {
	// Open says whether processes have the directory open read-write (the
	// users range): "no", "read-write" (held shared, by one process or
	// more), "exclusive" (held exclusively) or "unknown".
	Open string `json:"open"`
	// Opening says a process is opening the directory read-write (the open
	// range): joining it, or recovering it if it is the first.
	Opening bool `json:"opening"`
	// Append and Compaction are "free", "held" or "unknown".
	Append     string `json:"append"`
	Compaction string `json:"compaction"`
	// Error says why the locks are unknown.
	Error string `json:"error,omitempty"`
}

func (l lockReport) known() bool { return l.Open != lockUnknown }

// open reports whether some process has the directory open read-write.
func (l lockReport) open() bool { return l.Open == openShared || l.Open == openExclusive }

func unknownLocks(err error) lockReport {
	return lockReport{Open: lockUnknown, Append: lockUnknown, Compaction: lockUnknown, Error: err.Error()}
}

// lockState asks the kernel which of dir's named locks other processes hold:
// F_OFD_GETLK (lockf.File.Holder) tests a range without taking it, so the
// probe never holds a lock that a process could find in its way. It cannot
// say which process holds a lock: the kernel reports no PID for open file
// description locks.
//
// lockf opens the lock file read-write and would create a missing one, so
// the probe first makes sure it exists: a directory without one has never
// been opened read-write by a kennel that locks this way, and the probe
// leaves it so. A lock file the probe cannot open read-write (permissions,
// a file of another type) makes the state unknown, not an error: stats still
// has everything else to say.
func lockState(dir string) lockReport {
	path := filepath.Join(dir, lockFile)
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return lockReport{Open: openNone, Append: lockFree, Compaction: lockFree}
	case err != nil:
		return unknownLocks(err)
	case !fi.Mode().IsRegular():
		return unknownLocks(fmt.Errorf("%s is not a regular file", path))
	}
	f, err := lockf.Open(path, fi.Mode().Perm())
	if err != nil {
		return unknownLocks(fmt.Errorf("cannot open the lock file read-write: %w", err))
	}
	defer f.Close()

	held := func(r lockf.Range) (lockf.Mode, bool) {
		if err != nil {
			return 0, false
		}
		var (
			m  lockf.Mode
			ok bool
		)
		m, ok, err = f.Holder(r)
		return m, ok
	}
	r := lockReport{Open: openNone, Append: lockFree, Compaction: lockFree}
	if m, ok := held(lockf.UsersRange()); ok {
		r.Open = openShared
		if m == lockf.Exclusive {
			r.Open = openExclusive
		}
	}
	_, r.Opening = held(lockf.OpenRange())
	if _, ok := held(lockf.AppendRange()); ok {
		r.Append = lockHeld
	}
	if _, ok := held(lockf.CompactionRange()); ok {
		r.Compaction = lockHeld
	}
	if err != nil {
		return unknownLocks(err)
	}
	return r
}

// describeOpen is the stats line for l.Open.
func describeOpen(l lockReport, dir string) string {
	var s string
	switch l.Open {
	case openNone:
		s = "not read-write by any process"
	case openShared:
		// Where helpful only: who has it open is the first question, and
		// the lock cannot answer it. The read-write users are exactly the
		// processes that have the lock file open.
		s = fmt.Sprintf("read-write, by one or more processes (OFD locks carry no PID: 'fuser -v %s' lists them)",
			filepath.Join(dir, lockFile))
	case openExclusive:
		if l.Opening {
			return "read-write, by one process alone, which is still opening it (recovering the directory)"
		}
		s = "read-write, by one process alone (Options.Exclusive)"
	default:
		return fmt.Sprintf("unknown (%s)", l.Error)
	}
	if l.Opening {
		s += "; a process is opening it"
	}
	return s
}

// describeAppend is the stats line for l.Append.
func describeAppend(l lockReport) string {
	switch {
	case l.Append == lockHeld && l.Open == openExclusive && !l.Opening:
		return "held for good by the exclusive process"
	case l.Append == lockHeld:
		return "held: a process is appending"
	}
	return l.Append
}

// describeCompaction is the stats line for l.Compaction.
func describeCompaction(l lockReport) string {
	if l.Compaction == lockHeld {
		return "held: a process is compacting"
	}
	return l.Compaction
}
