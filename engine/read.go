package engine

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/klauspost/compress/s2"

	"github.com/kennel-cache/kennel/index"
	"github.com/kennel-cache/kennel/segment"
)

// Get returns a copy of the value stored under key, or ErrNotFound. The
// record is checked before its value is returned: checksum, and that it holds
// key; damage gives ErrCorrupt, never a wrong value. A value kept in a
// sidecar file is read whole and checked against its record's size and
// checksum.
func (c *Cache) Get(key []byte) ([]byte, error) {
	if err := c.checkKey(key); err != nil {
		return nil, err
	}
	v, _, err := c.get(key)
	return v, err
}

// get returns key's value and when it turns stale (0: fresh until it
// expires).
func (c *Cache) get(key []byte) ([]byte, int64, error) {
	for {
		e, st, err := c.lookup(key)
		if err != nil {
			return nil, 0, err
		}
		if st.side != nil {
			st.value, err = c.readSidecar(st.side)
			if err = c.sidecarGone(key, &e, st.side, err); errors.Is(err, errSuperseded) {
				continue
			}
			if err != nil {
				return nil, 0, err
			}
		}
		c.hits.Add(1)
		return st.value, st.fresh, nil
	}
}

// lookup finds key's entry and reads its record: the value if it is
// inline, its sidecar's descriptor if not. A sidecar file is read by the
// caller, without the index lock.
func (c *Cache) lookup(key []byte) (index.Entry, stored, error) {
	if err := c.rlockCurrent(); err != nil {
		return index.Entry{}, stored{}, err
	}
	defer c.mu.RUnlock()
	e, ok := c.idx.Get(key)
	if !ok || (e.Expiry != 0 && e.Expired(c.now())) {
		c.misses.Add(1)
		return e, stored{}, ErrNotFound
	}
	st, err := c.valueLocked(c.maps, &e, key)
	c.touchLocked(&e)
	return e, st, err
}

// touchLocked tells the eviction policy that e's record was read: it takes
// no lock and writes nothing to disk. Callers hold mu shared.
func (c *Cache) touchLocked(e *index.Entry) {
	if ps := c.psegs[e.Seg]; ps != nil {
		ps.Touch(e.Slot)
	}
}

// Has reports whether key has a value that has not expired. It reads only
// the index.
func (c *Cache) Has(key []byte) (bool, error) {
	if err := c.checkKey(key); err != nil {
		return false, err
	}
	if err := c.rlockCurrent(); err != nil {
		return false, err
	}
	defer c.mu.RUnlock()
	e, ok := c.idx.Get(key)
	return ok && (e.Expiry == 0 || !e.Expired(c.now())), nil
}

// stored is what a record holds: an inline value, or the descriptor of the
// sidecar file that holds it; and when it turns stale (0: fresh until it
// expires).
type stored struct {
	value []byte
	side  *segment.Sidecar
	fresh int64
}

// valueLocked reads and checks the record e points to and copies out its
// value or sidecar descriptor. The caller holds mu shared, or references on
// the mappings it passes.
//
// kennel never truncates a segment, but another program might: reading a
// mapped page that the file no longer covers raises SIGBUS, which would
// kill the process. The read runs with the runtime's panic-on-fault set, and
// such a fault becomes ErrCorrupt for this read alone.
func (c *Cache) valueLocked(maps map[uint32]*segment.Map, e *index.Entry, key []byte) (st stored, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if fault, ok := r.(interface{ Addr() uintptr }); ok {
			err = fmt.Errorf("%w: segment %d offset %d: memory fault at %#x: the file is shorter than its records",
				ErrCorrupt, e.Seg, e.Offset, fault.Addr())
			c.reportCorrupt("segment file cut short under a reader", "segment", e.Seg, "offset", e.Offset)
			st = stored{}
			return
		}
		panic(r)
	}()
	return c.readValue(maps, e, key)
}

