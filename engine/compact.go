package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/kennel-cache/kennel/compaction"
	"github.com/kennel-cache/kennel/index"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/lockf"
	"github.com/kennel-cache/kennel/segment"
)

// This file is the work half of compaction (package compaction decides, this
// file rewrites): reclaiming a segment copies the records worth keeping into
// a segment of the Main queue, drops the rest, and deletes the old file.
//
// Compaction runs under the directory's compaction lock, in whichever
// process asks first; it writes only segments of its own (flagged
// compacted, outside the log's seal chain), so other processes' writers
// never wait for it, and this process's wait only while a chunk of records
// is moved. Copies keep their sequence numbers, so a write that races with
// the copy of its key wins on every later open, and in the index an entry
// is moved only while it still points at the record copied. When a run is
// done it bumps the generation: other processes reload the directory.

// Compaction thresholds.
const (
	// mergeLiveRatio: a sealed segment at most half live is rewritten even
	// when the directory is within its budget. A lower bar keeps less dead
	// space but copies more: rewriting the deadest segments whenever dead
	// records passed 15 % of the directory cost 12.5 µs a write in
	// BenchmarkSet (1M keys, random overwrites), this rule 5.4 µs (one run
	// each).
	mergeLiveRatio = 0.5
	// chunkRecords and chunkBytes bound the records moved at a time: what
	// this process's writers wait for, and (its index updates only) its
	// readers.
	chunkRecords = 256
	chunkBytes   = 1 << 20
)

// compactor is this process's share of compaction.
type compactor struct {
	mu   sync.Mutex    // one run at a time in this process
	kick chan struct{} // writes ask for a run when they may have filled the budget
	// appended counts bytes written since the last kick.
	appended atomic.Int64
	// disk estimates the directory's bytes: measured by every compaction
	// step, plus what this process appended since.
	disk atomic.Int64

	// The Main segment a run copies into; nil between runs. Written under
	// mu, its records applied to the index under Cache.mu.
	out    *segment.Writer
	outPS  *compaction.Segment
	outCap int64

	// sidecarsDropped says a put-sidecar record left the index since the
	// last sweep; sidecarsWaiting that the last sweep left files waiting
	// out their grace. Either makes the next compaction step sweep.
	sidecarsDropped, sidecarsWaiting atomic.Bool
	lastSweep                        time.Time // under mu
	// unpublished holds the sidecar files of the values this run dropped
	// (evicted or expired), with their sizes. Other processes learn of
	// the drops only when the run publishes its generation, and may read
	// the files until then: sweeps keep them, and the budget counts them
	// as gone. Under Cache.mu.
	unpublished map[segment.SidecarName]int64

	runs, rewritten, evicted atomic.Uint64
	reclaimed, copied, swept atomic.Int64
	longestPause             atomic.Int64 // nanoseconds
}

// sweepPeriod is how often sidecar files waiting out their grace are
// looked at again.
const sweepPeriod = time.Second

// noteAppended is called after a group is written: when a fraction of a
// segment has been appended since the last check, the compactor looks at
// the budget.
func (c *Cache) noteAppended(n int64) {
	c.compactor.disk.Add(n)
	if c.compactor.appended.Add(n) < c.logSegmentSize/4 {
		return
	}
	c.compactor.appended.Store(0)
	select {
	case c.compactor.kick <- struct{}{}:
	default:
	}
}

// maxStall bounds how long a write waits for compaction to make room.
const maxStall = time.Second

// waitForRoom holds a write back while the directory is over its budget,
// so that writes cannot outrun compaction: the budget holds (give or take
// the group in flight and the segment compaction is copying into), and
// writers slow to the pace at which space is reclaimed. A compactor that
// makes no progress (another process holds the lock and is stuck, or
// reclaiming fails) stalls a write for at most maxStall.
func (c *Cache) waitForRoom() {
	if c.opts.ManualCompaction || c.compactor.disk.Load() <= c.opts.CacheSize {
		return
	}
	for deadline := time.Now().Add(maxStall); time.Now().Before(deadline) && !c.closed.Load(); {
		c.compactor.appended.Store(0)
		select {
		case c.compactor.kick <- struct{}{}:
		default:
		}
		time.Sleep(time.Millisecond)
		if c.compactor.disk.Load() <= c.opts.CacheSize {
			return
		}
	}
}

