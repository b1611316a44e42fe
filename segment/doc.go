// Package segment is kennel's on-disk log: segment files of checksummed
// records, appended and never rewritten, and hint files that list a sealed
// segment's keys so that opening a cache reads no values. It knows nothing
// of what keys mean; the engine gives records their meaning.
//
// # Files
//
// A segment file is a 32-byte header (magic, format version, id, checksum)
// followed by records. Each record carries its kind (put, delete, or
// put-sidecar), a codec byte, a sequence number, an expiry, its key and its
// value, and an xxhash64 checksum over all of them; its first byte is a
// non-zero marker, so a zero-filled tail never decodes as a record. FORMAT.md
// in this directory draws every byte; the constants marked as wire format in
// format.go must not change without a new FormatVersion.
//
// # Reading
//
// DecodeRecord checks a record completely (marker, kind, codec, lengths
// bounded before use, checksum) and allocates nothing: Key and Value alias
// the input. Scanner walks a file's records and stops at the first one that
// does not decode, telling where and why: ErrTruncated and ErrZeroed mean the
// data simply ends (a torn tail: recovery), ErrCorrupt means damage.
// Resync finds the next whole record after damage.
//
// Map maps a segment read-only (mmap, MAP_SHARED). kennel reads values through
// mappings rather than pread because a read is then a memory copy: no system
// call, no allocation beyond the returned value. BenchmarkRead measures both
// on a 100-byte value: on this project's 2-core machine the mapped read took
// a third of the time of pread (median 435 ns against 1309 ns, with the
// machine busy). Bytes written to a file with
// pwrite are visible through a shared mapping at once, so the active segment
// is mapped at its full capacity when it is created and read while it grows.
//
// # Writing
//
// Writer appends: records are encoded into a buffer and written with one
// pwrite per Flush, at the offset just past the last whole record, so a
// failed write is overwritten by the next one. Create makes a segment with
// O_EXCL, syncs its header and its directory before it is used;
// WriteFileAtomic publishes hints by temp file, fsync, rename, fsync of the
// directory.
//
// # Concurrency
//
// DecodeRecord, DecodeHint and a Map's reads are safe for concurrent use. A
// Writer, a Scanner and a HintBuilder belong to one goroutine at a time.
package segment
