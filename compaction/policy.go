package compaction

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// ErrConfig is returned by New when a Config field is out of range.
var ErrConfig = errors.New("kennel: invalid eviction config")

// Queue names the FIFO queue a segment belongs to. The engine persists it with
// the segment (one byte in the segment header or hint), so that a reopened
// cache puts every segment back into the queue it came from.
type Queue uint8

const (
	// Small is the probationary queue: every new write lands here. In the
	// engine it is the write log, which all processes sharing the directory
	// append to.
	Small Queue = iota
	// Main holds the records that earned a second chance (read while in
	// Small, or read again while in Main, or admitted by the ghost set). Only
	// the compactor writes its segments, copying records into them.
	Main

	numQueues = 2
)

func (q Queue) String() string {
	switch q {
	case Small:
		return "small"
	case Main:
		return "main"
	}
	return fmt.Sprintf("Queue(%d)", uint8(q))
}

// Every record slot has one counter byte, kept in memory only (never on disk):
//
//	  bit 7     bits 6..2    bits 1..0
//	+--------+------------+-----------+
//	|  dead  |   unused   |   freq    |
//	+--------+------------+-----------+
//
// freq counts reads since the record was written or last copied, saturating at
// maxFreq. dead is set by Kill, and by eviction once a slot has been decided.
const (
	freqMask uint8 = 0x03
	deadBit  uint8 = 0x80

	// maxFreq is where the read counter saturates: 2 bits, as in S3-FIFO. It
	// is also the number of passes through Main a record survives without
	// being read again. compaction/sim measured the alternatives: a cap of 2
	// loses 0.05-0.3 points on static Zipf, enough to fall below S3-FIFO at
	// s = 0.8, though it gains 0.2-1.3 as soon as popularity drifts; caps of
	// 5 and 7 gain 0.03-0.36 on static Zipf but lose 0.4-2.5 with drift,
	// because Main then forgets once-hot keys too slowly.
	maxFreq uint8 = 3

	// promoteFreq is the counter a Small record needs to be copied into
	// Main: one read while on probation (S3-FIFO's move-to-main threshold
	// 1). Two reads, libCacheSim's later default, lost 0.01-0.05 points on
	// static Zipf in compaction/sim, and 0.2-1.1 with drifting popularity.
	promoteFreq uint8 = 1
)

// Defaults, each measured with compaction/sim (see doc.go).
const (
	// DefaultSmallFraction is the share of the budget Small aims at. 10 % is
	// the value S3-FIFO found to generalise across 6594 traces.
	DefaultSmallFraction = 0.10

	// DefaultMaxKeepFraction bounds how much of an evicted segment's live
	// bytes may be copied forward, so that eviction always makes progress: a
	// segment whose every record was read still frees an eighth of itself.
	// Item-granular S3-FIFO may cycle through Main until it finds an unread
	// object; a segment cannot, and 7/8 keeps the hottest records while
	// bounding the write amplification of one eviction to 7 bytes copied per
	// byte freed.
	DefaultMaxKeepFraction = 7.0 / 8.0
)

// Config sets up a Policy. The zero value of every field but Budget means its
// default.
type Config struct {
	// Budget is the number of bytes the segments may occupy together. It
	// sets the size of Small (SmallFraction of it) and of the ghost set;
	// deciding when the directory is over its budget is the engine's job.
	Budget int64

	// SmallFraction is the share of Budget the Small queue aims at, in
	// (0, 1). Zero means DefaultSmallFraction.
	SmallFraction float64

	// MaxKeepFraction is the largest share of an evicted segment's live
	// bytes that may be copied forward, in (0, 1). Zero means
	// DefaultMaxKeepFraction.
	MaxKeepFraction float64

	// GhostEntries fixes the number of key hashes the ghost set remembers.
	// Zero means as many as Main holds keys, estimated from Main's share of
	// the budget and the average live record size.
	GhostEntries int
}

func (c *Config) ensureDefaults() {
	if c.SmallFraction == 0 {
		c.SmallFraction = DefaultSmallFraction
	}
	if c.MaxKeepFraction == 0 {
		c.MaxKeepFraction = DefaultMaxKeepFraction
	}
}