// compactLoop runs compaction in the background: when writes may have
// filled the budget, and every CompactionInterval.
func (c *Cache) compactLoop() {
	defer c.bg.Done()
	var tick <-chan time.Time
	if c.opts.CompactionInterval > 0 {
		t := time.NewTicker(c.opts.CompactionInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var err error
		select {
		case <-c.stop:
			return
		case <-c.compactor.kick:
			err = c.compact(c.bgCtx, runBudget)
		case <-tick:
			err = c.compact(c.bgCtx, runExpired)
		}
		if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
			c.log.Error("compaction failed", "err", err)
		}
	}
}

// Compact reclaims space now: it rewrites every segment that holds dead or
// expired records (sealing the log's active one first if it holds dead
// records) and evicts as the budget requires. It waits for a
// compaction running in another process to finish first.
func (c *Cache) Compact() error {
	if c.opts.ReadOnly {
		return ErrReadOnly
	}
	return c.compact(context.Background(), runAll)
}

// runMode says what a compaction run reclaims.
type runMode int

const (
	runBudget  runMode = iota // the budget, and segments mostly dead
	runExpired                // also segments mostly expired
	runAll                    // every segment with anything to reclaim
)

func (c *Cache) compact(ctx context.Context, mode runMode) error {
	if c.closed.Load() {
		return ErrClosed
	}
	cp := &c.compactor
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var held *lockf.Held
	if mode == runAll {
		h, err := c.locks.Lock(ctx, lockf.CompactionRange(), lockf.Exclusive)
		if err != nil {
			return c.closedOr(fmt.Errorf("kennel: take the compaction lock: %w", err))
		}
		held = h
	} else {
		h, ok, err := c.locks.TryLock(lockf.CompactionRange(), lockf.Exclusive)
		if err != nil || !ok {
			// Another process is compacting: follow its progress for the
			// writes that wait for room.
			cp.disk.Store(dirBytes(c.dir))
			return c.closedOr(err)
		}
		held = h
	}
	defer held.Unlock()

	c.catchMu.Lock()
	err := c.catchUpLocked()
	if err == nil && c.state.Compacting() {
		// The last compactor died mid-run: segments it wrote are missing
		// from this process's view, and with them the counts that say
		// which tombstones are needed. Reload before rewriting anything.
		c.log.Warn("the previous compaction was interrupted; reloading the directory before compacting")
		err = c.reloadLocked()
	}
	c.catchMu.Unlock()
	if err != nil {
		return err
	}
	c.state.SetCompacting(true)
	reached("compact-begun")
	changed, err := c.compactRun(mode)
	if ferr := c.finishOutput(); err == nil {
		err = ferr
	}
	if changed {
		// Publish: every other process reloads. The bump and the store of
		// the new generation are one step for this process's readers.
		c.catchMu.Lock()
		c.gen.Store(c.state.BumpGeneration())
		c.catchMu.Unlock()
		cp.runs.Add(1)
		reached("compact-published")
		c.mu.Lock()
		dropped := len(cp.unpublished) > 0
		clear(cp.unpublished)
		c.mu.Unlock()
		if dropped {
			c.sweepSidecars()
		}
	}
	if err == nil || errors.Is(err, ErrClosed) {
		// Closing stops a run between segments, with nothing half done.
		c.state.SetCompacting(false)
	}
	return err
}

// closedOr returns ErrClosed if the cache was closed, else err.
func (c *Cache) closedOr(err error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return err
}

