package inspect

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kennel-cache/kennel/internal/sharedstate"
)

// stateFile is the name of the directory's shared state file (engine/share.go).
const stateFile = "state"

// What readState found (stateInfo.status, and "status" in JSON).
const (
	stateOK       = "ok"
	stateMissing  = "missing"       // no state file: never opened read-write by a kennel that shares
	stateUninit   = "uninitialized" // all zeros: no process finished opening the directory read-write
	stateCorrupt  = "corrupt"       // not a state file of this version; the next first opener rewrites it
	stateUnusable = "unusable"      // not a regular file, or unreadable: the engine cannot open the directory read-write
)

// stateInfo is the shared state file as fsinspect read it.
type stateInfo struct {
	status string
	err    error // why it is not stateOK
	hdr    sharedstate.Header
	// writerDied: the writing flag is set and no process holds the append
	// lock, so the last appender died between writing past the published
	// position and publishing (see probeState).
	writerDied bool
	// compactionInterrupted: the compacting flag is set and no process
	// holds the compaction lock, so the last compaction stopped before it
	// finished: its process died, or the run failed or was cut short by a
	// Close (see probeState).
	compactionInterrupted bool
}

func (s *stateInfo) ok() bool { return s.status == stateOK }

// readState reads dir's shared state file without changing it: opened
// read-only, never created, never followed through a symlink, and never
// waited on (O_NONBLOCK, should a FIFO sit under its name).
//
// The file's bytes are checked with sharedstate.Decode. The values of a valid
// file then come from a read-only mapping (sharedstate.File.Snapshot): the
// processes that share the directory change its words in place with atomic
// stores, and only an atomic load of the position, never a copy of the page
// that read(2) makes byte by byte, is sure not to mix two positions.
func readState(dir string) stateInfo {
	path := filepath.Join(dir, stateFile)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return stateInfo{status: stateMissing}
	}
	if err != nil {
		return stateInfo{status: stateUnusable, err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return stateInfo{status: stateUnusable, err: err}
	}
	if !fi.Mode().IsRegular() {
		return stateInfo{status: stateUnusable, err: fmt.Errorf("%s is not a regular file", path)}
	}
	b := make([]byte, sharedstate.Size)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return stateInfo{status: stateUnusable, err: err}
	}
	hdr, err := sharedstate.Decode(b[:n])
	switch {
	case errors.Is(err, sharedstate.ErrUninitialized):
		return stateInfo{status: stateUninit, err: err}
	case err != nil:
		return stateInfo{status: stateCorrupt, err: err}
	}
	if m, err := sharedstate.Open(path, 0, true); err == nil {
		if snap, err := m.Snapshot(); err == nil {
			hdr = snap
		}
		m.Close()
	}
	return stateInfo{status: stateOK, hdr: hdr}
}

// probeState reads the shared state and the locks together, and tells
// whether a writer died mid-append: the writing flag is set while no process
// holds the append lock. The flag and the lock cannot be read at one instant,
// so a live appender could pass for a dead one (flag read, then lock probed
// after it let go, or the other way round); the state is read a second time
// after the probe, and a writer is declared dead only if the flag is still
// set and the position has not moved: a live appender publishes before it
// lets go of the lock.
//
// It tells in the same way whether the last compaction was interrupted: the
// compacting flag is set while no process holds the compaction lock. A live
// compactor sets the flag after it takes the lock and clears it before it
// lets go, but a run that rewrites nothing bumps no generation, so two short
// runs could pass for an interrupted one: the flag read during the first,
// the lock probed free between the two, the flag read again during the
// second. So the lock is probed a second time, after the second read, and
// must still be free.
func probeState(dir string) (lockReport, stateInfo) {
	st := readState(dir)
	locks := lockState(dir)
	if st.ok() && st.hdr.Writing && locks.Append == lockFree {
		again := readState(dir)
		st.writerDied = again.ok() && again.hdr.Writing &&
			again.hdr.Position == st.hdr.Position && again.hdr.Generation == st.hdr.Generation
	}
	if st.ok() && st.hdr.Compacting && locks.Compaction == lockFree {
		again := readState(dir)
		st.compactionInterrupted = again.ok() && again.hdr.Compacting && again.hdr.Generation == st.hdr.Generation &&
			lockState(dir).Compaction == lockFree
	}
	return locks, st
}

