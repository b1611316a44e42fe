package engine

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/kennel-cache/kennel/compaction"
	"github.com/kennel-cache/kennel/index"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/segment"
)

// KeyInfo describes the newest record of a key, read from the index alone.
type KeyInfo struct {
	Key     []byte
	Kind    string    // record kind: "put" or "put-sidecar"
	Segment uint64    // segment id
	Offset  int64     // record offset in the segment file
	Size    int64     // record length on disk, header and key included
	Expiry  time.Time // zero: never expires
	Expired bool      // past its expiry, not yet reclaimed
}

func keyInfo(e *index.Entry, now int64) KeyInfo {
	ki := KeyInfo{
		Key:     e.Key(),
		Kind:    segment.Kind(e.Kind).String(),
		Segment: uint64(e.Seg),
		Offset:  int64(e.Offset),
		Size:    int64(e.Size),
		Expired: e.Expired(now),
	}
	if e.Expiry != 0 {
		ki.Expiry = time.Unix(0, e.Expiry)
	}
	return ki
}

// Stat describes key's record, expired or not; ErrNotFound if it has none.
func (c *Cache) Stat(key []byte) (KeyInfo, error) {
	if err := c.checkKey(key); err != nil {
		return KeyInfo{}, err
	}
	if err := c.rlockCurrent(); err != nil {
		return KeyInfo{}, err
	}
	defer c.mu.RUnlock()
	e, ok := c.idx.Get(key)
	if !ok {
		return KeyInfo{}, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return keyInfo(&e, c.now()), nil
}

// Keys calls fn for every key starting with prefix, expired ones included
// (KeyInfo.Expired says so), in key order on a consistent snapshot, until fn
// returns an error, which Keys returns. It reads no values.
func (c *Cache) Keys(prefix []byte, fn func(KeyInfo) error) error {
	snap, err := c.snapshot()
	if err != nil {
		return err
	}
	defer snap.release()
	snap.idx.AscendPrefix(prefix, func(e index.Entry) bool {
		err = fn(keyInfo(&e, snap.now))
		return err == nil
	})
	return err
}

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	ID        uint64
	File      string // file name in the cache directory
	Bytes     int64  // header and whole records
	LiveBytes int64  // records the index points to
	DeadBytes int64  // superseded, deleted and tombstone records
	LiveKeys  int
	Active    bool // the log segment being appended to
	// Compacted marks a segment written by compaction: the eviction
	// policy's main queue. It is outside the log's seal chain (no seal
	// record, and its id may lie between a log segment and the one that
	// segment's seal names) and never appended to once it has its hint.
	// The others are the log's segments, the policy's small queue.
	Compacted bool
}

// Segments describes the segments in id order.
func (c *Cache) Segments() ([]SegmentInfo, error) {
	if err := c.rlockCurrent(); err != nil {
		return nil, err
	}
	defer c.mu.RUnlock()
	// The active segment is the one the published position is in; without
	// a trusted shared state (a read-only look at a directory no process
	// has open read-write) it is the newest of the log's: a compaction
	// takes ids after the log's active segment too.
	compacted := func(id uint32) bool { ps := c.psegs[id]; return ps != nil && ps.Queue() == compaction.Main }
	var active uint64
	if c.state != nil && !c.stateStale {
		active = uint64(sharedstate.Position(c.seen.Load()).Segment())
	} else {
		for id := range c.usage {
			if !compacted(id) {
				active = max(active, uint64(id))
			}
		}
	}
	out := make([]SegmentInfo, 0, len(c.usage))
	for id, u := range c.usage {
		out = append(out, SegmentInfo{
			ID: uint64(id), File: segment.FileName(uint64(id)), Bytes: u.end,
			LiveBytes: u.live, DeadBytes: u.dead, LiveKeys: u.liveKeys,
			Active: uint64(id) == active, Compacted: compacted(id),
		})
	}
	slices.SortFunc(out, func(a, b SegmentInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}