// compactRun reclaims segments until nothing is left to do, and reports
// whether it rewrote any.
func (c *Cache) compactRun(mode runMode) (changed bool, err error) {
	if mode == runAll {
		if err := c.sealDeadLog(); err != nil {
			return false, err
		}
	}
	visited := make(map[uint32]bool)
	evicting := false
	c.mu.RLock()
	limit := 2*len(c.maps) + 16
	c.mu.RUnlock()
	for steps := 0; ; steps++ {
		if c.closed.Load() {
			return changed, ErrClosed
		}
		// Catch up first: every log segment before the one this process
		// has seen last is sealed, and all its records are then known.
		c.catchMu.Lock()
		err = c.catchUpLocked()
		c.catchMu.Unlock()
		if err != nil {
			return changed, err
		}
		c.maybeSweep(mode == runAll && steps == 0)
		disk := dirBytes(c.dir) - c.unpublishedBytes()
		c.compactor.disk.Store(disk)
		// Evict down to a segment's worth under the budget, so the next
		// writes do not start a run at once.
		evicting = disk > c.opts.CacheSize || (evicting && disk > max(c.opts.CacheSize-c.logSegmentSize, c.opts.CacheSize/2))
		var id uint32
		var ok bool
		if evicting {
			id, ok, err = c.evictionVictim()
		} else {
			id, ok = c.mergeVictim(mode, visited, disk)
		}
		if err != nil || !ok {
			return changed, err
		}
		if steps > limit {
			// Every step frees space; a run that needs more steps than
			// there were segments is chasing writes, and the next run
			// goes on.
			return changed, nil
		}
		visited[id] = true
		if err := c.reclaimSegment(id, evicting); err != nil {
			return true, err
		}
		changed = true
	}
}

// maybeSweep sweeps the sidecar folder when files may be free to delete: a
// put-sidecar record left the index since the last sweep, files were
// waiting out their grace, or force. Callers hold the compactor's mu.
func (c *Cache) maybeSweep(force bool) {
	cp := &c.compactor
	waited := cp.sidecarsWaiting.Load() && time.Since(cp.lastSweep) >= sweepPeriod
	if !cp.sidecarsDropped.Swap(false) && !waited && !force {
		return
	}
	cp.lastSweep = time.Now()
	c.sweepSidecars()
}

// unpublishedBytes is the size of the sidecar files of cp.unpublished.
func (c *Cache) unpublishedBytes() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var n int64
	for _, size := range c.compactor.unpublished {
		n += size
	}
	return n
}

// sealDeadLog seals the log's active segment if it holds anything to
// reclaim, so that Compact reclaims it too: otherwise the records
// overwritten since the last roll (up to a segment's worth) would stay.
func (c *Cache) sealDeadLog() error {
	c.catchMu.Lock()
	err := c.catchUpLocked()
	c.catchMu.Unlock()
	if err != nil {
		return err
	}
	id := c.seenSegment()
	c.mu.RLock()
	u := c.usage[id]
	dead := u != nil && u.reclaimable() > 0
	c.mu.RUnlock()
	if !dead {
		return nil
	}
	return c.rollLog(id)
}

// evictionVictim returns the segment the policy evicts next, sealing it
// first if it is the log's active segment or this run's output.
func (c *Cache) evictionVictim() (uint32, bool, error) {
	ps := c.policy.Victim()
	if ps == nil {
		return 0, false, nil
	}
	id := uint32(ps.ID())
	if c.compactor.out != nil && uint64(id) == c.compactor.out.ID() {
		if err := c.finishOutput(); err != nil {
			return 0, false, err
		}
	}
	if id == c.seenSegment() {
		if err := c.rollLog(id); err != nil {
			return 0, false, err
		}
	}
	return id, true, nil
}

