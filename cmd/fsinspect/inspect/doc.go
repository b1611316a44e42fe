// Package inspect implements fsinspect, the command that inspects, verifies
// and compacts a kennel cache directory, also while other processes use it.
// cmd/fsinspect is a two-line main around Main; the commands live here so
// that they can be tested and embedded.
//
// # Commands
//
// One file per subcommand, each with its test: stats.go (what the directory
// holds, its budget, which processes have it open and the shared state),
// ls.go (keys), get.go (one value or its record), dump.go (every record of
// one segment or hint file, offset by offset, seals and damage included),
// verify.go (every checksum of every file, and the shared state file; exit
// status 1 when something is damaged; verify_sidecar.go checks the sidecar
// folder) and compact.go (a compaction now, and what it reclaimed).
// lockstate.go and state.go read the lock file's locks and the shared state
// file for stats and verify; sidecar.go reads the sidecar folder and the
// descriptors of put-sidecar records for every command.
//
// Every command knows the two kinds of segment: the log's, which writers
// append to and seal with a seal record naming the next (the eviction
// policy's small queue), and those compaction writes (header flag
// compacted, the main queue), which hold copied records and kept
// tombstones, have no seal, are finished once they have a hint, and take
// ids from the same counter, so that one may lie between a log segment and
// the segment its seal names without being an orphan.
//
// Every command knows sidecar files too: a value above the writer's
// InlineLimit, or streamed in, is kept in a file of its own in the sidecars
// folder, named by the descriptor a put-sidecar record holds (name, size,
// and an xxhash64 unless the file was moved in). The engine's index says
// which record is a key's but hands no descriptor out, so the commands read
// it from the record in its segment file, looking the key up again if a
// compaction deleted that file meanwhile.
//
// # Reading a directory in use
//
// Every command but compact is read-only. stats, ls and get open the cache
// with engine.Options{ReadOnly: true}: no lock is taken and nothing is
// recovered on disk; through the shared state file the cache follows what
// the processes that have the directory open read-write append (and
// reloads when a compaction in one of them publishes), so what a command
// prints is the directory as it was while the command ran, however busy its
// writers. dump and verify read the files themselves (verify only
// checks the directory with engine.CheckDir first), because their job is to
// show what the engine would skip or refuse; verify opens the cache
// read-only only to learn which records are live, and so which sidecar
// files must be there. Segment files are mapped up to
// the size they had when they were opened: a record a writer (or a
// compaction) is appending at that moment shows as a torn tail, which verify
// reports as a warning for the log's last segment (or a segment compaction
// has not finished), never as damage; a file a compaction deletes meanwhile
// is a warning too.
//
// Which processes have the directory open, and which of its locks they
// hold, comes from the kernel: F_OFD_GETLK tests a byte range of the lock
// file without taking it (lockf.File.Holder), so the probe never stands in a
// writer's way. lockf opens the lock file read-write, so the probe opens only
// a lock file that exists (a missing one is never created), and reports the
// locks as unknown when it cannot open it. The kernel does not say which
// process holds an open file description lock. The shared state file is
// read through a read-only mapping, as the processes sharing the directory
// change it word by word.
//
// The tests prove that no command but compact changes a byte, a name or a
// modification time in the directory (requireNoChange, and kennel-hash in
// the scripts).
//
// compact must write: it opens the cache read-write, as one more writer
// among those that have it open, with engine.Options.ManualCompaction (its
// one run, no background ones), and calls Compact, which waits for another
// process's compaction. It evicts only when told a budget: the writers'
// CacheSize is recorded nowhere a tool can read it. Its sweep keeps the
// sidecar files whose path was handed out as long as the grace recorded in
// each file says.
//
// # Exit status
//
//	0  success; for verify, no problem found (warnings allowed)
//	1  the command ran and failed: key not found, damage found by verify
//	2  it could not run: bad usage, unknown command or flag, a missing
//	   argument, a directory that does not exist or is not a kennel
//	   directory; for compact, a directory it cannot open read-write
//
// Human output is aligned tables with sizes in KiB, MiB and GiB and times in
// UTC; --json prints one JSON document for scripts instead, with exact byte
// counts. Listings that can be long stream, so that they cost no memory
// however big the directory: ls flushes its table every few hundred rows,
// dump measures its columns in a first pass over the mapped file and prints
// in a second, and both write JSON arrays element by element.
package inspect
