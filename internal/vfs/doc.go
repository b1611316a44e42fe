// Package vfs is the seam between kennel and the filesystem calls that
// decide what survives a crash: creating, writing and syncing files,
// creating, renaming and removing names, and syncing directories. The
// engine and the segment package make those calls through an FS; reads
// (mapping segments, reading sidecar files, listing folders) go to the os
// package directly, since they change nothing a crash could lose.
//
// Three implementations:
//
//   - OS, the real filesystem, which production uses. A call through the
//     seam costs one interface dispatch beside a system call.
//   - CrashFS, a strict filesystem for crash tests. It keeps only what was
//     made durable: a file's bytes up to its last Datasync (plus, as asked,
//     nothing, a prefix, zeros or garbage of the bytes written after), and
//     names created, renamed or removed only once their directory was
//     synced. It works on real files, so the engine maps them as it does
//     in production, and rewrites them to what a power cut would have left
//     when the test reboots it. A write over bytes already synced keeps the
//     old bytes until the next Datasync, and a crash puts them back, as a
//     torn in-place write on a disk would.
//   - FaultFS, an error injector: the Nth call fails with the errno chosen
//     (EIO, ENOSPC), once or for good, and a failing write writes half its
//     bytes first. TypeFS reports another filesystem type, to exercise the
//     refusal of network filesystems on a machine that has none.
//
// The engine takes its FS from an unexported option that only its tests
// set, so a program cannot run a cache on a test filesystem by mistake.
package vfs