// mergeVictim returns the sealed segment most worth rewriting to reclaim
// dead (and, unless mode is runBudget, expired) records, if any is worth it.
// Near the budget, segments of the small queue are left to eviction: a
// merge would carry their unread records into the main queue, which is for
// records that were read.
func (c *Cache) mergeVictim(mode runMode, visited map[uint32]bool, disk int64) (uint32, bool) {
	smallToo := disk < c.opts.CacheSize/4*3
	var expired map[uint32]int64
	if mode != runBudget {
		expired = c.expiredBytes()
	}
	active := c.seenSegment()
	out := uint32(0)
	if c.compactor.out != nil {
		out = uint32(c.compactor.out.ID())
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	best, bestRatio := uint32(0), 0.0
	for id, u := range c.usage {
		small := c.psegs[id].Queue() == compaction.Small
		if small && (id >= active || !smallToo) || id == out || visited[id] || u.end <= segment.HeaderSize {
			continue // the log's active segment, or one not seen whole yet
		}
		reclaim := u.reclaimable() + expired[id]
		ratio := float64(reclaim) / float64(u.end-segment.HeaderSize)
		if reclaim > 0 && (ratio > bestRatio || ratio == bestRatio && id < best) {
			best, bestRatio = id, ratio // ties go to the oldest, so runs are reproducible
		}
	}
	switch {
	case best == 0:
		return 0, false
	case mode == runAll, bestRatio >= 1-mergeLiveRatio:
		return best, true
	}
	return 0, false
}

// expiredBytes returns, per segment, the bytes of expired records the index
// still points to. It walks the index, so only runs that look for expired
// records call it.
func (c *Cache) expiredBytes() map[uint32]int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[uint32]int64)
	if c.withTTL == 0 {
		return out
	}
	now := c.now()
	c.idx.Ascend(func(e index.Entry) bool {
		if e.Expired(now) {
			out[e.Seg] += int64(e.Size)
		}
		return true
	})
	return out
}

// seenSegment returns the log segment this process has seen last: it may
// still be appended to, and the ones before it never change again.
func (c *Cache) seenSegment() uint32 { return sharedstate.Position(c.seen.Load()).Segment() }

// rollLog seals the log's active segment if it is still id, so that it can
// be reclaimed.
func (c *Cache) rollLog(id uint32) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	err := c.beginAppend()
	began := err == nil
	if began && c.active != nil && uint32(c.active.ID()) == id {
		err = c.rollLocked(0)
	}
	c.catchMu.Lock()
	c.endAppend(began)
	c.catchMu.Unlock()
	return err
}

// victimRecord is one record of a segment being reclaimed. Its key aliases
// the segment's mapping, which the reclaim holds.
type victimRecord struct {
	kind      segment.Kind
	key       []byte
	off, size uint32
	seq       uint64
	weight    int64 // see recordWeight
}

// reclaimSegment rewrites segment id: under an eviction the policy decides
// which live records are copied into Main and which are dropped; under a
// merge every live record is copied. Dead records go, and so do expired
// ones. Then the segment's files are deleted.
func (c *Cache) reclaimSegment(id uint32, evict bool) error {
	c.mu.RLock()
	m, ps, u := c.maps[id], c.psegs[id], c.usage[id]
	var end int64
	if u != nil {
		end = u.end
	}
	if m != nil {
		m.Acquire()
	}
	c.mu.RUnlock()
	if m == nil || ps == nil {
		return nil
	}
	defer m.Release()

	var recs []victimRecord
	s := segment.NewScanner(m.Bytes(int(min(end, int64(m.Len())))), segment.HeaderSize)
	for {
		for s.Next() {
			r := s.Record()
			recs = append(recs, victimRecord{kind: r.Kind, key: r.Key, off: uint32(s.Offset()), size: uint32(s.Size()), seq: r.Seq,
				weight: recordWeight(&r, int64(s.Size()))})
		}
		if _, err := s.Stop(); err == nil || s.Resync() < 0 {
			break
		}
	}

	var ev *compaction.Eviction
	if evict {
		ev = c.policy.Evict(ps)
	} else {
		ev = c.policy.Merge(ps)
	}
	cp := &c.compactor
	for len(recs) > 0 {
		n, need := 0, int64(0)
		for n < len(recs) && n < chunkRecords && (n == 0 || need+int64(recs[n].size) <= chunkBytes) {
			need += int64(recs[n].size)
			n++
		}
		if err := c.ensureOutput(need); err != nil {
			ev.Abort()
			return err
		}
		if err := c.moveChunk(id, m, recs[:n], ev); err != nil {
			ev.Abort()
			return err
		}
		recs = recs[n:]
	}
	// The copies must be durable before the only other copy goes. (A
	// victim without records, a log segment sealed as soon as it was
	// started, has none.)
	if cp.out != nil {
		if err := cp.out.Sync(); err != nil {
			ev.Abort()
			return fmt.Errorf("kennel: sync compacted segment %d: %w", cp.out.ID(), err)
		}
		reached("compact-output-synced")
	}
	if err := c.syncLog(); err != nil {
		ev.Abort()
		return err
	}
	ev.Done()
	cp.rewritten.Add(1)
	return c.dropSegment(id)
}

