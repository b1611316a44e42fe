package inspect

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kennel-cache/kennel/compaction"
	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/segment"
)

var statsCmd = &command{
	name:    "stats",
	args:    "DIR",
	summary: "keys, live/dead/expired bytes, segments, budget, format, locks and shared state",
	help: `
Stats prints what the cache directory DIR holds: its keys; the bytes of
records that are live, expired (still on disk, no longer returned) and dead
(superseded or deleted, waiting for compaction); each segment with its live
ratio; keys whose value is in a sidecar file, and the files of the sidecar
folder: those live records name, and those no live record names any more
(old values, which compaction's sweep deletes, after the writers' grace
period if their path was handed out), temporary files and files that are
not kennel's; the disk use against the size budget, sidecar files included;
the format version; which processes have the directory open and which of
its locks they hold; and the shared state file: the published end of the
log (segment:offset), the generation, a writer that died in the middle of
an append, a segment whose sync failed, a compaction that was interrupted.

Each segment is in one of the eviction policy's two queues: small, the log
that every write is appended to (its segments end with a seal record naming
the next one, except the active one), or main, the segments compaction
wrote, which hold the records it copied and the tombstones it keeps. A
main segment is sealed once it has its hint; until then a compaction is
writing it (writing), or one was interrupted before it finished it
(unfinished).

Locks are read from the kernel, which does not say which process holds
them. A read-only open cannot know the CacheSize the writers chose, so the
budget shown is the default one, and says so.`,
	setup: func(e *env, fs *flag.FlagSet) func([]string) error {
		return func(args []string) error { return runStats(e, args[0]) }
	},
}

// statsReport is stats' JSON output; the human table shows the same.
type statsReport struct {
	Dir           string         `json:"dir"`
	FormatVersion int            `json:"format_version"`
	Locks         lockReport     `json:"locks"`
	State         stateReport    `json:"state"`
	Keys          int            `json:"keys"`
	ExpiredKeys   int            `json:"expired_keys"`
	SidecarKeys   int            `json:"sidecar_keys"` // expired keys included
	Sidecars      sidecarStats   `json:"sidecars"`
	LiveBytes     int64          `json:"live_bytes"` // records the index points to, expired excluded
	ExpiredBytes  int64          `json:"expired_bytes"`
	DeadBytes     int64          `json:"dead_bytes"`
	DiskBytes     int64          `json:"disk_bytes"`
	BudgetBytes   int64          `json:"budget_bytes"`
	BudgetSource  string         `json:"budget_source"` // "default": the writer's option is not recorded
	Damaged       uint64         `json:"damaged"`       // damaged records or files the open found
	Segments      []segmentStats `json:"segments"`
}

type segmentStats struct {
	ID           uint64  `json:"id"`
	File         string  `json:"file"`
	Bytes        int64   `json:"bytes"`
	LiveBytes    int64   `json:"live_bytes"`
	ExpiredBytes int64   `json:"expired_bytes"`
	DeadBytes    int64   `json:"dead_bytes"`
	LiveKeys     int     `json:"live_keys"` // expired keys included
	LiveRatio    float64 `json:"live_ratio"`
	Hint         bool    `json:"hint"`
	Queue        string  `json:"queue"` // "small" (the log) or "main" (written by compaction)
	State        string  `json:"state"` // "active", "sealed", or for main "writing" or "unfinished"
}

// sidecarStats is what the sidecar folder holds, in stats' JSON output.
type sidecarStats struct {
	// Folder is "ok", "none" (no folder yet: the first read-write open
	// makes it), what is there instead of a folder ("a symlink"), or the
	// error that kept it from being listed.
	Folder    string `json:"folder"`
	LiveFiles int    `json:"live_files"` // files that live records name, expired ones included
	LiveBytes int64  `json:"live_bytes"`
	Missing   int    `json:"missing_files"` // of those, files not in the folder
	// Files in the folder with a sidecar file's name, and of those the ones
	// no live record names, which compaction's sweep deletes (after the
	// grace period if their path was handed out).
	DiskFiles         int   `json:"disk_files"`
	DiskBytes         int64 `json:"disk_bytes"`
	UnreferencedFiles int   `json:"unreferenced_files"`
	UnreferencedBytes int64 `json:"unreferenced_bytes"`
	TempFiles         int   `json:"temp_files"` // writes in flight, or a crash's leftovers
	TempBytes         int64 `json:"temp_bytes"`
	OtherFiles        int   `json:"other_files"` // not kennel's
}

func runStats(e *env, dir string) error {
	version, err := engine.CheckDir(dir)
	if err != nil {
		return cannotRun(err)
	}
	c, err := openCache(dir)
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := collectStats(c, dir, version)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, r)
	}
	printStats(e, r)
	return nil
}

