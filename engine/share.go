package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/kennel-cache/kennel/compaction"
	"github.com/kennel-cache/kennel/index"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/lockf"
	"github.com/kennel-cache/kennel/segment"
)

// This file is the engine's half of the multi-process protocol (DESIGN.md):
// joining a directory that other processes may have open, catching up with
// what they appended, and taking the append lock around a group of writes.

// stateFile is the shared state file (package sharedstate).
const stateFile = "state"

// join takes this process's place among the directory's users and maps the
// shared state file. It reports whether the process is the first (nobody
// else has the directory open read-write): the first recovers the directory
// and initialises the state; the others load what it published. It returns
// holding the open lock, which the caller releases once it has loaded
// (finishJoin), so that no other process opens the directory meanwhile.
//
// A read-only cache takes no lock; it follows the state file if there is
// one, and otherwise sees the directory as it was at Open.
func (c *Cache) join() (first bool, err error) {
	statePath := filepath.Join(c.dir, stateFile)
	if c.opts.ReadOnly {
		st, err := sharedstate.Open(statePath, 0, true)
		if err == nil {
			err = st.Check()
			if err != nil {
				st.Close()
			}
		}
		switch {
		case err == nil:
			c.state = st
			c.stateStale = !c.openByWriter()
		case errors.Is(err, sharedstate.ErrUninitialized):
		default:
			c.log.Warn("shared state file unusable; the cache will not see later writes", "err", err)
		}
		return false, nil
	}

	locks, err := lockf.Open(filepath.Join(c.dir, lockFile), c.opts.FileMode)
	if err != nil {
		return false, fmt.Errorf("kennel: open lock file: %w", err)
	}
	c.locks = locks
	c.opening, err = locks.Lock(context.Background(), lockf.OpenRange(), lockf.Exclusive)
	if err != nil {
		return false, fmt.Errorf("kennel: lock %s for opening: %w", c.dir, err)
	}
	users, first, err := locks.TryLock(lockf.UsersRange(), lockf.Exclusive)
	if err != nil {
		return false, fmt.Errorf("kennel: lock %s: %w", c.dir, err)
	}
	if !first {
		if c.opts.Exclusive {
			return false, fmt.Errorf("%w: %s is open in another process; Options.Exclusive needs it alone", ErrLocked, c.dir)
		}
		var ok bool
		users, ok, err = locks.TryLock(lockf.UsersRange(), lockf.Shared)
		if err != nil {
			return false, fmt.Errorf("kennel: lock %s: %w", c.dir, err)
		}
		if !ok {
			return false, fmt.Errorf("%w: %s is open with Options.Exclusive in another process", ErrLocked, c.dir)
		}
	}
	c.users = users

	st, err := sharedstate.Open(statePath, c.opts.FileMode, false)
	if err != nil {
		return false, fmt.Errorf("kennel: open shared state: %w", err)
	}
	c.state = st
	if !first {
		if err := st.Check(); err != nil {
			return false, fmt.Errorf("kennel: directory open in another process, but %w", err)
		}
	}
	return first, nil
}

// openByWriter reports whether some process has the directory open
// read-write, so that its state file is kept current. When none has, the
// file may predate a machine crash and is not trusted. A lock file that
// cannot be opened leaves the question open, and the state is trusted.
func (c *Cache) openByWriter() bool {
	path := filepath.Join(c.dir, lockFile)
	if _, err := os.Lstat(path); err != nil {
		return false
	}
	locks, err := lockf.Open(path, c.opts.FileMode)
	if err != nil {
		c.log.Info("cannot probe the lock file; trusting the shared state", "err", err)
		return true
	}
	defer locks.Close()
	_, held, err := locks.Holder(lockf.UsersRange())
	return err != nil || held
}