// syncLog makes the log's current segment durable (earlier ones were
// synced when they were sealed). A victim goes only after it: the writes
// that superseded the puts it drops (overwrites, deletes) may be there, and
// a power cut that lost them once the victim is gone would lose the key's
// durable value with them. It syncs through a descriptor of its own, since
// that segment may be another process's.
func (c *Cache) syncLog() error {
	f, err := c.fs.OpenRead(filepath.Join(c.dir, segment.FileName(uint64(c.seenSegment()))))
	if err == nil {
		err = f.Datasync()
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("kennel: sync the log before dropping a compacted segment: %w", err)
	}
	return nil
}

// moveChunk decides a chunk of a victim's records, writes the copies and
// tombstones it keeps to the output segment, and applies the decisions to
// the index. It holds writeMu and catchMu throughout, so no write of this
// process or another can change the index between a record's check and its
// move: no write is lost. Readers wait only while the decisions are
// applied (the pause Stats.LongestPause reports), not while the copies are
// written; they find every copy on disk before they can look it up.
func (c *Cache) moveChunk(id uint32, m *segment.Map, recs []victimRecord, ev *compaction.Eviction) error {
	cp := &c.compactor
	out, outID := cp.out, uint32(cp.out.ID())
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.catchMu.Lock()
	defer c.catchMu.Unlock()

	type move struct {
		r    *victimRecord
		cur  index.Entry // the key's entry, for a put the index points at
		to   uint32      // where the copy or tombstone went
		size uint32      // of a tombstone written
		d    compaction.Decision
		what int
	}
	const (
		deadPut   = iota // superseded: one older put fewer
		keepTomb         // a tombstone still shadowing older puts, copied
		keepPut          // copied forward
		dropPut          // evicted or expired
		dropShade        // evicted or expired, leaving a tombstone
	)
	moves := make([]move, 0, len(recs))
	now := c.now()
	c.mu.RLock()
	for i := range recs {
		r := &recs[i]
		raw := m.Bytes(int(r.off + r.size))[r.off:]
		if r.kind == segment.KindDelete {
			if t, ok := c.tombs[string(r.key)]; ok && t.seg == id && t.off == r.off {
				moves = append(moves, move{r: r, what: keepTomb, to: uint32(out.AppendRaw(raw))})
			}
			continue
		}
		cur, ok := c.idx.Get(r.key)
		if !ok || cur.Seg != id || cur.Offset != r.off {
			moves = append(moves, move{r: r, what: deadPut})
			continue
		}
		mv := move{r: r, cur: cur, what: dropPut}
		if !cur.Expired(now) {
			mv.d = ev.Decide(cur.Slot, xxhash.Sum64(r.key), r.weight)
		}
		switch {
		case mv.d.Keep:
			mv.what, mv.to = keepPut, uint32(out.AppendRaw(raw))
		case cur.Older > 0:
			// Older puts of the key are still on disk: a tombstone with
			// the dropped record's sequence number keeps them dead.
			rec := segment.Record{Kind: segment.KindDelete, Seq: r.seq, Key: r.key}
			mv.what, mv.to, mv.size = dropShade, uint32(out.Append(&rec)), uint32(rec.Size())
		}
		moves = append(moves, mv)
	}
	c.mu.RUnlock()
	if err := out.Flush(); err != nil {
		return fmt.Errorf("kennel: write compacted segment %d: %w", outID, err)
	}
	reached("compact-chunk-written")

	c.mu.Lock()
	start := time.Now()
	for i := range moves {
		mv := &moves[i]
		key := mv.r.key
		switch mv.what {
		case deadPut:
			c.dropOlder(key)
		// The counts of older puts may have fallen since the plan (a dead
		// put of the same key earlier in the chunk): a tombstone copied or
		// written that no longer shadows anything is just dead bytes.
		case keepTomb:
			c.addOutputDead(mv.r.size)
			cp.copied.Add(int64(mv.r.size))
			if t, ok := c.tombs[string(key)]; ok && t.seg == id && t.off == mv.r.off {
				t.seg, t.off = outID, mv.to
				c.setTomb(string(key), t)
			}
		case keepPut:
			cur, _ := c.idx.Get(key) // still the record planned: nothing wrote meanwhile
			moved := cur
			moved.Seg, moved.Offset = outID, mv.to
			moved.Slot = cp.outPS.AppendKept(mv.r.weight, mv.d)
			c.idx.Put(moved)
			c.forget(cur)
			c.remember(moved)
			cp.copied.Add(int64(mv.r.size))
		case dropPut, dropShade:
			cur, _ := c.idx.Delete(key)
			c.forget(cur)
			if segment.Kind(cur.Kind) == segment.KindPutSidecar {
				if desc, ok := c.sidecarAt(&cur); ok {
					cp.unpublished[desc.Name] = desc.Size
				}
			}
			cp.evicted.Add(1)
			if mv.what == dropShade {
				c.addOutputDead(mv.size)
				if cur.Older > 0 {
					c.setTomb(string(key), tomb{seg: outID, off: mv.to, size: mv.size, older: cur.Older})
				}
			}
		}
	}
	c.usage[outID].end = out.Size()
	pause := int64(time.Since(start))
	c.mu.Unlock()
	for {
		old := cp.longestPause.Load()
		if pause <= old || cp.longestPause.CompareAndSwap(old, pause) {
			break
		}
	}
	return nil
}

