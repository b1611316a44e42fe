package engine

import (
	"os"
	"path/filepath"
	"time"

	"github.com/kennel-cache/kennel/segment"
)

// Stats is a snapshot of a cache's contents and activity since Open.
type Stats struct {
	Keys        int   // index entries, expired ones not yet reclaimed included
	LiveBytes   int64 // bytes of the records the index points to
	DeadBytes   int64 // bytes of superseded, deleted and tombstone records
	Segments    int   // segment files in use
	DiskBytes   int64 // bytes of every file in the directory
	CacheSize   int64 // the budget (Options.CacheSize)
	Hits        uint64
	Misses      uint64
	Sets        uint64
	Deletes     uint64
	Corruptions uint64 // damaged records or files found since Open
	Creates     uint64 // calls of GetOrCreate's create functions
	StaleServed uint64 // stale values GetOrCreate returned while another caller regenerated

	// Compaction in this process since Open.
	Compactions    uint64        // runs that rewrote at least one segment
	Rewritten      uint64        // segments reclaimed
	Evicted        uint64        // live records dropped (evicted or expired)
	ReclaimedBytes int64         // bytes of the segments reclaimed
	CopiedBytes    int64         // bytes copied forward into new segments
	LongestPause   time.Duration // longest hold of the index lock by compaction

	SidecarFiles int   // values kept in sidecar files
	SidecarBytes int64 // their bytes
	SweptBytes   int64 // bytes of sidecar files deleted by this process's sweeps
}

// Stats returns current statistics. It reads the directory to size it.
func (c *Cache) Stats() Stats {
	if c.rlockCurrent() != nil {
		c.mu.RLock() // closed: the counts of an empty cache
	}
	s := Stats{
		Keys:        c.idx.Len(),
		LiveBytes:   c.live,
		DeadBytes:   c.dead,
		Segments:    len(c.maps),
		CacheSize:   c.opts.CacheSize,
		Hits:        c.hits.Load(),
		Misses:      c.misses.Load(),
		Sets:        c.sets.Load(),
		Deletes:     c.deletes.Load(),
		Corruptions: c.corruptions.Load(),
		Creates:     c.creates.Load(),
		StaleServed: c.staleServed.Load(),

		Compactions:    c.compactor.runs.Load(),
		Rewritten:      c.compactor.rewritten.Load(),
		Evicted:        c.compactor.evicted.Load(),
		ReclaimedBytes: c.compactor.reclaimed.Load(),
		CopiedBytes:    c.compactor.copied.Load(),
		LongestPause:   time.Duration(c.compactor.longestPause.Load()),

		SidecarFiles: len(c.sidecars),
		SweptBytes:   c.compactor.swept.Load(),
	}
	for _, size := range c.sidecars {
		s.SidecarBytes += size
	}
	c.mu.RUnlock()
	s.DiskBytes = dirBytes(c.dir)
	return s
}

// dirBytes adds up the sizes of the regular files in the directory and its
// sidecar folder.
func dirBytes(dir string) int64 {
	return filesBytes(dir) + filesBytes(filepath.Join(dir, segment.SidecarDir))
}

func filesBytes(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}
