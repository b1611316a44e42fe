package engine

// crashPoint, when set, is called at named points of the write paths where
// a crash leaves the directory in a state that recovery must handle. Only
// tests set it (export_test.go), to kill their own process there; in
// production it is nil, and a point costs a load and a compare.
var crashPoint func(name string)

// reached marks a crash point.
func reached(name string) {
	if crashPoint != nil {
		crashPoint(name)
	}
}

// crashPoints names every crash point, each with the state a process killed
// there leaves behind. A test (TestCrashPoints) kills a process at each one
// and checks what a reopen finds; it fails if a point is missing here, or
// is never reached. A kill loses nothing that reached the page cache, so a
// point after a sync leaves the bytes a point before it does: those points
// are for tests that also drop what was not synced.
var crashPoints = []string{
	// The log (write.go, share.go).
	"append-begun",     // the append lock is held and the state says writing; nothing written yet
	"append-written",   // a group's records are in the active segment, not published
	"append-synced",    // the same, synced (SyncAlways)
	"append-published", // the new end is published; the state still says writing
	"roll-sealed",      // the seal naming the next id is written; that segment does not exist
	"roll-synced",      // the sealed segment is synced; the next one still does not exist
	"roll-started",     // the next segment exists with its header and is active, not yet published
	"hint-written",     // a hint file is renamed in (after a roll, a compaction, or on open)
	"recover-started",  // the first opener started a new active segment; hints of the old ones not yet written

	// Sidecar files (sidecar.go, sweep.go).
	"sidecar-written", // a value's bytes are in a temporary file in the sidecar folder
	"sidecar-named",   // the file is renamed to its name; its record is not written
	"sweep-deleting",  // a sweep is about to delete one more file no live record names

	// Compaction (compact.go).
	"compact-begun",           // the state says compacting; nothing written yet
	"compact-output-created",  // a new compacted segment holds its header only
	"compact-chunk-written",   // copies of a chunk are in the compacted segment; the victim is intact
	"compact-output-synced",   // the copies of a whole victim are synced; the victim is intact
	"compact-segment-removed", // a reclaimed segment is deleted, its hint not yet
	"compact-output-closed",   // a compacted segment is finished and synced, without its hint
	"compact-output-hinted",   // a compacted segment has its hint
	"compact-published",       // the run bumped the generation; the state still says compacting
}
