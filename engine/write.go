package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/s2"

	"github.com/kennel-cache/kennel/compaction"
	"github.com/kennel-cache/kennel/index"
	"github.com/kennel-cache/kennel/segment"
)

// op is one write: a put or a delete of one key.
type op struct {
	kind   segment.Kind
	codec  segment.Codec // how value is encoded
	key    []byte
	value  []byte
	expiry int64 // unix nanos; 0 = never
	fresh  int64 // unix nanos when the value turns stale; 0 = fresh until it expires
	side   int64 // for a put-sidecar, the size of its file
}

// request is one caller's writes. A group-commit leader writes many
// requests with one pwrite (and, with SyncAlways, one fdatasync).
type request struct {
	ops     []op
	one     [1]op // backing array for single-op requests
	applied int   // ops of this request now in the index
	done    bool  // set by the leader that wrote it, under writeMu
	err     error
}

var requestPool = sync.Pool{New: func() any { return new(request) }}

// pending is an op encoded into the active segment's buffer, waiting to be
// written and applied to the index.
type pending struct {
	req *request
	op  *op
	// entry locates the record; for a put it is the key's index entry,
	// made outside mu.
	entry index.Entry
}

// Set stores value under key, with Options.DefaultTTL.
func (c *Cache) Set(key, value []byte) error {
	return c.put(key, value, c.opts.DefaultTTL)
}

// SetWithTTL stores value under key; it expires ttl from now. A ttl of 0
// means it never expires.
func (c *Cache) SetWithTTL(key, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("%w: %v", ErrInvalidTTL, ttl)
	}
	return c.put(key, value, ttl)
}

func (c *Cache) put(key, value []byte, ttl time.Duration) error {
	return c.store(key, value, c.expiry(ttl), 0)
}

// store writes one put: value under key, expiring at expiry and turning
// stale at fresh (unix nanos; 0 for never).
func (c *Cache) store(key, value []byte, expiry, fresh int64) error {
	if c.opts.ReadOnly {
		return ErrReadOnly
	}
	if err := c.checkPut(key, value); err != nil {
		return err
	}
	if len(value) > c.opts.InlineLimit {
		return c.counted(c.storeSidecar(key, value, expiry, fresh))
	}
	c.waitForRoom()
	r := requestPool.Get().(*request)
	stored, codec := c.compress(value)
	r.one[0] = op{kind: segment.KindPut, codec: codec, key: key, value: stored, expiry: expiry, fresh: fresh}
	r.ops = r.one[:]
	err := c.commit(r)
	*r = request{}
	requestPool.Put(r)
	return c.counted(err)
}

// Delete removes key. Deleting an absent key is not an error.
func (c *Cache) Delete(key []byte) error {
	if c.opts.ReadOnly {
		return ErrReadOnly
	}
	if err := c.checkKey(key); err != nil {
		return err
	}
	c.waitForRoom()
	r := requestPool.Get().(*request)
	r.one[0] = op{kind: segment.KindDelete, key: key}
	r.ops = r.one[:]
	err := c.commit(r)
	*r = request{}
	requestPool.Put(r)
	if err == nil {
		c.deletes.Add(1)
	}
	return err
}

// compressSample is how much of a large value is tried before the whole.
const compressSample = 16 << 10

// compress returns the bytes to store for value and their codec: value
// itself when compression is off, the value is small, or S2 saves less than
// an eighth of it (incompressible data is stored raw).
func (c *Cache) compress(value []byte) ([]byte, segment.Codec) {
	if c.opts.Compression != CompressS2 || len(value) < c.opts.CompressMinSize {
		return value, segment.CodecNone
	}
	// A large value whose start does not compress is taken for
	// incompressible (media, archives, encrypted data) without encoding it
	// whole: S2 spends 0.4 ms on a random MiB only to give it back.
	if len(value) >= 4*compressSample {
		if s := s2.Encode(nil, value[:compressSample]); len(s) > compressSample-compressSample/8 {
			return value, segment.CodecNone
		}
	}
	enc := s2.Encode(nil, value)
	if len(enc) > len(value)-len(value)/8 {
		return value, segment.CodecNone
	}
	return enc, segment.CodecS2
}

