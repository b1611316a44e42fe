package inspect

import (
	"flag"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/sys/unix"

	"github.com/kennel-cache/kennel/engine"
)

var compactCmd = &command{
	name:    "compact",
	args:    "DIR",
	summary: "run compaction now and report what it reclaimed (opens DIR read-write)",
	help: `
Compact compacts the cache directory DIR now and reports what it reclaimed:
the disk use, segments and keys before and after, the segments it rewrote,
the live records it dropped (expired ones, and those evicted to fit
--budget), the bytes it copied into new segments, the bytes of sidecar files
it deleted, and the longest time it held the index lock.

Compaction rewrites every sealed segment that holds dead records
(superseded or deleted) or expired ones: it copies the live records into new
segments, then deletes the old files. The log segment being appended to is
left alone. A tool cannot know the CacheSize the writers chose, so compact
evicts nothing unless --budget says how much the directory may hold: it then
also evicts the least read records until the directory fits.

Compaction also sweeps the sidecar folder: it deletes the sidecar files no
live record names (old values: written over, deleted, expired or evicted),
and temporary files an hour old. A file whose path was handed out to a
program (Handle.Path) stays until the end of the grace period recorded in it
(its mtime) by the process that handed it out.

Compact is the one command that writes: it opens DIR read-write, like any
writer, while other processes go on using it. If no other process has the
directory open, the open recovers it first, as any first writer's does (it
seals a torn tail, removes orphan segments and temporary files). If another
process is compacting, compact waits for it to finish, then runs. Writers
go on appending meanwhile, and the other processes reload the directory
once it is done.

Exit status 2 when compact cannot run: DIR is missing, not a kennel
directory or not writable, or a process has it open with Options.Exclusive.`,
	setup: func(e *env, fs *flag.FlagSet) func([]string) error {
		var budget byteSize
		fs.Var(&budget, "budget", "also evict records until the directory holds at most `SIZE` bytes (units B, KiB, MiB, GiB, TiB)")
		return func(args []string) error { return runCompact(e, args[0], int64(budget)) }
	},
}

// compactReport is compact's JSON output; the human table shows the same.
// What the directory holds is measured after the open and after the
// compaction, so other processes' writes meanwhile count too.
type compactReport struct {
	Dir            string `json:"dir"`
	BudgetBytes    int64  `json:"budget_bytes"` // --budget; 0: nothing is evicted
	DiskBefore     int64  `json:"disk_bytes_before"`
	DiskAfter      int64  `json:"disk_bytes_after"`
	SegmentsBefore int    `json:"segments_before"`
	SegmentsAfter  int    `json:"segments_after"`
	KeysBefore     int    `json:"keys_before"` // expired keys included
	KeysAfter      int    `json:"keys_after"`
	Rewritten      uint64 `json:"segments_rewritten"`
	Evicted        uint64 `json:"records_evicted"`     // live records dropped: expired, or evicted to fit the budget
	ReclaimedBytes int64  `json:"reclaimed_bytes"`     // the bytes of the segments rewritten
	CopiedBytes    int64  `json:"copied_bytes"`        // of those, the bytes copied into new segments
	SweptBytes     int64  `json:"sidecar_bytes_swept"` // sidecar files named by no live record, and old temporary ones, deleted
	LongestPauseNs int64  `json:"longest_pause_ns"`
	DurationNs     int64  `json:"duration_ns"` // a wait for another process's compaction included
}

func runCompact(e *env, dir string, budget int64) error {
	if _, err := engine.CheckDir(dir); err != nil {
		return cannotRun(err)
	}
	// The lock and state files exist and can be written to in a directory
	// that cannot, so the open would succeed and the compaction fail at its
	// first new segment, leaving the shared state saying it was interrupted.
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return cannotRun(fmt.Errorf("%s is not writable, and compact must write: %w", dir, err))
	}
	opts := engine.Options{
		ManualCompaction: true, // this run only, none in the background
		CacheSize:        math.MaxInt64,
		// What the open recovers and what compaction could not do (a file
		// it could not delete) is the operator's to know.
		Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: dropTime})),
	}
	if budget > 0 {
		opts.CacheSize = budget
	}
	c, err := engine.Open(dir, opts)
	if err != nil {
		return cannotRun(err)
	}
	r, err := compact(e, c, dir)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	r.BudgetBytes = budget
	if e.json {
		return writeJSON(e.stdout, r)
	}
	printCompact(e, r)
	return nil
}

