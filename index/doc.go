// Package index is kennel's in-memory index: for every key, where its newest
// record lives (segment, offset, length), its expiry and its kind. It is an
// ordered B-tree (github.com/google/btree's generic BTreeG) so that prefix
// scans come in key order, and it is rebuilt on every open from hint files
// and segment scans: nothing of it is stored.
//
// # Cost per key
//
// Entries are stored by value in the tree's nodes, 56 bytes each, holding
// the first 20 bytes of the key inline: a lookup's comparisons rarely leave
// the node, and a key of up to 20 bytes costs no allocation of its own.
// Longer keys keep their remaining bytes in one allocation. With the tree's
// own overhead (nodes are partly empty) that is 69 heap bytes per 16-byte
// key at 1M keys (BenchmarkHeapPerKey; see Degree for how it was chosen).
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