func (c *Cache) expiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return c.now() + int64(ttl)
}

func (c *Cache) checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return ErrEmptyKey
	case len(key) > c.opts.MaxKeySize:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(key), c.opts.MaxKeySize)
	}
	return nil
}

func (c *Cache) checkPut(key, value []byte) error {
	if err := c.checkKey(key); err != nil {
		return err
	}
	if len(value) > c.opts.MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(value), c.opts.MaxValueSize)
	}
	return nil
}

// commit writes r as part of a group. Each caller queues its request and
// then takes writeMu; whoever gets it first leads: it writes every queued
// request at once. A caller that gets writeMu and finds its request already
// written by an earlier leader just returns. Callers wait for room first
// (waitForRoom), holding no lock that compaction may need.
func (c *Cache) commit(r *request) error {
	c.queueMu.Lock()
	c.queue = append(c.queue, r)
	c.queueMu.Unlock()

	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if r.done {
		return r.err
	}
	c.queueMu.Lock()
	group := c.queue
	c.queue = c.spare[:0]
	c.queueMu.Unlock()
	c.writeGroupLocked(group)
	clear(group)
	c.spare = group
	return r.err
}

// writeGroupLocked takes the append lock, encodes a group into the active
// segment (rolling as needed), writes it with one pwrite per segment, syncs
// it if the policy says so, applies it to the index and publishes the log's
// new end to other processes. Ops that did not reach the file are not applied
// and their requests fail.
func (c *Cache) writeGroupLocked(group []*request) {
	c.flushed = 0
	err := c.beginAppend()
	began := err == nil
	if began {
		err = c.appendGroupLocked(group)
	}
	written := c.pending
	if err != nil {
		// Only ops encoded before the failure and flushed by a roll are on
		// disk; appendGroupLocked leaves exactly those in c.pending.
		written = c.pending[:c.flushed]
	}
	c.catchMu.Lock()
	if len(written) > 0 {
		var bytes int64
		c.mu.Lock()
		for i := range written {
			c.applyLocked(&written[i])
			bytes += int64(written[i].entry.Size) + written[i].op.side
		}
		c.mu.Unlock()
		if c.opts.Sync != SyncAlways {
			c.dirty.Store(true)
		}
		c.noteAppended(bytes)
	}
	c.endAppend(began)
	c.catchMu.Unlock()
	// A group written whole that failed, failed its sync: its requests
	// are applied, but were not made durable as promised, so they fail.
	syncFailed := err != nil && len(written) == len(c.pending)
	for _, r := range group {
		r.done = true
		if (r.applied < len(r.ops) || syncFailed) && r.err == nil {
			r.err = err
		}
	}
	clear(c.pending)
	c.pending = c.pending[:0]
}

