// Package compaction decides how kennel keeps its directory inside the
// CacheSize budget. This part of it is the eviction policy: pure bookkeeping,
// no files, that the engine drives. It says which segment to reclaim next,
// which of that segment's records get a second chance, and where a new write
// should go.
//
// # Design
//
// The policy is S3-FIFO (Yang et al., "FIFO queues are all you need for cache
// eviction", SOSP'23) mapped onto append-only segments that are reclaimed
// whole:
//
//   - Two FIFO queues of segments. Small (10 % of the budget) takes new
//     writes; Main (the rest) takes the records that earned a second chance.
//     The engine keeps one open segment per queue and appends to the one
//     Admit names; copies made by eviction go to Main's.
//   - One counter per record, two bits, in memory only. A read (Touch) adds
//     one, saturating at 3. Reads never write to disk.
//   - The victim is the oldest segment of Small while Small is over its
//     share, else the oldest of Main. Its live records are decided one by
//     one: a Small record read at least once is copied into Main with its
//     counter reset; a Main record read since its last copy is copied forward
//     with its counter less one (lazy promotion: the copy is the only cost of
//     a hit, paid at eviction time); the rest are dropped (quick demotion:
//     most one-hit wonders leave with their Small segment).
//   - A ghost set remembers the hashes of the keys dropped recently, as many
//     as Main holds keys. A write of such a key goes straight to Main.
//   - Copy-forward is bounded: at most 7/8 of an evicted segment's live bytes,
//     the most-read records first (exactly for records of one size, by the
//     mean size otherwise), so every eviction frees space even when every
//     record was read.
//
// Three changes from the paper, each measured with the simulator in
// compaction/sim on Zipf traces with and without drifting popularity: the
// ghost set also remembers keys dropped from Main (as ARC's second ghost
// list does), Small seals its segments at an eighth of its target size
// (SegmentSize) so that whole-segment eviction tracks the target closely, and
// copy-forward is bounded as above. Larger counters, a higher Small-to-Main
// threshold and a smaller ghost set all won on static Zipf and lost more as
// soon as popularity drifted; they are not used.
//
// # What the engine stores
//
//   - Per segment, on disk: its Queue, one byte in the segment header or
//     hint, so that a reopened cache rebuilds both queues. Segment ids order
//     each queue.
//   - Per index entry, in memory: the record's slot, a uint32 returned by
//     Append, next to the segment id it already holds; the engine maps the id
//     to the *Segment that NewSegment returned.
//   - Nothing per record on disk. The policy keeps one byte per record slot
//     (two bits of counter and a dead bit) in its per-segment tables, and 16
//     bytes per ghost entry. Counters start at zero when a cache is opened:
//     the first eviction of each segment after a restart sees no reads.
//
// # Driving it
//
// Write of a key the index does not hold:
//
//	q := p.Admit(xxhash(key))
//	// append to the open segment of q, rolling at p.SegmentSize(q, max)
//	slot := seg.Append(recordBytes)
//
// Read hit: seg.Touch(entry.slot). Overwrite, delete or expiry of a record:
// seg.Kill(slot, recordBytes). When the directory is over its budget:
//
//	v := p.Victim()       // seal it if it is still open
//	e := p.Evict(v)
//	for each record of v the index still points at:
//		if d := e.Decide(slot, xxhash(key), recordBytes); d.Keep {
//			copy it to Main's open segment; mainSeg.AppendKept(recordBytes, d)
//		} else {
//			remove it from the index
//		}
//	publish the copies, then e.Done() and delete v's files
//
// # Concurrency
//
// Every method is safe for concurrent use. Segment.Touch takes no lock and
// allocates nothing; a read of a record whose counter is saturated costs one
// atomic load. The other methods serialise on one mutex, for short critical
// sections with no I/O, so the engine may call them under its own locks (the
// append lock for Admit and Append, the compaction lock for eviction). The
// policy lives in one process: reads served by other processes sharing the
// directory do not reach the counters of the process that compacts.
//
// # Measured
//
// `go run ./compaction/sim/cmd/hitratio` (64 MiB budget, 4 KiB values,
// 163,840 keys, 2M warm-up and 20M measured requests, seed 1; hit ratios in
// percent, WA = bytes copied forward per byte written):
//
//	| s   | LRU   | S3-FIFO | S3-FIFO m2 | kennel 1 MiB | kennel 2 MiB | kennel 4 MiB | OPT   | WA 1 MiB | WA 2 MiB | WA 4 MiB |
//	| 0.8 | 47.36 | 55.82   | 55.97      | 56.06        | 56.04        | 55.96        | 69.39 | 0.40     | 0.40     | 0.40     |
//	| 1.0 | 74.77 | 79.54   | 79.62      | 79.67        | 79.67        | 79.63        | 85.87 | 0.55     | 0.55     | 0.55     |
//	| 1.2 | 92.60 | 94.12   | 94.15      | 94.16        | 94.16        | 94.15        | 95.99 | 0.72     | 0.73     | 0.74     |
//
// S3-FIFO moves a key from small to main after one read, as the paper
// describes; S3-FIFO m2 after two, the default of the authors' libCacheSim.
// LRU matches Che's approximation for these traces to 0.02 points. kennel
// is at or above both S3-FIFOs in every cell but one (4 MiB segments at
// s = 0.8, 0.01 below m2), and above LRU by 1.5-8.7 points.
//
// With popularity drifting by one key every 100 requests (-drift 100)
// kennel stays 0.05-0.3 points above S3-FIFO, and both fall just below LRU
// at s = 1.2 (by 0.2-0.25 points). Drifting five times as fast (-drift 20),
// both fall 1-3.6 points below LRU, and kennel up to 0.6 points below
// S3-FIFO: like S3-FIFO it keeps a key that was read three times for up to
// three passes through Main after its reads stop.
//
// Write amplification is set by how many records are read again before
// their segment comes up, not by the segment size: 0.40, 0.55 and 0.73 bytes
// copied per byte written at s = 0.8, 1.0 and 1.2. MaxKeepFraction trades it
// for hit ratio: at 0.5 it falls to 0.18-0.27, for 0.35-1.1 points.
package compaction