// compact runs the compaction on c and measures it.
func compact(e *env, c *engine.Cache, dir string) (*compactReport, error) {
	r := &compactReport{Dir: dir}
	st := c.Stats()
	segs, err := c.Segments()
	if err != nil {
		return nil, err
	}
	r.DiskBefore, r.KeysBefore, r.SegmentsBefore = st.DiskBytes, st.Keys, len(segs)
	if lockState(dir).Compaction == lockHeld {
		fmt.Fprintf(e.stderr, "fsinspect compact: another process is compacting %s; waiting for it to finish\n", dir)
	}
	start := time.Now()
	if err := c.Compact(); err != nil {
		return nil, err
	}
	r.DurationNs = int64(time.Since(start))
	// The cache was opened for this run alone: its counters are the run's.
	st = c.Stats()
	if segs, err = c.Segments(); err != nil {
		return nil, err
	}
	r.DiskAfter, r.KeysAfter, r.SegmentsAfter = st.DiskBytes, st.Keys, len(segs)
	r.Rewritten, r.Evicted = st.Rewritten, st.Evicted
	r.ReclaimedBytes, r.CopiedBytes, r.LongestPauseNs = st.ReclaimedBytes, st.CopiedBytes, int64(st.LongestPause)
	r.SweptBytes = st.SweptBytes
	return r, nil
}

func printCompact(e *env, r *compactReport) {
	tw := newTable(e.stdout)
	budget := "none: only dead and expired records are reclaimed (--budget evicts)"
	if r.BudgetBytes > 0 {
		budget = fmt.Sprintf("%s: records are evicted until the directory fits", formatSize(r.BudgetBytes))
	}
	disk := fmt.Sprintf("%s before, %s after", formatSize(r.DiskBefore), formatSize(r.DiskAfter))
	if d := r.DiskBefore - r.DiskAfter; d >= 0 {
		disk += fmt.Sprintf(": %s freed", formatSize(d))
	} else {
		disk += fmt.Sprintf(": %s more (other processes wrote meanwhile)", formatSize(-d))
	}
	rewritten := "none: nothing to reclaim"
	if r.Rewritten > 0 {
		rewritten = fmt.Sprintf("%s, %s; %s of it copied into new segments", plural(int(r.Rewritten), "segment"),
			formatSize(r.ReclaimedBytes), formatSize(r.CopiedBytes))
	}
	row(tw, "directory", r.Dir)
	row(tw, "budget", budget)
	row(tw, "disk", disk)
	row(tw, "segments", fmt.Sprintf("%d before, %d after", r.SegmentsBefore, r.SegmentsAfter))
	row(tw, "keys", fmt.Sprintf("%d before, %d after", r.KeysBefore, r.KeysAfter))
	row(tw, "rewritten", rewritten)
	row(tw, "evicted", fmt.Sprintf("%s (expired, or evicted to fit the budget)", plural(int(r.Evicted), "live record")))
	row(tw, "swept", fmt.Sprintf("%s of sidecar files no live record named, and old temporary files (those whose path was handed out stay until its grace ends)",
		formatSize(r.SweptBytes)))
	row(tw, "pause", fmt.Sprintf("%s at most (the longest hold of the index lock)", formatDuration(time.Duration(r.LongestPauseNs))))
	row(tw, "took", formatDuration(time.Duration(r.DurationNs)))
	tw.Flush()
}

// dropTime leaves the time out of the engine's log lines: the command's
// output is read at once.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// byteSize is a flag value counting bytes: a number, with one of the units
// sizes are printed in or none.
type byteSize int64

var sizeUnits = map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	num, unit := s, ""
	if i := strings.IndexFunc(s, unicode.IsLetter); i >= 0 {
		num, unit = strings.TrimSpace(s[:i]), s[i:]
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return fmt.Errorf("unknown unit %q: B, KiB, MiB, GiB or TiB", unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if n := v * float64(mult); err != nil || !(n >= 1) || n >= math.MaxInt64 {
		return fmt.Errorf("%q is not a size of one byte or more", s)
	}
	*b = byteSize(v * float64(mult))
	return nil
}