// appendGroupLocked encodes and writes the group. On success every op is in
// c.pending and on disk; on failure c.pending[:c.flushed] are.
func (c *Cache) appendGroupLocked(group []*request) error {
	n := 0
	for _, r := range group {
		n += len(r.ops)
	}
	seq := c.state.TakeSeqs(uint64(n))
	room, side := c.activeRoomLocked()
	for _, r := range group {
		for i := range r.ops {
			o := &r.ops[i]
			rec := segment.Record{Kind: o.kind, Codec: o.codec, Seq: seq, Expiry: o.expiry, Fresh: o.fresh, Key: o.key, Value: o.value}
			size := int64(rec.Size())
			// Roll when the segment is full (counting the sidecar files
			// its records refer to, so that evicting a segment frees
			// about a segment's worth of bytes), and also when the record
			// would end past the active segment's mapping (a record larger
			// than a segment as the first of a segment): it could not be
			// read back.
			if used := c.active.Size() + int64(c.active.Buffered()); used+size > room ||
				(used > segment.HeaderSize && used+side+size+o.side > c.logSegmentSize) {
				if err := c.active.Flush(); err != nil {
					return c.writeError(err)
				}
				c.flushed = len(c.pending)
				if err := c.rollLocked(size); err != nil {
					return err
				}
				room, side = c.activeRoomLocked()
			}
			off := c.active.Append(&rec)
			side += o.side
			seq++
			p := pending{req: r, op: o}
			if o.kind != segment.KindDelete {
				p.entry = index.NewEntry(o.key)
			}
			p.entry.Expiry, p.entry.Seg, p.entry.Offset, p.entry.Size, p.entry.Kind = o.expiry, uint32(c.active.ID()), uint32(off), uint32(size), uint8(o.kind)
			c.pending = append(c.pending, p)
		}
	}
	if err := c.active.Flush(); err != nil {
		return c.writeError(err)
	}
	// Written: readers may find the records whether or not the sync
	// below succeeds, so the index must have them too.
	c.flushed = len(c.pending)
	reached("append-written")
	if c.opts.Sync == SyncAlways {
		if err := c.syncActiveLocked(); err != nil {
			return err
		}
		reached("append-synced")
	}
	return nil
}

// activeRoomLocked returns how many bytes of the active segment records may
// fill (every record must end within the mapping, and room is kept for the
// seal that ends the segment), and the bytes of the sidecar files its
// records refer to. Callers hold writeMu.
func (c *Cache) activeRoomLocked() (room, side int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id := uint32(c.active.ID())
	return int64(c.maps[id].Len()) - segment.SealRecordSize, c.usage[id].side
}

func (c *Cache) writeError(err error) error {
	c.log.Error("write failed", "segment", c.active.ID(), "err", err)
	return fmt.Errorf("kennel: write segment %d: %w", c.active.ID(), err)
}

// applyLocked applies one written op to the index. Callers hold mu.
func (c *Cache) applyLocked(p *pending) {
	p.req.applied++
	c.applyRecord(p.op.kind, &p.entry, p.op.key)
}

// applyRecord applies a put or delete appended to the log, by this process
// or (caught up) by another, to the index, the byte accounting and the
// eviction policy. e locates the record; for a put it is the key's new
// index entry. Callers hold mu.
//
// It also counts, per key, the older put records still on disk (Entry.Older
// for a key with a value, the tombs map for a deleted one): compaction reads
// the count to know whether it may drop a key's newest record without
// leaving a tombstone.
func (c *Cache) applyRecord(kind segment.Kind, e *index.Entry, key []byte) {
	u := c.usage[e.Seg]
	u.end = max(u.end, int64(e.Offset)+int64(e.Size))
	w := c.weight(e)
	u.side += w - int64(e.Size)
	ps := c.psegs[e.Seg]
	slot := ps.Append(w)
	if kind == segment.KindDelete {
		ps.Kill(slot, w)
		c.addDead(e.Seg, e.Size)
		older := uint8(0)
		if old, ok := c.idx.Delete(key); ok {
			c.forget(old)
			older = addOlder(old.Older, 1)
		} else if t, ok := c.tombs[string(key)]; ok {
			older = t.older
		}
		if older > 0 {
			c.setTomb(string(key), tomb{seg: e.Seg, off: e.Offset, size: e.Size, older: older})
		} else if len(c.tombs) > 0 {
			c.clearTomb(string(key))
		}
		return
	}
	e.Slot = slot
	if old, ok := c.idx.Put(*e); ok {
		c.forget(old)
		e.Older = addOlder(old.Older, 1)
		c.idx.Put(*e)
	} else {
		if len(c.tombs) > 0 {
			if t, ok := c.tombs[string(key)]; ok {
				e.Older = t.older
				c.clearTomb(string(key))
				c.idx.Put(*e)
			}
		}
		// A key the ghost set remembers was evicted recently and is back:
		// its record starts as if read once, so that it moves to the main
		// queue when its segment is evicted.
		if c.policy.Admit(xxhash.Sum64(key)) == compaction.Main {
			ps.Touch(slot)
		}
	}
	c.remember(*e)
}