// addOutputDead accounts a tombstone written to the output segment: it is
// never live in the index, and the policy holds it as dead bytes of its
// segment. Callers hold mu.
func (c *Cache) addOutputDead(size uint32) {
	cp := &c.compactor
	cp.outPS.Kill(cp.outPS.Append(int64(size)), int64(size))
	c.addDead(uint32(cp.out.ID()), size)
}

// dropOlder records that one of key's older puts is leaving the disk.
// Callers hold mu.
func (c *Cache) dropOlder(key []byte) {
	if e, ok := c.idx.Get(key); ok {
		if e.Older > 0 && e.Older < index.MaxOlder {
			e.Older--
			c.idx.Put(e)
		}
		return
	}
	t, ok := c.tombs[string(key)]
	if !ok || t.older == index.MaxOlder {
		return
	}
	if t.older <= 1 {
		c.clearTomb(string(key)) // the tombstone shadows nothing any more
		return
	}
	t.older--
	c.tombs[string(key)] = t
}

// ensureOutput makes sure the run's output segment has room for need more
// bytes, starting a new one if not.
func (c *Cache) ensureOutput(need int64) error {
	cp := &c.compactor
	if cp.out != nil && cp.out.Size()+need <= cp.outCap {
		return nil
	}
	if err := c.finishOutput(); err != nil {
		return err
	}
	id := c.state.TakeSegmentID()
	if id >= 1<<32-1 {
		return fmt.Errorf("kennel: segment ids exhausted")
	}
	capacity := max(c.opts.SegmentSize, segment.HeaderSize+need)
	w, err := segment.Create(c.fs, c.dir, id, segment.HeaderCompacted, c.opts.FileMode)
	if err != nil {
		return fmt.Errorf("kennel: create compacted segment %d: %w", id, err)
	}
	m, err := segment.MapFile(w.File(), id, capacity)
	if err != nil {
		w.Close()
		c.fs.Remove(filepath.Join(c.dir, segment.FileName(id)))
		return fmt.Errorf("kennel: %w", err)
	}
	ps := c.policy.NewSegment(id, compaction.Main)
	c.mu.Lock()
	c.maps[uint32(id)] = m
	c.usage[uint32(id)] = &segUsage{end: segment.HeaderSize}
	c.psegs[uint32(id)] = ps
	c.mu.Unlock()
	reached("compact-output-created")
	cp.out, cp.outPS, cp.outCap = w, ps, capacity
	return nil
}

