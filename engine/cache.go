package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kennel-cache/kennel/compaction"
	"github.com/kennel-cache/kennel/index"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/internal/vfs"
	"github.com/kennel-cache/kennel/lockf"
	"github.com/kennel-cache/kennel/segment"
)

// Cache is a persistent key-value cache kept in one directory. All methods
// are safe for concurrent use by many goroutines.
type Cache struct {
	dir  string
	opts Options
	log  *slog.Logger
	// fs makes every call that changes the directory: the real filesystem,
	// or a crash or fault-injecting one in tests (Options.fs).
	fs vfs.FS

	// locks is the directory's lock file (nil when ReadOnly). The process
	// holds users (shared, or exclusive with Options.Exclusive) while it has
	// the directory open, opening while it opens, appendHeld for its
	// lifetime with Options.Exclusive, and holding while it appends a group.
	locks                               *lockf.File
	opening, users, appendHeld, holding *lockf.Held

	// state is the shared state file: the published end of the log, the
	// generation, and the counters shared by appenders. nil for a read-only
	// cache of a directory that has none.
	state *sharedstate.File
	// stateStale is set for a read-only cache that found no process with
	// the directory open: it loads every segment rather than trust the
	// published position, and follows the state once a writer bumps the
	// generation.
	stateStale bool
	// seen and gen are the log position and generation the index reflects.
	seen, gen atomic.Uint64
	// catchMu serialises changes of seen: catch-up with other processes'
	// records, and applying this process's own groups.
	catchMu sync.Mutex

	// closed is set once, by Close, before it takes writeMu and mu; readers
	// check it while holding mu, so none reads a mapping Close released.
	closed atomic.Bool

	// queueMu protects queue: write requests waiting for a leader.
	queueMu sync.Mutex
	queue   []*request
	spare   []*request // the other queue buffer, owned by the leader (writeMu)

	// writeMu serialises the log: the group-commit leader holds it while it
	// encodes, writes and (SyncAlways) syncs a group, and while it rolls.
	// Lock order: writeMu, then mu.
	writeMu sync.Mutex
	active  *segment.Writer
	pending []pending // the group being written; reused
	flushed int       // pending[:flushed] are written to disk
	dirty   atomic.Bool

	// mu protects the index and the segment mappings. Readers hold it shared
	// for a lookup and the copy of the value out of its mapping; the leader
	// holds it exclusively only to apply a written group to the index.
	mu      sync.RWMutex
	cloneMu sync.Mutex // serialises index clones taken under a shared mu
	idx     *index.Index
	maps    map[uint32]*segment.Map
	usage   map[uint32]*segUsage // per segment, the same keys as maps
	live    int64                // bytes of records the index points to
	dead    int64                // bytes of records superseded, deleted or never live (tombstones)
	withTTL int                  // index entries that carry an expiry
	// sidecars holds the sidecar files the index's put-sidecar records
	// name, with their sizes: the files compaction's sweep must keep.
	sidecars map[segment.SidecarName]int64
	// tombs holds the deleted keys whose older puts are still on disk, so
	// that compaction keeps their tombstones while those puts exist.
	tombs map[string]tomb
	// policy is the eviction policy (package compaction); psegs its view
	// of each segment, the same keys as maps. The log's segments are its
	// Small queue, those written by compaction its Main queue.
	policy *compaction.Policy
	psegs  map[uint32]*compaction.Segment
	// logSegmentSize is where the log's active segment is sealed: the
	// policy's advice for its Small queue.
	logSegmentSize int64

	compactor compactor

	// background work: the interval syncer, hint writers and background
	// regenerations of GetOrCreate (whose context bgCtx is cancelled by Close).
	stop     chan struct{}
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc

	hits, misses, sets, deletes, corruptions, creates, staleServed atomic.Uint64
}

// Open opens the cache in dir, creating the directory if needed, and
// rebuilds the index from hint files and segment scans. A directory that
// holds other files, or kennel files of another format version, is refused
// and left untouched.
func Open(dir string, opts Options) (*Cache, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := &Cache{
		dir:  dir,
		opts: opts,
		log:  opts.Logger.With("dir", dir),
		fs:   opts.fs,
		stop: make(chan struct{}),
	}
	c.resetIndex()
	c.logSegmentSize = c.policy.SegmentSize(compaction.Small, opts.SegmentSize)
	c.compactor.kick = make(chan struct{}, 1)
	c.compactor.unpublished = make(map[segment.SidecarName]int64)
	c.bgCtx, c.bgCancel = context.WithCancel(context.Background())
	if err := c.openDir(); err != nil {
		return nil, err
	}
	first, err := c.join()
	if err == nil && !opts.ReadOnly {
		err = c.writeFormat()
	}
	if err == nil && !opts.ReadOnly {
		err = c.openSidecarDir(first)
	}
	if err == nil {
		err = c.load(first)
	}
	if err == nil {
		err = c.finishJoin(first)
	}
	if err != nil {
		if c.active != nil {
			c.active.Close()
		}
		c.releaseAll()
		return nil, err
	}
	if opts.Sync == SyncInterval && !opts.ReadOnly {
		c.bg.Add(1)
		go c.syncLoop()
	}
	if !opts.ReadOnly && !opts.ManualCompaction {
		c.compactor.disk.Store(dirBytes(dir))
		c.bg.Add(1)
		go c.compactLoop()
	}
	return c, nil
}

