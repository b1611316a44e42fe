// Package lockf provides shared and exclusive locks on byte ranges of one
// lock file, excluding both the goroutines of a process and other processes.
// A kennel cache directory has one lock file; its byte ranges are the append
// lock, the compaction lock and one lock per key for GetOrCreate (DESIGN.md,
// "Multi-process protocol" and "GetOrCreate").
//
// # Basics
//
// Open the lock file once per process and share the *File among goroutines:
//
//	f, err := lockf.Open(filepath.Join(dir, "lock"), 0o600)
//	...
//	h, err := f.Lock(ctx, lockf.KeyRange(key), lockf.Exclusive)
//	if err != nil {
//		return err // ctx done, File closed, or a system call failed
//	}
//	defer h.Unlock()
//
// A Range is a name, not data: the file stays empty, and locking offset 2^40
// writes nothing. Ranges always have a length of at least one byte, because
// fcntl reads a length of 0 as "to the end of the file" and would lock every
// key at once. The file is split in two regions, fixed by the on-disk
// protocol: [0, ReservedLen) for named engine locks (AppendRange at offset 0,
// CompactionRange 1, OpenRange 2, UsersRange 3, SidecarRange 4), and KeyRange's one-byte ranges from
// KeyRegionStart on, placed by xxhash64 of the key. Two keys may share a byte;
// that only makes them wait for each other (false sharing).
//
// # Why open file description locks
//
// Linux has three kinds of file locks, and only one fits:
//
//   - flock(2) locks the whole file: one lock per file, so per-key locks
//     would need a file per key, created and never safely deleted.
//   - Classic POSIX fcntl locks (F_SETLK) have byte ranges but belong to the
//     process, not to a descriptor. Closing any descriptor of the file, for
//     example one that library code opened to read it, silently drops every
//     lock the process holds on it, and two goroutines locking the same range
//     both succeed. Neither can be tolerated in a library.
//   - Open file description (OFD) locks (F_OFD_SETLK, Linux 3.15) have byte
//     ranges and belong to the open file description: they survive other
//     descriptors of the same file being opened and closed, and two Files
//     opened separately exclude each other even in the same process.
//
// OFD locks still do not exclude goroutines that share one descriptor: to the
// kernel they are one owner. So each File keeps an in-process table, keyed by
// range, of the goroutines owning or waiting for each range. A goroutine first
// becomes an owner in the table, then takes the kernel lock: the first owner
// takes it and the last one releases it, and readers in one process share one
// kernel shared lock. Waiters within the process queue in arrival order and
// are woken as soon as the range is free, without polling. Entries are removed
// when no goroutine holds or waits for their range, so the table does not
// grow with the number of keys ever locked.
//
// Waiting for another process never blocks in the kernel: F_OFD_SETLKW would
// pin an OS thread for the whole wait and cannot be cancelled. Lock polls
// F_OFD_SETLK instead, with exponential backoff from 50µs to 10ms with jitter,
// and returns as soon as its context is done. Every system call is retried on
// EINTR.
//
// # Concurrency contract
//
// All methods of File and Held are safe for concurrent use. A Held may be
// released by any goroutine, once. Within one File:
//
//   - Exclusive excludes every other holder of the range; Shared excludes
//     only Exclusive. A waiting Exclusive request holds back Shared requests
//     that arrive after it, so a stream of readers cannot starve a writer.
//   - Ranges that overlap without being equal exclude each other whatever
//     their modes, because the kernel merges the locks of one description
//     (releasing a sub-range would punch a hole in a lock another goroutine
//     holds). The engine's ranges are all one byte long, so this never
//     arises there; the overlap check costs nothing while no range in use is
//     longer than one byte.
//   - Lock respects cancellation of its context both while queued behind
//     other goroutines and while polling for another process; the error
//     wraps ctx.Err(). Close wakes all waiters with ErrClosed and releases
//     every lock of the File.
//
// Between processes, or between Files, exclusion comes from the kernel and has
// no fairness: a waiter polls, and a process that releases and retakes a lock
// in a tight loop can keep a poller waiting.
//
// # Caveats
//
// The kernel releases a process's locks when it exits or dies, even by
// SIGKILL, so a crashed holder never leaves a key locked. The lock file's
// descriptor is close-on-exec, so child processes do not inherit its locks.
//
// Holder tells whether another description holds a lock on a range, but not
// which process: for OFD locks the kernel reports l_pid as -1.
//
// These locks are only as good as the filesystem's. On network filesystems
// (NFS, CIFS/SMB, many FUSE filesystems) byte-range locks are emulated, lost
// on server restart or lease expiry, or silently local to one machine; the
// engine must refuse such directories unless the user opts in (DESIGN.md,
// multi-process rule 7).
//
// OFD locks exist on Linux only. On other platforms Open returns an error
// wrapping ErrUnsupported (and errors.ErrUnsupported), so that the module
// still builds everywhere.
package lockf