// finishJoin ends the opening: the first process, unless Exclusive, turns
// its exclusive hold on the users range into a shared one (no other opener
// can slip in: they wait for the open lock), Exclusive takes the append lock
// for good, and the open lock is released.
func (c *Cache) finishJoin(first bool) error {
	if c.opening == nil {
		return nil
	}
	if first && !c.opts.Exclusive {
		if err := c.users.Unlock(); err != nil {
			return fmt.Errorf("kennel: unlock users range: %w", err)
		}
		users, ok, err := c.locks.TryLock(lockf.UsersRange(), lockf.Shared)
		if err == nil && !ok {
			err = errors.New("taken by another process while the open lock was held")
		}
		if err != nil {
			c.users = nil
			return fmt.Errorf("kennel: lock users range shared: %w", err)
		}
		c.users = users
	}
	if c.opts.Exclusive {
		held, ok, err := c.locks.TryLock(lockf.AppendRange(), lockf.Exclusive)
		if err == nil && !ok {
			err = errors.New("held by another process")
		}
		if err != nil {
			return fmt.Errorf("kennel: take the append lock: %w", err)
		}
		c.appendHeld = held
	}
	err := c.opening.Unlock()
	c.opening = nil
	return err
}

// leave releases this process's locks and the state mapping. Closing the
// lock file releases every lock taken through it.
func (c *Cache) leave() {
	if c.locks != nil {
		c.locks.Close() // later Lock calls fail with lockf.ErrClosed
	}
	if c.state != nil {
		c.state.Close()
		c.state = nil
	}
}

// stale reports whether another process published something this process
// has not applied. Callers hold mu (shared is enough) or catchMu, so the
// state file is still mapped.
func (c *Cache) stale() bool {
	return c.state != nil && (uint64(c.state.Position()) != c.seen.Load() || c.state.Generation() != c.gen.Load())
}