// resetIndex gives the cache an empty index, segment table and eviction
// policy, for Open to load. takeIndex moves the same fields.
func (c *Cache) resetIndex() {
	c.idx = index.New()
	c.maps = make(map[uint32]*segment.Map)
	c.usage = make(map[uint32]*segUsage)
	c.tombs = make(map[string]tomb)
	c.sidecars = make(map[segment.SidecarName]int64)
	c.psegs = make(map[uint32]*compaction.Segment)
	p, err := compaction.New(compaction.Config{Budget: c.opts.CacheSize})
	if err != nil {
		panic(err) // validated options make a valid config
	}
	c.policy = p
	c.live, c.dead, c.withTTL = 0, 0, 0
}

// takeIndex replaces the cache's index, segment table, policy and
// accounting (everything resetIndex makes) with from's. Callers hold mu.
func (c *Cache) takeIndex(from *Cache) {
	c.idx, c.maps, c.usage, c.tombs, c.sidecars = from.idx, from.maps, from.usage, from.tombs, from.sidecars
	c.policy, c.psegs = from.policy, from.psegs
	c.live, c.dead, c.withTTL = from.live, from.dead, from.withTTL
}

// now returns the clock's time in unix nanoseconds.
func (c *Cache) now() int64 { return c.opts.Clock().UnixNano() }

// Dir returns the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Sync makes every write that has returned durable.
func (c *Cache) Sync() error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.opts.ReadOnly {
		return nil
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	return c.syncActiveLocked()
}

// syncActiveLocked syncs the active segment. A failed sync is never retried
// (the kernel may have dropped the dirty pages and cleared the error): the
// segment is sealed and the next write rolls to a new one.
func (c *Cache) syncActiveLocked() error {
	if c.active == nil {
		return nil // nothing written by this process yet
	}
	if c.mustRollLocked() {
		return fmt.Errorf("kennel: sync: an earlier sync of segment %d failed; it is sealed", c.active.ID())
	}
	c.dirty.Store(false)
	if err := c.active.Sync(); err != nil {
		c.state.SetFailedSync(c.active.ID())
		c.log.Error("sync failed; sealing segment", "segment", c.active.ID(), "err", err)
		return fmt.Errorf("kennel: sync segment %d: %w", c.active.ID(), err)
	}
	return nil
}

// syncLoop implements SyncInterval. The fdatasync runs outside writeMu, so
// writers never wait for it; a roll that closes the file meanwhile is safe
// (the descriptor stays open until the sync returns, and the roll syncs the
// segment itself). A failure seals the segment if it is still the active one.
func (c *Cache) syncLoop() {
	defer c.bg.Done()
	t := time.NewTicker(c.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if !c.dirty.Load() {
				continue
			}
			c.writeMu.Lock()
			w := c.active
			skip := c.closed.Load() || w == nil || c.mustRollLocked()
			c.dirty.Store(false)
			c.writeMu.Unlock()
			if skip {
				continue
			}
			if err := w.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
				c.state.SetFailedSync(w.ID())
				c.log.Error("interval sync failed; sealing segment", "segment", w.ID(), "err", err)
			}
		}
	}
}

// Close syncs and closes the cache. Every method called afterwards returns
// ErrClosed; Close itself returns ErrClosed the second time.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return ErrClosed
	}
	// Wait for a group in flight: leaders that start from now on see closed
	// and write nothing, so no roll can start background work after Wait.
	c.writeMu.Lock()
	//lint:ignore SA2001 the empty critical section is the barrier
	c.writeMu.Unlock()
	close(c.stop)
	c.bgCancel()
	c.bg.Wait()
	// A Compact called by the user stops at its next step once closed is
	// set; wait for it before the segments go.
	c.compactor.mu.Lock()
	//lint:ignore SA2001 the empty critical section is the barrier
	c.compactor.mu.Unlock()

	var err error
	c.writeMu.Lock()
	if c.active != nil {
		mustRoll := c.mustRollLocked()
		err = c.active.Flush()
		if serr := c.active.Sync(); err == nil && !mustRoll {
			err = serr
		}
		if cerr := c.active.Close(); err == nil {
			err = cerr
		}
	}
	c.writeMu.Unlock()

	c.releaseAll()
	return err
}

// releaseAll drops the cache's mappings, its locks and the state mapping.
// Taking catchMu and mu waits out any catch-up or read that may still use
// them.
func (c *Cache) releaseAll() {
	c.catchMu.Lock()
	defer c.catchMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.maps {
		m.Release()
	}
	c.resetIndex()
	c.leave()
}