func (c *Config) validate() error {
	switch {
	case c.Budget <= 0:
		return fmt.Errorf("%w: budget %d is not positive", ErrConfig, c.Budget)
	case !(c.SmallFraction > 0 && c.SmallFraction < 1):
		return fmt.Errorf("%w: small fraction %v is not in (0, 1)", ErrConfig, c.SmallFraction)
	case !(c.MaxKeepFraction > 0 && c.MaxKeepFraction < 1):
		return fmt.Errorf("%w: max keep fraction %v is not in (0, 1)", ErrConfig, c.MaxKeepFraction)
	case c.GhostEntries < 0 || c.GhostEntries > maxGhost:
		return fmt.Errorf("%w: ghost entries %d is not in [0, %d]", ErrConfig, c.GhostEntries, maxGhost)
	}
	return nil
}

// Stats counts what the policy did. Bytes are those the engine passed to
// Append and Decide.
// The arrays are indexed by Queue.
type Stats struct {
	Segments  [2]int   // segments in each queue, not counting those being evicted
	Bytes     [2]int64 // bytes appended to them, dead or alive
	LiveBytes [2]int64 // bytes of their live records
	Records   [2]int   // their live records

	Ghost     int   // key hashes in the ghost set
	GhostHits int64 // writes Admit sent to Main

	Promoted, PromotedBytes   int64 // Small records copied into Main
	Reinserted, ReinsertBytes int64 // Main records copied forward in Main
	Dropped, DroppedBytes     int64 // records evicted
	Forced                    int64 // of Dropped: read, but over the keep bound
	Merged, MergedBytes       int64 // records copied into Main by Merge
}

// Policy decides which segment to reclaim next and which of its records to
// keep. Its methods are safe for concurrent use; Segment.Touch never blocks.
type Policy struct {
	smallTarget int64   // bytes Small aims at
	mainTarget  int64   // Budget - smallTarget
	maxKeep     float64 // Config.MaxKeepFraction
	fixedGhost  int     // Config.GhostEntries

	mu     sync.Mutex // protects following fields and Segment fields marked "p.mu"
	queues [numQueues]fifo
	ghost  ghost
	stats  Stats
}

// New returns a policy for the given config, or an error wrapping ErrConfig.
func New(cfg Config) (*Policy, error) {
	cfg.ensureDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	small := int64(float64(cfg.Budget) * cfg.SmallFraction)
	p := &Policy{
		smallTarget: small,
		mainTarget:  cfg.Budget - small,
		maxKeep:     cfg.MaxKeepFraction,
		fixedGhost:  cfg.GhostEntries,
	}
	p.ghost.setLimit(cfg.GhostEntries)
	return p, nil
}

// smallSegments is how many segments Small should span at its target size.
// A segment leaves Small whole, so Small's size saws between its target
// and the target less a segment, and every eviction leaves up to a segment
// of the budget unused until appends fill it; eight segments keep both
// within an eighth of Small. With a 64 MiB budget, sealing Small's segments
// at 0.8 MiB instead of at the 1-4 MiB of Main's gained up to 0.05 points on
// static Zipf in compaction/sim and up to 0.43 with drifting popularity, the
// most with the largest segments.
const smallSegments = 8

// minSmallSegment bounds the advice of SegmentSize from below, so that a tiny
// budget does not turn into a file per record.
const minSmallSegment = 64 << 10

// SegmentSize advises where the engine should seal the open segment of queue
// q, given the largest segment size it allows: that size for Main, and for
// Small an eighth of Small's target if that is smaller (but at least 64 KiB).
// A record larger than the advice gets a segment of its own.
func (p *Policy) SegmentSize(q Queue, limit int64) int64 {
	if q != Small {
		return limit
	}
	return min(limit, max(p.smallTarget/smallSegments, minSmallSegment))
}

// Segment states.
const (
	stateOpen     = iota // in its queue, may be appended to
	stateEvicting        // handed out by Evict
	stateGone            // evicted; the engine may delete the file
)

// Segment is the policy's view of one segment file: its queue, its size and
// one counter byte per record slot.
type Segment struct {
	p     *Policy
	id    uint64
	queue Queue

	// Touch reads dir without a lock; Append grows it under p.mu.
	dir atomic.Pointer[[]*chunk]

	state     int   // p.mu
	slots     int   // p.mu; slots handed out by Append
	bytes     int64 // p.mu; every byte appended
	liveBytes int64 // p.mu
	live      int   // p.mu; live records
}