func collectStats(c *engine.Cache, dir string, version int) (*statsReport, error) {
	locks, state := probeState(dir)
	st := c.Stats()
	segs, err := c.Segments()
	if err != nil {
		return nil, err
	}
	r := &statsReport{
		Dir: dir, FormatVersion: version, Locks: locks, State: newStateReport(state),
		Keys: st.Keys, DeadBytes: st.DeadBytes, DiskBytes: st.DiskBytes,
		BudgetBytes: st.CacheSize, BudgetSource: "default", Damaged: st.Corruptions,
		Segments: []segmentStats{},
	}
	// The folder is listed before the keys are read: a file whose record
	// is published meanwhile is then seen named, not unreferenced.
	folder := listSidecarDir(dir)
	live := make(map[segment.SidecarName]int64)
	expiredBySeg := make(map[uint64]int64)
	err = c.Keys(nil, func(k engine.KeyInfo) error {
		if k.Expired {
			r.ExpiredKeys++
			r.ExpiredBytes += k.Size
			expiredBySeg[k.Segment] += k.Size
		}
		if k.Kind == segment.KindPutSidecar.String() {
			r.SidecarKeys++
			// A descriptor that cannot be read is verify's to report.
			if d, _, err := sidecarOf(c, dir, k); err == nil {
				live[d.Name] = d.Size
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.Sidecars = countSidecars(folder, live)
	r.LiveBytes = st.LiveBytes - r.ExpiredBytes
	for _, s := range segs {
		ss := segmentStats{
			ID: s.ID, File: s.File, Bytes: s.Bytes,
			LiveBytes: s.LiveBytes - expiredBySeg[s.ID], ExpiredBytes: expiredBySeg[s.ID],
			DeadBytes: s.DeadBytes, LiveKeys: s.LiveKeys,
		}
		if s.Bytes > 0 {
			ss.LiveRatio = float64(ss.LiveBytes) / float64(s.Bytes)
		}
		_, err := os.Lstat(filepath.Join(dir, segment.HintFileName(s.ID)))
		ss.Hint = err == nil
		ss.Queue, ss.State = segmentQueue(s), segmentState(s, ss.Hint, locks)
		r.Segments = append(r.Segments, ss)
	}
	return r, nil
}

// countSidecars sums up the sidecar folder's files against the files live
// records name.
func countSidecars(folder sidecarDir, live map[segment.SidecarName]int64) sidecarStats {
	s := sidecarStats{
		Folder: "ok", LiveFiles: len(live),
		TempFiles: len(folder.temps), TempBytes: bytesOf(folder.temps), OtherFiles: len(folder.others),
	}
	switch {
	case !folder.exists:
		s.Folder = "none"
	case folder.notDir != "":
		s.Folder = folder.notDir
	case folder.err != nil:
		s.Folder = folder.err.Error()
	}
	onDisk := make(map[segment.SidecarName]bool, len(folder.named))
	for _, e := range folder.named {
		n, _ := segment.ParseSidecarName(e.name)
		onDisk[n] = true
		s.DiskFiles++
		s.DiskBytes += e.size
		if _, ok := live[n]; !ok {
			s.UnreferencedFiles++
			s.UnreferencedBytes += e.size
		}
	}
	for n, size := range live {
		s.LiveBytes += size
		if !onDisk[n] {
			s.Missing++
		}
	}
	return s
}

// describeSidecarKeys is the stats line for the values in sidecar files.
func describeSidecarKeys(r *statsReport) string {
	s := r.Sidecars
	if r.SidecarKeys == 0 {
		return "0 keys"
	}
	line := fmt.Sprintf("%d keys, %s in %s", r.SidecarKeys, formatSize(s.LiveBytes), plural(s.LiveFiles, "file"))
	if s.Missing > 0 {
		line += fmt.Sprintf("; %d missing (run 'fsinspect verify')", s.Missing)
	}
	return line
}

// describeSidecarDir is the stats line for the sidecar folder.
func describeSidecarDir(s sidecarStats) string {
	switch s.Folder {
	case "ok":
	case "none":
		return "none yet (the first read-write open creates it)"
	default:
		return fmt.Sprintf("unusable: %s (run 'fsinspect verify')", s.Folder)
	}
	if s.DiskFiles+s.TempFiles+s.OtherFiles == 0 {
		return "empty"
	}
	line := fmt.Sprintf("%s in %s", formatSize(s.DiskBytes), plural(s.DiskFiles, "file"))
	if s.UnreferencedFiles > 0 {
		line += fmt.Sprintf("; %s in %s no live record names (compaction's sweep deletes them, after the grace period if their path was handed out)",
			formatSize(s.UnreferencedBytes), plural(s.UnreferencedFiles, "file"))
	}
	if s.TempFiles > 0 {
		line += fmt.Sprintf("; %s in %s (writes in flight, or left by a crash)", formatSize(s.TempBytes), plural(s.TempFiles, "temporary file"))
	}
	if s.OtherFiles > 0 {
		line += fmt.Sprintf("; %s not kennel's", plural(s.OtherFiles, "file"))
	}
	return line
}

// segmentQueue names the eviction policy's queue that s is in.
func segmentQueue(s engine.SegmentInfo) string {
	if s.Compacted {
		return compaction.Main.String()
	}
	return compaction.Small.String()
}

// segmentState says whether s may still grow. Of the log's segments, the
// active one is the one the published position is in (the newest, in a
// directory without a state file); the others are sealed, whether their
// hint is written yet or not: a writer writes it after the roll. A
// compaction writes the hint of a segment it wrote once it has finished it,
// and never appends to it again; without a hint, the segment is either
// being written, or was left by a compaction that was interrupted.
func segmentState(s engine.SegmentInfo, hint bool, locks lockReport) string {
	switch {
	case s.Active:
		return "active"
	case !s.Compacted || hint:
		return "sealed"
	case locks.Compaction == lockHeld:
		return "writing"
	}
	return "unfinished"
}

func printStats(e *env, r *statsReport) {
	tw := newTable(e.stdout)
	damaged := "none found on open"
	if r.Damaged > 0 {
		damaged = fmt.Sprintf("%d damaged records or files found on open (run 'fsinspect verify')", r.Damaged)
	}
	row(tw, "directory", r.Dir)
	row(tw, "format", fmt.Sprintf("kennel format %d", r.FormatVersion))
	row(tw, "open", describeOpen(r.Locks, r.Dir))
	row(tw, "append", describeAppend(r.Locks))
	row(tw, "compaction", describeCompaction(r.Locks))
	row(tw, "state", describeState(r.State))
	if f := r.State.StateFields; f != nil {
		switch {
		case f.WriterDied:
			row(tw, "writer", describeWriterDied(r.Locks, sharedstate.MakePosition(f.Segment, f.Offset)))
		case f.Writing && !r.Locks.known():
			row(tw, "writer", "appending, or died mid-append (the writing flag is set; the lock state is unknown)")
		}
		switch {
		case f.CompactionInterrupted:
			row(tw, "compactor", describeCompactionInterrupted(r.Locks))
		case f.Compacting && !r.Locks.known():
			row(tw, "compactor", "compacting, or interrupted mid-run (the compacting flag is set; the lock state is unknown)")
		}
		if f.FailedSync != 0 {
			row(tw, "failed sync", fmt.Sprintf("segment %d: an fdatasync of it failed, so it is sealed, never synced or appended to again", f.FailedSync))
		}
	}
	row(tw, "keys", fmt.Sprintf("%d (%d expired)", r.Keys, r.ExpiredKeys))
	row(tw, "live", formatSize(r.LiveBytes))
	row(tw, "expired", formatSize(r.ExpiredBytes))
	row(tw, "dead", formatSize(r.DeadBytes))
	row(tw, "sidecars", describeSidecarKeys(r))
	row(tw, "sidecar dir", describeSidecarDir(r.Sidecars))
	row(tw, "disk", fmt.Sprintf("%s of the %s %s budget (%s; a reader cannot know the writer's CacheSize)",
		formatSize(r.DiskBytes), r.BudgetSource, formatSize(r.BudgetBytes), formatPercent(r.DiskBytes, r.BudgetBytes)))
	row(tw, "damage", damaged)
	row(tw, "segments", fmt.Sprint(len(r.Segments)))
	tw.Flush()
	if len(r.Segments) == 0 {
		return
	}
	fmt.Fprintln(e.stdout)
	row(tw, "ID", "FILE", "QUEUE", "SIZE", "LIVE", "EXPIRED", "DEAD", "LIVE%", "KEYS", "HINT", "STATE")
	for _, s := range r.Segments {
		hint := "no"
		if s.Hint {
			hint = "yes"
		}
		row(tw, fmt.Sprint(s.ID), s.File, s.Queue, formatSize(s.Bytes), formatSize(s.LiveBytes), formatSize(s.ExpiredBytes),
			formatSize(s.DeadBytes), formatPercent(s.LiveBytes, s.Bytes), fmt.Sprint(s.LiveKeys), hint, s.State)
	}
	tw.Flush()
}
