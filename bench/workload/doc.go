// Package workload holds the benchmark workloads kbench runs against every
// store. Each workload is a Config struct whose Run method drives one open
// store.Store and returns a Result of named metrics; nothing is kept in
// package state, so workloads can run one after another in one process.
//
// Keys and values are generated from an index, so that any key can be named
// without keeping a table: Key(i) is 16 bytes, the first 8 a scrambled copy
// of i (so that inserting 0..N-1 in order is random order for a sorted
// store) and the last 8 i itself (so that keys never collide). A value
// starts with its index, which lets a workload check every value it reads at
// the cost of one comparison. The keys of absent lookups are Key(i) for i at
// or above N, which were never written.
//
// Latencies are sampled: every 16th operation is timed, which costs two clock
// reads per 16 operations and gives thousands of samples for the
// percentiles.
package workload