// rlockCurrent takes mu shared, first catching up with other processes'
// writes if there are any, and returns holding it, or returns an error
// without. Every read starts here: when nothing changed elsewhere it costs
// two atomic loads on top of the lock. One catch-up is enough: it reaches at
// least every write that returned before the read began.
func (c *Cache) rlockCurrent() error {
	c.mu.RLock()
	if c.closed.Load() {
		c.mu.RUnlock()
		return ErrClosed
	}
	if !c.stale() {
		return nil
	}
	c.mu.RUnlock()
	c.catchMu.Lock()
	err := c.catchUpLocked()
	c.catchMu.Unlock()
	if err != nil {
		return err
	}
	c.mu.RLock()
	if c.closed.Load() {
		c.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// catchUpLocked applies the records other processes published since this
// process last looked. Callers hold catchMu. It reads from the position the
// index reflects to the published one, following the log across the
// segments rolled meanwhile; a new generation means the directory was
// rewritten, and the index is rebuilt instead.
func (c *Cache) catchUpLocked() error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.state.Generation() != c.gen.Load() {
		return c.reloadLocked()
	}
	target := c.state.Position()
	from := sharedstate.Position(c.seen.Load())
	if target == from {
		return nil
	}
	var recs []caught
	seg, off := from.Segment(), int(from.End())
	// Segments rolled meanwhile: each one's records end at its seal, which
	// names the segment the log continues in (or, if the seal could not be
	// written, at the end of its file, and the log continues in the next
	// id that exists).
	//
	// A segment the log certainly went through (the one this process saw
	// last, or one a seal names) that is gone by name was reclaimed by a
	// compaction that has not published yet: the directory is reloaded.
	mustExist := true
	for seg != target.Segment() {
		if seg > target.Segment() {
			return fmt.Errorf("%w: the log continues in segment %d, past the published segment %d", ErrCorrupt, seg, target.Segment())
		}
		next := seg + 1
		m, size, err := c.mapSealed(seg)
		if errors.Is(err, fs.ErrNotExist) && mustExist {
			return c.reloadLocked()
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		mustExist = false
		if m != nil {
			var cont uint64
			recs, cont = c.scanPublished(recs, m, off, int(size))
			if cont > uint64(seg) && cont <= uint64(target.Segment()) {
				next, mustExist = uint32(cont), true
			}
		}
		seg, off = next, segment.HeaderSize
	}
	m, err := c.mapForCatchUp(seg, int64(target.End()))
	if errors.Is(err, fs.ErrNotExist) {
		return c.reloadLocked()
	}
	if err != nil {
		return err
	}
	recs, _ = c.scanPublished(recs, m, off, int(target.End()))
	c.mu.Lock()
	var key []byte
	for i := range recs {
		r := &recs[i]
		key = r.entry.AppendKey(key[:0])
		c.applyRecord(r.kind, &r.entry, key)
	}
	c.mu.Unlock()
	c.seen.Store(uint64(target))
	return nil
}

// caught is a record found by catch-up, to be applied to the index.
type caught struct {
	kind  segment.Kind
	entry index.Entry // for puts; for deletes only its key is used
}

// scanPublished collects the records of m in [from, to) and returns, if
// they end with a seal, the segment it names. The bytes were published, so
// they are whole records; a record that does not decode (a segment sealed
// without a seal record after a writer died) ends the scan.
func (c *Cache) scanPublished(recs []caught, m *segment.Map, from, to int) ([]caught, uint64) {
	if to > m.Len() {
		to = m.Len()
	}
	s := segment.NewScanner(m.Bytes(to), from)
	for s.Next() {
		r := s.Record()
		e := index.NewEntry(r.Key)
		e.Expiry, e.Seg, e.Offset, e.Size, e.Kind = r.Expiry, uint32(m.ID()), uint32(s.Offset()), uint32(s.Size()), uint8(r.Kind)
		recs = append(recs, caught{kind: r.Kind, entry: e})
	}
	if end, err := s.Stop(); err != nil {
		c.log.Warn("catch-up stopped at a record that does not decode", "segment", m.ID(), "offset", end, "err", err)
	}
	return recs, s.ContinuesIn()
}

// mapForCatchUp returns the mapping of segment id covering at least need
// bytes, mapping the segment (or mapping it again, longer) as needed.
func (c *Cache) mapForCatchUp(id uint32, need int64) (*segment.Map, error) {
	c.mu.RLock()
	m := c.maps[id]
	c.mu.RUnlock()
	if m != nil && int64(m.Len()) >= need {
		return m, nil
	}
	f, err := os.OpenFile(filepath.Join(c.dir, segment.FileName(uint64(id))), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("kennel: catch up with segment %d: %w", id, err)
	}
	defer f.Close()
	nm, err := segment.MapFile(f, uint64(id), max(need, c.logSegmentSize))
	if err != nil {
		return nil, fmt.Errorf("kennel: catch up: %w", err)
	}
	c.installMap(nm)
	return nm, nil
}

// mapSealed maps a segment that was rolled while this process was not
// looking and returns it with its file size. A segment written by
// compaction is not part of the log: it returns nil. A missing segment is an
// error wrapping fs.ErrNotExist; ids are also taken by rolls that failed and
// by compaction, so the caller decides what that means.
func (c *Cache) mapSealed(id uint32) (*segment.Map, int64, error) {
	path := filepath.Join(c.dir, segment.FileName(uint64(id)))
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("kennel: catch up with segment %d: %w", id, err)
	}
	h, herr := segment.ReadHeader(f)
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("kennel: catch up with segment %d: %w", id, err)
	}
	if herr == nil && h.Compacted() {
		return nil, 0, nil
	}
	m, err := c.mapForCatchUp(id, fi.Size())
	return m, fi.Size(), err
}

// installMap makes m the mapping of its segment, releasing the one it
// replaces (a Scan that holds it keeps it mapped until it ends).
func (c *Cache) installMap(m *segment.Map) {
	id := uint32(m.ID())
	c.mu.Lock()
	if old := c.maps[id]; old != nil {
		old.Release()
	}
	c.maps[id] = m
	if c.usage[id] == nil {
		c.usage[id] = &segUsage{end: segment.HeaderSize}
	}
	if c.psegs[id] == nil {
		c.psegs[id] = c.policy.NewSegment(uint64(id), compaction.Small)
	}
	c.mu.Unlock()
}