// Counter bytes live in chunks that never move once allocated, so a Touch
// racing with an Append that grows the directory of chunks still lands in the
// table the policy will read.
const (
	chunkShift = 8 // 256 slots, 256 bytes: small enough for a 1 MiB segment of 4 KiB values
	chunkSlots = 1 << chunkShift
)

type chunk [chunkSlots / 4]atomic.Uint32 // four counter bytes per word

// NewSegment registers a segment the engine created for queue q, as the
// newest of that queue. On open, the engine registers the sealed segments of
// each queue oldest first, then calls Append for each of their live records.
func (p *Policy) NewSegment(id uint64, q Queue) *Segment {
	if q >= numQueues {
		panic(fmt.Sprintf("compaction: NewSegment(%d, %v): no such queue", id, q))
	}
	s := &Segment{p: p, id: id, queue: q}
	empty := []*chunk{}
	s.dir.Store(&empty)
	p.mu.Lock()
	p.queues[q].push(s)
	p.stats.Segments[q]++
	p.mu.Unlock()
	return s
}

// ID returns the id the segment was registered with.
func (s *Segment) ID() uint64 { return s.id }

// Queue returns the queue the segment belongs to.
func (s *Segment) Queue() Queue { return s.queue }

// Append records that a record of size bytes was appended to s, and returns
// its slot: the number the engine stores in the record's index entry and
// passes to Touch, Kill and Eviction.Decide. Slots are handed out 0, 1, 2, …
// A fresh write starts with its counter at zero.
func (s *Segment) Append(size int64) (slot uint32) {
	return s.append(size, 0)
}

// AppendKept is Append for a record copied forward because Decide said
// Keep; the copy starts with the counter d carries. s must be a Main segment.
func (s *Segment) AppendKept(size int64, d Decision) (slot uint32) {
	if s.queue != Main {
		panic("compaction: AppendKept to a small segment")
	}
	return s.append(size, d.freq)
}

// AppendAdmitted is Append for a write that Admit sent to Main. The engine
// never appends a write to a Main segment (the write log is Small; only the
// compactor writes Main), so the record goes to Small with its counter
// already at the promotion threshold, as if it had been read there: the
// eviction of its segment copies it into Main unless the keep bound forbids
// it, and it enters Main with its counter at zero like any promoted record.
// s must be a Small segment.
func (s *Segment) AppendAdmitted(size int64) (slot uint32) {
	if s.queue != Small {
		panic("compaction: AppendAdmitted to a main segment")
	}
	return s.append(size, promoteFreq)
}

func (s *Segment) append(size int64, freq uint8) uint32 {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.state != stateOpen {
		panic(fmt.Sprintf("compaction: append to %v segment %d after Evict", s.queue, s.id))
	}
	if s.slots == math.MaxUint32 {
		panic(fmt.Sprintf("compaction: segment %d has 2^32-1 records", s.id))
	}
	slot := uint32(s.slots)
	s.slots++
	if dir := *s.dir.Load(); int(slot>>chunkShift) == len(dir) {
		// Touch never reads past the length it loaded, so appending in
		// place is safe; the Store publishes the new chunk.
		grown := append(dir, new(chunk))
		s.dir.Store(&grown)
	}
	if freq != 0 {
		s.add(slot, freq)
	}
	s.bytes += size
	s.liveBytes += size
	s.live++
	q := &p.queues[s.queue]
	q.bytes += size
	q.liveBytes += size
	q.live++
	return slot
}

// word returns the word holding slot's counter byte and the byte's shift, or
// nil for a slot past the chunks allocated (a slot of an evicted segment).
func (s *Segment) word(slot uint32) (*atomic.Uint32, uint) {
	dir := *s.dir.Load()
	c := slot >> chunkShift
	if int(c) >= len(dir) {
		return nil, 0
	}
	i := slot & (chunkSlots - 1)
	return &dir[c][i>>2], uint(i&3) * 8
}

func (s *Segment) counter(slot uint32) uint8 {
	w, shift := s.word(slot)
	if w == nil {
		return deadBit
	}
	return uint8(w.Load() >> shift)
}