// addOlder adds n to an older-records count, saturating at index.MaxOlder.
func addOlder(older uint8, n int) uint8 {
	return uint8(min(int(older)+n, index.MaxOlder))
}

// rollLocked seals the active segment and starts a new one that can hold a
// record of need bytes. The old segment gets a seal record, so no reader ever
// takes bytes past it for records, and is synced (unless a sync of it already
// failed: that is never retried), so a sealed segment is durable before
// anything is written after it; its hint is written in the background. If no
// new segment can be started, the seal is taken back: the next write lands
// over it and the segment stays active.
func (c *Cache) rollLocked(need int64) error {
	old := c.active
	end := old.Size()
	id := c.state.TakeSegmentID()
	if id >= 1<<32-1 {
		return fmt.Errorf("kennel: segment ids exhausted")
	}
	seal := segment.SealRecord(c.state.TakeSeqs(1), id)
	old.Append(&seal)
	if err := old.Flush(); err != nil {
		c.log.Error("cannot write the seal of a segment; readers stop at its end", "segment", old.ID(), "err", err)
	}
	reached("roll-sealed")
	if !c.mustRollLocked() {
		if err := old.Sync(); err != nil {
			c.log.Error("sync before roll failed; sealing anyway", "segment", old.ID(), "err", err)
		}
	}
	reached("roll-synced")
	if err := c.startSegment(id, max(c.logSegmentSize, segment.HeaderSize+need+segment.SealRecordSize)); err != nil {
		old.SetSize(end)
		return err
	}
	reached("roll-started")
	sealedEnd := old.Size()
	old.Close()
	// The seal may end past the mapping when the segment was mapped at the
	// size it had on open.
	m, err := c.mapForCatchUp(uint32(old.ID()), sealedEnd)
	if err != nil {
		c.log.Warn("cannot map a sealed segment to write its hint", "segment", old.ID(), "err", err)
		return nil
	}
	m.Acquire()
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer m.Release()
		hint, err := segment.BuildHint(m.ID(), m.Bytes(int(sealedEnd)))
		if err != nil {
			c.reportCorrupt("cannot build hint of a sealed segment", "segment", m.ID(), "err", err)
			return
		}
		c.writeHint(m.ID(), hint)
	}()
	return nil
}

// startSegment creates segment id, maps capacity bytes of it, and makes it
// the active segment.
func (c *Cache) startSegment(id uint64, capacity int64) error {
	w, err := segment.Create(c.fs, c.dir, id, 0, c.opts.FileMode)
	if err != nil {
		return fmt.Errorf("kennel: create segment %d: %w", id, err)
	}
	m, err := segment.MapFile(w.File(), id, capacity)
	if err != nil {
		w.Close()
		c.fs.Remove(filepath.Join(c.dir, segment.FileName(id)))
		return fmt.Errorf("kennel: %w", err)
	}
	c.installMap(m)
	c.active = w
	return nil
}

// writeHintsAsync publishes hint files in the background.
func (c *Cache) writeHintsAsync(hints map[uint64][]byte) {
	if len(hints) == 0 {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		for id, hint := range hints {
			c.writeHint(id, hint)
		}
	}()
}

func (c *Cache) writeHint(id uint64, hint []byte) {
	if err := segment.WriteFileAtomic(c.fs, c.dir, segment.HintFileName(id), hint, c.opts.FileMode); err != nil {
		c.log.Warn("cannot write hint file; open will scan the segment", "segment", id, "err", err)
		return
	}
	reached("hint-written")
	// Compaction may have reclaimed the segment while its hint was built:
	// it deletes the segment, then the hint, so a hint renamed in after
	// that is taken back here.
	if _, err := os.Lstat(filepath.Join(c.dir, segment.FileName(id))); errors.Is(err, fs.ErrNotExist) {
		c.fs.Remove(filepath.Join(c.dir, segment.HintFileName(id)))
	}
}