// reloadLocked rebuilds the index from the directory, for a new generation:
// it loads the directory into a fresh cache value and takes over its index
// and mappings. Callers hold catchMu.
func (c *Cache) reloadLocked() error {
	fresh := &Cache{dir: c.dir, opts: c.opts, log: c.log, fs: c.fs, state: c.state, logSegmentSize: c.logSegmentSize}
	fresh.resetIndex()
	fresh.opts.ReadOnly = true // load only: write no hint, remove nothing
	if err := fresh.load(false); err != nil {
		fresh.state = nil
		fresh.releaseAll()
		return fmt.Errorf("kennel: reload after another process rewrote the directory: %w", err)
	}
	c.mu.Lock()
	// A segment this process started and has not published yet (a roll
	// in the group it is writing) is past what the reload saw: keep it.
	var own []uint32
	for id, m := range c.maps {
		if fresh.maps[id] == nil && id > fresh.seenSegment() && c.psegs[id].Queue() == compaction.Small {
			m.Acquire()
			fresh.maps[id] = m
			fresh.usage[id] = &segUsage{end: segment.HeaderSize}
			own = append(own, id)
		}
	}
	slices.Sort(own)
	for _, id := range own {
		fresh.psegs[id] = fresh.policy.NewSegment(uint64(id), compaction.Small)
	}
	old := c.maps
	c.takeIndex(fresh)
	c.stateStale = false // a writer published a generation: the state is current
	c.mu.Unlock()
	for _, m := range old {
		m.Release()
	}
	c.seen.Store(fresh.seen.Load())
	c.gen.Store(fresh.gen.Load())
	return nil
}

// beginAppend prepares to write a group: it takes the append lock (held for
// good with Options.Exclusive), catches up with other processes, and points
// the writer at the published end of the log. If the previous holder died
// while writing past that end, or a sync of the active segment failed, the
// segment is sealed at the published end and a new one started, so that
// nothing the dead writer left is ever read. Callers hold writeMu.
func (c *Cache) beginAppend() error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.appendHeld == nil {
		held, err := c.locks.Lock(context.Background(), lockf.AppendRange(), lockf.Exclusive)
		if err != nil {
			return fmt.Errorf("kennel: take the append lock: %w", err)
		}
		c.holding = held
		c.catchMu.Lock()
		err = c.catchUpLocked()
		c.catchMu.Unlock()
		if err != nil {
			return err
		}
	}
	pos := sharedstate.Position(c.seen.Load())
	if c.active == nil || uint32(c.active.ID()) != pos.Segment() {
		if c.active != nil {
			c.active.Close()
			c.active = nil
		}
		id := uint64(pos.Segment())
		w, err := segment.OpenWriter(c.fs, filepath.Join(c.dir, segment.FileName(id)), id, int64(pos.End()))
		if err != nil {
			return fmt.Errorf("kennel: open segment %d for appending: %w", id, err)
		}
		c.active = w
		if _, err := c.mapForCatchUp(uint32(id), int64(pos.End())); err != nil {
			return err
		}
	} else if c.active.Size() != int64(pos.End()) {
		c.active.SetSize(int64(pos.End()))
	}
	if c.state.Writing() {
		c.log.Warn("the previous writer died while appending; sealing its segment at the last published record",
			"segment", pos.Segment(), "end", pos.End())
		if err := c.removeDeadHint(uint64(pos.Segment())); err != nil {
			return err
		}
		if err := c.rollLocked(0); err != nil {
			return err
		}
		if err := c.removeOrphans(uint64(pos.Segment()), c.active.ID()); err != nil {
			return err
		}
	} else if c.mustRollLocked() {
		if err := c.rollLocked(0); err != nil {
			return err
		}
	}
	c.state.SetWriting(true)
	reached("append-begun")
	return nil
}

// endAppend publishes the log's new end (if beginAppend succeeded) and,
// unless the process holds the append lock for good, releases it. It runs
// after the group was applied to the index, under catchMu, so catch-up never
// applies it a second time.
func (c *Cache) endAppend(publish bool) {
	if !publish {
		c.releaseAppendLock()
		return
	}
	if c.active != nil {
		pos := sharedstate.MakePosition(uint32(c.active.ID()), uint32(c.active.Size()))
		c.seen.Store(uint64(pos))
		c.state.Publish(pos)
		reached("append-published")
	}
	c.state.SetWriting(false)
	c.releaseAppendLock()
}

func (c *Cache) releaseAppendLock() {
	if c.holding != nil {
		if err := c.holding.Unlock(); err != nil {
			c.log.Error("cannot release the append lock", "err", err)
		}
		c.holding = nil
	}
}

// mustRollLocked reports whether a sync of the active segment failed, in
// this process or another: it is never synced again or appended to.
func (c *Cache) mustRollLocked() bool {
	return c.active != nil && c.state.FailedSync() == c.active.ID()
}