// add adds v to slot's counter byte; the caller knows it cannot carry out.
func (s *Segment) add(slot uint32, v uint8) {
	if w, shift := s.word(slot); w != nil {
		w.Add(uint32(v) << shift)
	}
}

// setDead sets the dead bit of slot, reporting whether it was live.
func (s *Segment) setDead(slot uint32) bool {
	w, shift := s.word(slot)
	if w == nil {
		return false
	}
	for {
		old := w.Load()
		if uint8(old>>shift)&deadBit != 0 {
			return false
		}
		if w.CompareAndSwap(old, old|uint32(deadBit)<<shift) {
			return true
		}
	}
}

// Touch records a read of the record in slot: its counter goes up by one,
// saturating. It takes no lock, allocates nothing and writes nothing when the
// counter is already saturated, so hot keys cost one atomic load. Touch is
// safe to call concurrently with every other method, also after the segment
// was evicted (it then does nothing useful).
func (s *Segment) Touch(slot uint32) {
	w, shift := s.word(slot)
	if w == nil {
		return
	}
	for {
		old := w.Load()
		b := uint8(old >> shift)
		if b&deadBit != 0 || b&freqMask >= maxFreq {
			return
		}
		if w.CompareAndSwap(old, old+1<<shift) {
			return
		}
	}
}

// Kill records that the record in slot of size bytes is no longer live: it
// was overwritten, deleted or expired. Its bytes stay in the segment's size
// until the segment is reclaimed. Killing a slot twice is harmless.
func (s *Segment) Kill(slot uint32, size int64) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if !s.setDead(slot) {
		return
	}
	s.liveBytes -= size
	s.live--
	if s.state == stateOpen {
		q := &p.queues[s.queue]
		q.liveBytes -= size
		q.live--
	}
}

// Bytes returns the bytes appended to s, dead or alive.
func (s *Segment) Bytes() int64 {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.bytes
}

// LiveBytes returns the bytes of the live records in s.
func (s *Segment) LiveBytes() int64 {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.liveBytes
}

// Admit says which queue a new write of the key with the given hash belongs
// to: Main if the ghost set remembers the key (it was evicted recently and
// is back, so it is not a one-hit wonder), else Small. A hit removes the
// hash from the ghost set. The engine calls Admit for writes of keys it does
// not hold, and appends every write to Small: with AppendAdmitted if Admit
// said Main, else with Append. A rewrite of a cached key may be admitted to
// Small or to the queue of the record it replaces.
func (p *Policy) Admit(hash uint64) Queue {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ghost.remove(hash) {
		p.stats.GhostHits++
		return Main
	}
	return Small
}

// Victim returns the segment to reclaim next, or nil if no segment is
// registered. It is the oldest segment of Small while Small holds more than
// its share of the budget, else the oldest segment of Main (S3-FIFO's rule;
// a whole-segment Small then averages half a segment below its target, which
// compaction/sim found slightly better than centring it on the target). The
// victim may be the segment the engine is appending to: the engine seals it
// before calling Evict.
func (p *Policy) Victim() *Segment {
	p.mu.Lock()
	defer p.mu.Unlock()
	small, main := &p.queues[Small], &p.queues[Main]
	switch {
	case small.len() == 0:
		return main.oldest()
	case main.len() == 0:
		return small.oldest()
	case small.bytes > p.smallTarget:
		return small.oldest()
	}
	return main.oldest()
}

// Decision says what to do with one live record of a segment being evicted.
type Decision struct {
	// Keep says to copy the record forward into a Main segment (with
	// Segment.AppendKept); otherwise it is dropped.
	Keep bool

	freq uint8 // counter the copy starts with
}

// Eviction is the reclamation of one segment, from Policy.Evict or
// Policy.Merge to Done or Abort. Its methods are safe for concurrent use but
// meant for one goroutine.
type Eviction struct {
	p     *Policy
	s     *Segment
	merge bool // started by Merge: keep every live record

	// A record is kept if its counter is above cut, or equal to cut while
	// the bytes kept at cut stay within cutBudget; and never past keepMax.
	cut       uint8
	keepMax   int64
	cutBudget int64

	kept, cutKept int64
	finished      bool
}