func (c *Cache) readValue(maps map[uint32]*segment.Map, e *index.Entry, key []byte) (stored, error) {
	m := maps[e.Seg]
	if m == nil {
		return stored{}, fmt.Errorf("%w: key %q: segment %d is not mapped", ErrCorrupt, key, e.Seg)
	}
	rec, err := m.Record(e.Offset, e.Size)
	if err == nil && (!bytes.Equal(rec.Key, key) || rec.Kind != segment.Kind(e.Kind)) {
		err = fmt.Errorf("%w: segment %d offset %d holds another record", ErrCorrupt, e.Seg, e.Offset)
	}
	if err != nil {
		c.reportCorrupt("damaged record", "segment", e.Seg, "offset", e.Offset, "err", err)
		return stored{}, fmt.Errorf("kennel: get %q: %w", key, err)
	}
	st := stored{fresh: rec.Fresh}
	switch {
	case rec.Kind == segment.KindPutSidecar:
		desc, err := segment.DecodeSidecar(rec.Value)
		if err != nil {
			return stored{}, fmt.Errorf("kennel: get %q: segment %d offset %d: %w", key, e.Seg, e.Offset, err)
		}
		st.side = &desc
	case rec.Codec == segment.CodecS2:
		n, err := s2.DecodedLen(rec.Value)
		if err != nil || n > segment.MaxValueLen {
			return stored{}, fmt.Errorf("%w: segment %d offset %d: bad compressed value", ErrCorrupt, e.Seg, e.Offset)
		}
		if st.value, err = s2.Decode(make([]byte, n), rec.Value); err != nil {
			return stored{}, fmt.Errorf("%w: segment %d offset %d: %v", ErrCorrupt, e.Seg, e.Offset, err)
		}
	default:
		st.value = bytes.Clone(rec.Value)
	}
	return st, nil
}

// Scan calls fn with each key that starts with prefix and has a value, in
// key order, until fn returns an error (which Scan returns). It sees the
// cache as it was when Scan began: writes made meanwhile neither block it
// nor show in it. key and value are fn's to keep.
func (c *Cache) Scan(prefix []byte, fn func(key, value []byte) error) error {
	snap, err := c.snapshot()
	if err != nil {
		return err
	}
	defer snap.release()
	snap.idx.AscendPrefix(prefix, func(e index.Entry) bool {
		if e.Expired(snap.now) {
			return true
		}
		key := e.Key()
		var st stored
		if st, err = c.valueLocked(snap.maps, &e, key); err == nil && st.side != nil {
			st.value, err = c.readSidecar(st.side)
			if err = c.sidecarGone(key, &e, st.side, err); errors.Is(err, errSuperseded) {
				err = nil
				return true // overwritten during the scan, and the old file swept
			}
		}
		if err == nil {
			err = fn(key, st.value)
		}
		return err == nil
	})
	return err
}

// snapshot is a consistent view of the cache: a copy-on-write clone of the
// index and references on every mapping it may point into.
type snapshot struct {
	idx  *index.Index
	maps map[uint32]*segment.Map
	now  int64
}

func (c *Cache) snapshot() (*snapshot, error) {
	if err := c.rlockCurrent(); err != nil {
		return nil, err
	}
	defer c.mu.RUnlock()
	c.cloneMu.Lock()
	s := &snapshot{idx: c.idx.Clone(), maps: make(map[uint32]*segment.Map, len(c.maps)), now: c.now()}
	c.cloneMu.Unlock()
	for id, m := range c.maps {
		m.Acquire()
		s.maps[id] = m
	}
	return s, nil
}

func (s *snapshot) release() {
	for _, m := range s.maps {
		m.Release()
	}
}

// Len returns the number of keys with an unexpired value. It costs a walk of
// the index only when some keys carry a TTL.
func (c *Cache) Len() int {
	if c.rlockCurrent() != nil {
		return 0
	}
	defer c.mu.RUnlock()
	if c.withTTL == 0 {
		return c.idx.Len()
	}
	now, n := c.now(), 0
	c.idx.Ascend(func(e index.Entry) bool {
		if !e.Expired(now) {
			n++
		}
		return true
	})
	return n
}
