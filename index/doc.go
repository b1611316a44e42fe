// Package index is kennel's in-memory index: for every key, where its newest
// record lives (segment, offset, length), its expiry and its kind. It is an
// ordered B-tree (github.com/google/btree's generic BTreeG) so that prefix
// scans come in key order, and it is rebuilt on every open from hint files
// and segment scans: nothing of it is stored.
//
// # Cost per key
//
// Entries are stored by value in the tree's nodes, 40 bytes each, and the
// key's bytes in one allocation of their own: for a 16-byte key that is 56
// bytes before the tree's own overhead (nodes are on average about
// three-quarters full). The engine's benchmarks report heap bytes per key
// at 1M keys.
//
// # Concurrency
//
// Read operations (Get, Len, Ascend, AscendPrefix, Clone) are safe for
// concurrent use with each other; writes (Put, Delete) are not safe with
// anything else. Clone is copy-on-write: the clone and the original share
// nodes until either is written, so a snapshot costs O(1) and a scan of it
// never blocks writers. (Clone writes a field of the original, so callers
// serialise Clone calls among themselves.)
package index