// describeCompactionInterrupted says what an interrupted compaction left,
// and what becomes of it. Nothing is lost: a compaction deletes a segment
// only after the copies of its records are synced, and a segment it had not
// finished holds copies that carry their sequence numbers, so every reader
// resolves them against the originals.
func describeCompactionInterrupted(locks lockReport) string {
	const what = "the last compaction was interrupted (the compacting flag is set and no process holds the compaction lock: its process died, or the run failed or was closed mid-run)"
	if locks.open() {
		return what + ": the next compaction reloads the directory before it rewrites anything"
	}
	return what + ": the next process to open the directory read-write recovers it"
}

// describeWriterDied says what a writer that died mid-append left, and what
// becomes of it.
func describeWriterDied(locks lockReport, pos sharedstate.Position) string {
	if locks.open() {
		return fmt.Sprintf("a writer died mid-append (the writing flag is set and no process holds the append lock): the next append seals segment %d at offset %d, and what it wrote past there is never read",
			pos.Segment(), pos.End())
	}
	return fmt.Sprintf("a writer died mid-append (the writing flag is set and no process holds the append lock) past offset %d of segment %d: the next process to open the directory read-write recovers it",
		pos.End(), pos.Segment())
}

// stateReport is the shared state in stats' JSON output.
type stateReport struct {
	Status string `json:"status"` // "ok", "missing", "uninitialized", "corrupt" or "unusable"
	Error  string `json:"error,omitempty"`
	*StateFields
}

// StateFields are the fields of a valid state file.
type StateFields struct {
	Position      string `json:"position"` // "segment:offset": the published end of the log
	Segment       uint32 `json:"segment"`
	Offset        uint32 `json:"offset"`
	Generation    uint64 `json:"generation"`
	NextSeq       uint64 `json:"next_seq"`
	NextSegmentID uint64 `json:"next_segment_id"`
	Writing       bool   `json:"writing"`     // an appender is writing past the position
	WriterDied    bool   `json:"writer_died"` // writing, and nobody holds the append lock
	FailedSync    uint64 `json:"failed_sync"` // segment whose fdatasync failed; 0: none
	Compacting    bool   `json:"compacting"`  // a compaction is rewriting segments, or was interrupted
	// CompactionInterrupted: compacting, and nobody holds the compaction lock.
	CompactionInterrupted bool `json:"compaction_interrupted"`
}

func newStateReport(st stateInfo) stateReport {
	r := stateReport{Status: st.status, Error: errString(st.err)}
	if st.ok() {
		h := st.hdr
		r.StateFields = &StateFields{
			Position: h.Position.String(), Segment: h.Position.Segment(), Offset: h.Position.End(),
			Generation: h.Generation, NextSeq: h.NextSeq, NextSegmentID: h.NextSegID,
			Writing: h.Writing, WriterDied: st.writerDied, FailedSync: h.FailedSync,
			Compacting: h.Compacting, CompactionInterrupted: st.compactionInterrupted,
		}
	}
	return r
}

// describeState is the stats line for the state file.
func describeState(r stateReport) string {
	switch r.Status {
	case stateOK:
		return fmt.Sprintf("published %s (segment %d, offset %d), generation %d", r.Position, r.Segment, r.Offset, r.Generation)
	case stateMissing:
		return "none (no state file: the directory was never opened read-write by a kennel that shares it)"
	case stateUninit:
		return "not initialised (no process has finished opening the directory read-write)"
	}
	return fmt.Sprintf("%s: %s (run 'fsinspect verify')", r.Status, r.Error)
}