// finishOutput ends the run's output segment: synced, closed, and given its
// hint, which marks it finished (no process ever appends to it again).
func (c *Cache) finishOutput() error {
	cp := &c.compactor
	w := cp.out
	if w == nil {
		return nil
	}
	ps := cp.outPS
	cp.out, cp.outPS = nil, nil
	err := w.Flush()
	if err == nil && w.Size() == segment.HeaderSize {
		// Every record of its victims was dead: nothing to keep.
		w.Close()
		c.policy.Merge(ps).Done()
		return c.dropSegment(uint32(w.ID()))
	}
	if err == nil {
		err = w.Sync()
	}
	w.Close()
	if err != nil {
		return fmt.Errorf("kennel: finish compacted segment %d: %w", w.ID(), err)
	}
	reached("compact-output-closed")
	c.mu.RLock()
	m := c.maps[uint32(w.ID())]
	m.Acquire()
	c.mu.RUnlock()
	defer m.Release()
	hint, err := segment.BuildHint(w.ID(), m.Bytes(int(w.Size())))
	if err != nil {
		return fmt.Errorf("kennel: hint of compacted segment %d: %w", w.ID(), err)
	}
	c.writeHint(w.ID(), hint)
	reached("compact-output-hinted")
	return nil
}

// dropSegment forgets a reclaimed segment and deletes its files. Entries
// that still point into it (records the scan could not read) are dropped.
// If the segment cannot be deleted, the run must stop with the error: this
// process counts the segment's dead puts as gone, and would drop the
// tombstones that shadow them. The run then leaves the state saying
// compacting, so that the next run reloads the directory first.
func (c *Cache) dropSegment(id uint32) error {
	c.mu.Lock()
	u := c.usage[id]
	if u.liveKeys > 0 {
		var stray []index.Entry
		c.idx.Ascend(func(e index.Entry) bool {
			if e.Seg == id {
				stray = append(stray, e)
			}
			return true
		})
		for _, e := range stray {
			c.idx.Delete(e.Key())
			c.forget(e)
		}
	}
	if u.tombs > 0 {
		for k, t := range c.tombs {
			if t.seg == id {
				c.clearTomb(k)
			}
		}
	}
	c.dead -= u.dead
	c.compactor.reclaimed.Add(u.end)
	m := c.maps[id]
	delete(c.maps, id)
	delete(c.usage, id)
	delete(c.psegs, id)
	c.mu.Unlock()
	m.Release()
	// The segment first: its hint goes only with it, so that a segment
	// left behind is still loaded from its hint.
	if err := c.fs.Remove(filepath.Join(c.dir, segment.FileName(uint64(id)))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("kennel: delete reclaimed segment %d: %w", id, err)
	}
	reached("compact-segment-removed")
	if err := c.fs.Remove(filepath.Join(c.dir, segment.HintFileName(uint64(id)))); err != nil && !errors.Is(err, os.ErrNotExist) {
		// Harmless: open ignores a hint without its segment.
		c.log.Warn("cannot delete the hint of a reclaimed segment", "segment", id, "err", err)
	}
	if err := c.fs.SyncDir(c.dir); err != nil {
		c.log.Warn("cannot sync the directory after compaction", "err", err)
	}
	return nil
}