// Evict starts reclaiming s, normally the segment Victim returned: it leaves
// its queue, and the engine must not append to it any more. For each record
// of s that is still live (the index points at it), the engine calls Decide,
// copies the kept records into Main, then calls Done once the copies are
// published, or Abort if it could not finish.
//
// Records are kept by how often they were read: a Small record needs one
// read, a Main record one read since it was last written or copied, and the
// copies never exceed the keep bound (Config.MaxKeepFraction of the live
// bytes), so that every eviction frees space. Under the bound the most-read
// records go first: exactly if the records are of one size, nearly if not,
// as the policy plans with the segment's mean record size.
func (p *Policy) Evict(s *Segment) *Eviction {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.takeLocked(s, "Evict")
	if p.fixedGhost == 0 {
		p.ghost.setLimit(p.ghostLimitLocked())
	}

	e := &Eviction{p: p, s: s, keepMax: int64(float64(s.liveBytes) * p.maxKeep)}

	// Histogram of live counters, to find the lowest counter level that
	// still fits the keep bound. Sizes vary, so the bound is planned with
	// the segment's mean record size and enforced exactly in Decide.
	var count [freqMask + 1]int64
	for slot := 0; slot < s.slots; slot++ {
		b := s.counter(uint32(slot))
		if b&deadBit == 0 {
			count[b&freqMask]++
		}
	}
	mean := 0.0
	if s.live > 0 {
		mean = float64(s.liveBytes) / float64(s.live)
	}
	e.cut, e.cutBudget = promoteFreq, e.keepMax
	var above float64 // planned bytes of the levels above lvl
	for lvl := int(maxFreq); lvl >= int(promoteFreq); lvl-- {
		b := float64(count[lvl]) * mean
		if above+b > float64(e.keepMax) {
			e.cut = uint8(lvl)
			e.cutBudget = e.keepMax - int64(math.Ceil(above))
			break
		}
		above += b
	}
	return e
}

// Merge starts rewriting s to reclaim its dead bytes (records overwritten,
// deleted or expired) while the directory is within its budget: nothing is
// evicted, Decide keeps every live record. s may be any segment of either
// queue, not only the oldest; it leaves its queue as with Evict, and the
// engine drives the Eviction the same way, copying the records into Main
// and ending with Done or Abort.
//
// A merge is not an eviction, so it uses up no reads: a Main record keeps
// its counter, and nothing goes to the ghost set. A Small record enters Main
// with its counter at zero, as a promoted one does: merging a Small segment
// thus skips the probation of its unread records, for little gain, as Small
// evicts its segments soon whatever their live ratio.
func (p *Policy) Merge(s *Segment) *Eviction {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.takeLocked(s, "Merge")
	return &Eviction{p: p, s: s, merge: true}
}

// takeLocked takes s out of its queue for op, Evict or Merge.
func (p *Policy) takeLocked(s *Segment, op string) {
	if s.p != p || s.state != stateOpen {
		panic(fmt.Sprintf("compaction: %s of %v segment %d twice or from another policy", op, s.queue, s.id))
	}
	q := &p.queues[s.queue]
	if !q.remove(s) {
		panic("compaction: segment missing from its queue")
	}
	s.state = stateEvicting
	p.stats.Segments[s.queue]--
	q.bytes -= s.bytes
	q.liveBytes -= s.liveBytes
	q.live -= s.live
}

// ghostLimitLocked estimates how many keys Main holds at its target size.
func (p *Policy) ghostLimitLocked() int {
	live, bytes := 0, int64(0)
	for i := range p.queues {
		live += p.queues[i].live
		bytes += p.queues[i].liveBytes
	}
	if live == 0 || bytes == 0 {
		return p.ghost.limit
	}
	n := float64(p.mainTarget) * float64(live) / float64(bytes)
	return int(min(n, maxGhost))
}

