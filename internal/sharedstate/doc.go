// Package sharedstate is the small file that every process using a cache
// directory maps into memory: the published end of the log, the directory's
// generation, and the counters that appenders in different processes must
// share (sequence numbers, segment ids). It is the "shared state file" of the
// multi-process protocol in DESIGN.md.
//
// # Why a mapped file
//
// Readers in every process must learn, before each read, whether another
// process appended since they last looked. A mapped page makes that one
// atomic 64-bit load, with no system call: MAP_SHARED mappings of one file
// share the page cache's physical page, so an atomic store by one process is
// seen by an atomic load in another. The published position packs the active
// segment's id and the end of its last published record into one word, so a
// reader never sees a new segment with an old end or the reverse.
//
// # Who writes what
//
// Only the holder of the append lock changes the position, the sequence and
// segment counters and the writing flag; it sets the flag before it writes
// past the published end and clears it after it publishes, so the next holder
// knows when the previous one died in between (its bytes past the end are
// then sealed off, never read). The first process to open a directory
// (nobody else has it open) rebuilds everything from the segments and calls
// Init, which bumps the generation: a read-only process that mapped the file
// earlier sees the new generation and reloads. Compaction will bump the
// generation when it publishes rewritten segments.
//
// # Durability
//
// The file is never fsynced and need not be: it describes the segments, which
// are the truth. After a machine crash its contents may be stale or lost; the
// first process to open the directory afterwards rebuilds it from the
// segments. Its header (magic, version, checksum) is checked on every open,
// and a bad one is rewritten by the first opener, never trusted.
package sharedstate
