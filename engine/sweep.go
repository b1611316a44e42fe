package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kennel-cache/kennel/lockf"
	"github.com/kennel-cache/kennel/segment"
)

// This file deletes sidecar files whose values are gone (see sidecar.go
// for their life), and the temporary files writers leave when they crash.

// tempMaxAge is how long a temporary file may sit untouched in the
// sidecar folder before a sweep takes it for a crashed writer's. The first
// process to open the directory removes every temporary file at once.
const tempMaxAge = time.Hour

// sweepSidecars deletes the sidecar files no live record refers to, once
// their grace is over, and stale temporary files. It runs in the
// compacting process. It returns the bytes it freed.
func (c *Cache) sweepSidecars() int64 {
	entries, err := os.ReadDir(c.sidecarDir())
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("cannot list the sidecar folder", "err", err)
		}
		return 0
	}
	if len(entries) == 0 {
		return 0
	}
	// Which files are referenced is learnt after the listing, with no
	// writer between naming a file and publishing its record: a file
	// listed is then either referenced or no one's.
	ctx, cancel := context.WithTimeout(c.bgCtx, time.Second)
	held, err := c.locks.Lock(ctx, lockf.SidecarRange(), lockf.Exclusive)
	cancel()
	if err != nil {
		return 0 // writers kept it; the next sweep tries again
	}
	c.catchMu.Lock()
	err = c.catchUpLocked()
	c.catchMu.Unlock()
	c.mu.RLock()
	live := maps.Clone(c.sidecars)
	maps.Copy(live, c.compactor.unpublished)
	c.mu.RUnlock()
	held.Unlock()
	if err != nil {
		return 0
	}

	now := time.Now()
	var freed int64
	waiting := false
	for _, e := range entries {
		name := e.Name()
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if isTemp(name) {
			if now.Sub(ctime(fi)) < tempMaxAge {
				continue
			}
		} else if n, ok := segment.ParseSidecarName(name); !ok {
			continue // not kennel's: left alone
		} else if _, ok := live[n]; ok {
			continue
		} else if keptUntil(fi).After(now) {
			waiting = true
			continue
		}
		reached("sweep-deleting")
		if err := c.fs.Remove(filepath.Join(c.sidecarDir(), name)); err == nil {
			freed += fi.Size()
		} else if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("cannot delete a sidecar file", "file", name, "err", err)
		}
	}
	c.compactor.sidecarsWaiting.Store(waiting)
	c.compactor.swept.Add(freed)
	return freed
}

// ctime returns when a file was last named, written or changed.
func ctime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix())
	}
	return fi.ModTime()
}

// openSidecarDir creates the sidecar folder if needed. The first process to
// open the directory also deletes every temporary file in it: no writer is
// in flight.
func (c *Cache) openSidecarDir(first bool) error {
	dir := c.sidecarDir()
	if err := c.fs.Mkdir(dir, c.opts.dirMode()); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("kennel: create sidecar folder: %w", err)
	}
	// Files are created in it by name: it must not lead elsewhere.
	if fi, err := os.Lstat(dir); err != nil {
		return fmt.Errorf("kennel: sidecar folder: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrNotKennelDir, dir)
	}
	if !first {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("kennel: read sidecar folder: %w", err)
	}
	for _, e := range entries {
		if isTemp(e.Name()) {
			c.log.Info("removing a sidecar temporary file left by a crash", "file", e.Name())
			c.fs.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}