// Decide says whether to keep the record in slot, of size bytes, whose key
// has the given hash. The engine calls it once per record the index still
// points at, in any order. A merge keeps every one. The hash of a dropped
// record goes into the ghost set, so that the key is admitted to Main if it
// is written again soon. S3-FIFO remembers only keys dropped from Small;
// remembering those dropped from Main too (as ARC's second ghost list does)
// gained 0.03-0.33 points in compaction/sim (but lost 0.23 at s = 1.2 with
// the fastest drift) and is what lifts kennel above item-granular S3-FIFO.
func (e *Eviction) Decide(slot uint32, hash uint64, size int64) Decision {
	p, s := e.p, e.s
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.finished {
		panic("compaction: Decide after Done or Abort")
	}
	b := s.counter(slot)
	if b&deadBit != 0 || !s.setDead(slot) {
		return Decision{} // killed, or decided already
	}
	s.live--
	s.liveBytes -= size

	f := b & freqMask
	if e.merge {
		p.stats.Merged++
		p.stats.MergedBytes += size
		if s.queue == Small {
			return Decision{Keep: true}
		}
		return Decision{Keep: true, freq: f}
	}
	keep := false
	switch {
	case f < e.cut:
	case e.kept+size > e.keepMax:
	case f > e.cut:
		keep = true
	case e.cutKept+size <= e.cutBudget:
		keep = true
		e.cutKept += size
	}
	if keep {
		e.kept += size
		if s.queue == Small {
			p.stats.Promoted++
			p.stats.PromotedBytes += size
			return Decision{Keep: true} // a fresh start in Main, as S3-FIFO
		}
		p.stats.Reinserted++
		p.stats.ReinsertBytes += size
		return Decision{Keep: true, freq: f - 1} // one read used up
	}
	p.stats.Dropped++
	p.stats.DroppedBytes += size
	if f >= promoteFreq {
		p.stats.Forced++
	}
	p.ghost.add(hash)
	return Decision{}
}

// Done ends the eviction: the segment is gone from the policy and the engine
// may delete its file once the copies are published.
func (e *Eviction) Done() {
	p, s := e.p, e.s
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.finished {
		return
	}
	e.finished = true
	s.state = stateGone
	empty := []*chunk{}
	s.dir.Store(&empty) // let the counters go; late Touches find nothing
}

// Abort ends an eviction that could not finish (an I/O error): the segment
// goes back to its place in its queue, by id (the head for the victim of
// Evict, to be evicted again; a merged segment keeps its age). The records
// Decide already saw stay decided: Touch no longer counts them, and if the
// index still points at them the next eviction drops them. Copies already
// registered with AppendKept are ordinary records of their segment; the
// engine Kills those it abandons.
func (e *Eviction) Abort() {
	p, s := e.p, e.s
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.finished {
		return
	}
	e.finished = true
	s.state = stateOpen
	q := &p.queues[s.queue]
	q.insert(s)
	p.stats.Segments[s.queue]++
	q.bytes += s.bytes
	q.liveBytes += s.liveBytes
	q.live += s.live
}

// Stats returns a snapshot of the policy's counters.
func (p *Policy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats
	for i := range p.queues {
		q := &p.queues[i]
		st.Bytes[i] = q.bytes
		st.LiveBytes[i] = q.liveBytes
		st.Records[i] = q.live
	}
	st.Ghost = p.ghost.len()
	return st
}

// fifo is a queue of segments, oldest first, with their totals.
type fifo struct {
	segs      []*Segment // segs[head:] are queued
	head      int
	bytes     int64
	liveBytes int64
	live      int
}

func (q *fifo) len() int { return len(q.segs) - q.head }

func (q *fifo) oldest() *Segment {
	if q.len() == 0 {
		return nil
	}
	return q.segs[q.head]
}

func (q *fifo) push(s *Segment) {
	if q.head > 0 && q.head >= len(q.segs)/2 {
		n := copy(q.segs, q.segs[q.head:])
		clear(q.segs[n:])
		q.segs = q.segs[:n]
		q.head = 0
	}
	q.segs = append(q.segs, s)
}

// insert puts s back before the first queued segment with a larger id: at
// the head, unless s was taken from further back by Merge.
func (q *fifo) insert(s *Segment) {
	i := q.head
	for i < len(q.segs) && q.segs[i].id < s.id {
		i++
	}
	if q.head == 0 {
		q.segs = slices.Insert(q.segs, i, s)
		return
	}
	copy(q.segs[q.head-1:i-1], q.segs[q.head:i])
	q.head--
	q.segs[i-1] = s
}

// remove takes s out of the queue; it is nearly always the oldest.
func (q *fifo) remove(s *Segment) bool {
	for i := q.head; i < len(q.segs); i++ {
		if q.segs[i] != s {
			continue
		}
		copy(q.segs[q.head+1:i+1], q.segs[q.head:i])
		q.segs[q.head] = nil
		q.head++
		return true
	}
	return false
}
