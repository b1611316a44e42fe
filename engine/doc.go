// Package engine is kennel's public API: a persistent key-value cache in one
// directory, safe for many goroutines and many processes.
//
//	c, err := engine.Open("/var/cache/myapp", engine.Options{DefaultTTL: time.Hour})
//	...
//	defer c.Close()
//	err = c.Set([]byte("user:42"), data)
//	v, err := c.Get([]byte("user:42")) // errors.Is(err, engine.ErrNotFound) on a miss
//
// # Design
//
// Values live in append-only segment files (package segment); an in-memory
// B-tree (package index) maps each key to its newest record. Open rebuilds
// the index from each sealed segment's hint file, or by scanning the segment
// when it has none, then appends to the newest segment. When the active
// segment reaches Options.SegmentSize it is synced, sealed (never written
// again) and a new one started; its hint file is written in the background.
//
// Reads take the index lock shared, look the key up, and copy the value out
// of the segment's read-only memory mapping after checking the record's
// checksum and key: a Get costs no system call and one allocation (the
// returned value). Reads never wait for each other; they wait for a writer
// only while it applies a written group to the index, a few microseconds.
//
// Writes are group-committed: each writer queues its request, and whoever
// takes the write lock first writes every queued request with one pwrite
// (and, under SyncAlways, one fdatasync), then applies them to the index.
// Concurrent writers therefore share the system call and sync costs.
//
// # Durability
//
// Every record carries a checksum and a sequence number. A crash leaves at
// worst a torn tail on the active segment: Open keeps every whole record
// before it, seals the segment there (its hint records the length, nothing
// is truncated) and starts a new one. Damage found inside a sealed segment
// is reported (Stats.Corruptions, the Logger) and skipped; the records after
// it are kept where a whole record can be found again. A Get never returns a
// value whose checksum or key does not match: it returns ErrCorrupt.
//
// What a power cut may lose depends on Options.Sync: nothing that a write
// under SyncAlways returned; under SyncInterval, the writes of the last
// interval; under SyncNever, anything since the last Sync, Close or segment
// roll. A process crash (kill -9) loses nothing under any policy: written
// records are in the kernel's page cache.
//
// # Concurrency and lifetime
//
// All methods are safe for concurrent use. Values returned by Get and passed
// to Scan's callback are the caller's to keep. Scan and Keys iterate a
// copy-on-write snapshot of the index: writes made meanwhile neither block
// them nor appear in them. Lock order inside the engine: writeMu (the log),
// then mu (index and mappings).
//
// Many processes may open one directory read-write at once (share.go holds
// the protocol of DESIGN.md): appends take the append lock of the lock file
// and publish the log's new end in the shared state file; every read first
// compares that end with what the index has seen (two atomic loads) and
// reads the records other processes appended. Options.ReadOnly takes no
// lock and writes nothing; Options.Exclusive keeps the append lock for the
// process's lifetime.
//
// # Compaction
//
// The log's segments are the small queue of an S3-FIFO eviction policy
// (package compaction). When writes take the directory past
// Options.CacheSize, a background goroutine takes the compaction lock and
// reclaims whole segments, oldest first per queue: the records read since
// they were written are copied into segments of the main queue (written
// only by compaction, outside the log), the others are dropped. Segments
// mostly dead (overwritten, deleted, expired) are rewritten even within the
// budget; Compact does it for every segment on demand. Writes wait while the
// directory is over its budget, so the budget holds however fast they come.
//
// Copies keep their sequence numbers, so a write that races with a copy
// wins on every rebuild, and the index moves an entry only under its lock,
// while it still points at the record copied. A key's newest record is
// dropped without a tombstone only when no older put of the key is left on
// disk (Entry.Older counts them), so an older value never comes back on the
// next open. The copies are synced before the old segment is deleted;
// a compaction killed at any point leaves at worst duplicates, which the
// next open resolves by sequence number and the next compaction reclaims.
// Other processes reload the directory when the run publishes a new
// generation.
package engine
