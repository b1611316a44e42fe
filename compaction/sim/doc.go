// Package sim is a trace-driven simulator that measures the hit ratio of
// kennel's eviction policy (package compaction) against exact LRU, S3-FIFO
// and Belady's MIN at the same byte budget.
//
// A trace is a deterministic stream of requests (a seed picks it) whose keys
// follow a Zipf popularity of any exponent s >= 0, drawn with the alias
// method, optionally with the popularity drifting over time. Every value has
// the same size. The cache is look-aside: a miss inserts the key. The first
// Warmup requests fill the cache and are not counted.
//
// The item-granular policies work on per-key arrays:
//
//   - LRU: exact, by bytes.
//   - S3-FIFO: as in the SOSP'23 paper and the authors' libCacheSim: small
//     FIFO of 10 % of the bytes, main FIFO run as a CLOCK with 2-bit
//     counters, ghost FIFO of keys evicted from small worth main's bytes.
//   - OPT: Belady's MIN, optimal for values of one size, with bypass.
//
// kennel is simulated at segment granularity, the way the engine will drive
// compaction.Policy: one open segment per queue, sealed when full (Small's
// at Policy.SegmentSize), the budget counting every byte of every segment
// (open ones too), and space reclaimed only by evicting a whole segment,
// whose kept records are copied into Main at the cost of bytes written
// (reported as write amplification). As in the engine, every write goes to
// Small, the write log: one the ghost set admits to Main is appended there
// with Segment.AppendAdmitted and reaches Main when its segment is evicted,
// and only those copies are written to Main. The traces never overwrite or
// delete a cached key, so no segment has dead bytes and Policy.Merge is not
// exercised. Record headers and hint files are not modelled.
//
// Each replay is single-threaded; RunTable runs replays in parallel.
package sim
