// Package engine is kennel's public API: a persistent key-value cache in one
// directory, safe for many goroutines.
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
// One process at a time may open a directory for writing (a flock on its
// lock file enforces it); Options.ReadOnly opens a snapshot without the lock,
// for inspection while a writer runs.
package engine
