package engine_test

import (
	"errors"
	"fmt"
	"github.com/kennel-cache/kennel/internal/vfs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/segment"
)

// These tests stage what a dead writer leaves behind by hand, in one
// process; multiprocess_test.go kills real ones.

func openState(tb testing.TB, dir string) *sharedstate.File {
	tb.Helper()
	st, err := sharedstate.Open(filepath.Join(dir, "state"), 0o600, false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// TestOrphanSegmentIgnored: a writer took a segment id, created the segment
// and wrote a record into it, then died before publishing. The next writer
// seals the log past it; no process, then or after a reopen, sees the
// record, and the first opener deletes the file.
func TestOrphanSegmentIgnored(t *testing.T) {
	dir := t.TempDir()
	a := openCache(t, dir, smallOptions())
	mustSet(t, a, "before", "1")

	st := openState(t, dir)
	id := st.TakeSegmentID()
	w, err := segment.Create(vfs.OS{}, dir, id, 0, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	w.Append(&segment.Record{Kind: segment.KindPut, Seq: st.TakeSeqs(1), Key: []byte("ghost"), Value: []byte("boo")})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	st.SetWriting(true) // it died mid-append

	b := openCache(t, dir, smallOptions())
	mustSet(t, b, "after", "2") // seals the log at the published end
	for _, c := range []*engine.Cache{a, b} {
		wantMissing(t, c, "ghost")
		wantValue(t, c, "after", "2")
	}
	ro := smallOptions()
	ro.ReadOnly = true
	r := openCache(t, dir, ro)
	wantMissing(t, r, "ghost")
	mustClose(t, r)
	mustClose(t, a)
	mustClose(t, b)

	c := openCache(t, dir, smallOptions())
	checkModel(t, c, map[string]string{"before": "1", "after": "2"})
	if _, err := os.Stat(filepath.Join(dir, segment.FileName(id))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the orphan segment is still there: %v", err)
	}
}

// TestDeadWriterTailSealed: a writer wrote whole records past the published
// end and died. The next writer writes over them and nobody ever reads them.
func TestDeadWriterTailSealed(t *testing.T) {
	dir := t.TempDir()
	a := openCache(t, dir, smallOptions())
	mustSet(t, a, "before", "1")

	st := openState(t, dir)
	pos := st.Position()
	path := filepath.Join(dir, segment.FileName(uint64(pos.Segment())))
	rec := segment.Record{Kind: segment.KindPut, Seq: st.TakeSeqs(1), Key: []byte("ghost"), Value: []byte("boo")}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(segment.AppendRecord(nil, &rec), int64(pos.End())); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st.SetWriting(true)

	b := openCache(t, dir, smallOptions())
	mustSet(t, b, "after", "2")
	for _, c := range []*engine.Cache{a, b} {
		wantMissing(t, c, "ghost")
		wantValue(t, c, "after", "2")
	}
	mustClose(t, a)
	mustClose(t, b)
	c := openCache(t, dir, smallOptions())
	checkModel(t, c, map[string]string{"before": "1", "after": "2"})
}

// TestReadOnlyDistrustsStaleState: with no process holding the directory
// open, the state file may be stale (a machine crash); a read-only open then
// reads every segment, and follows the state again once a writer opens.
func TestReadOnlyDistrustsStaleState(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	st := openState(t, dir)
	early := st.Position()
	mustSet(t, c, "k", "v")
	mustClose(t, c)
	st.Publish(early) // as if the page holding the position was lost

	ro := smallOptions()
	ro.ReadOnly = true
	r := openCache(t, dir, ro)
	wantValue(t, r, "k", "v")

	w := openCache(t, dir, smallOptions())
	mustSet(t, w, "k2", "v2")
	wantValue(t, r, "k2", "v2")
	wantValue(t, r, "k", "v")
}

// TestConcurrentFirstOpen: caches opening a new directory at once all
// succeed, whoever writes its format file.
func TestConcurrentFirstOpen(t *testing.T) {
	for round := range 100 {
		dir := filepath.Join(t.TempDir(), "cache")
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				c, err := engine.Open(dir, smallOptions())
				if err == nil {
					err = c.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, opener %d: %v", round, i, err)
			}
		}
	}
}

// TestEmptyOrphanNotCorruption: a writer that died between creating a
// segment and writing its header leaves an empty file the log skips; open
// deletes it and reports no corruption.
func TestEmptyOrphanNotCorruption(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, smallOptions())
	st := openState(t, dir)
	id := st.TakeSegmentID()
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(id)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	model := map[string]string{}
	for i := range 200 { // several rolls, past the empty segment's id
		k := fmt.Sprintf("k%03d", i)
		model[k] = value(k, i, 100)
		mustSet(t, c, k, model[k])
	}
	mustClose(t, c)
	c = openCache(t, dir, smallOptions())
	checkModel(t, c, model)
	if n := c.Stats().Corruptions; n != 0 {
		t.Fatalf("Stats().Corruptions = %d after an empty abandoned segment, want 0", n)
	}
	if _, err := os.Stat(filepath.Join(dir, segment.FileName(id))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the empty orphan is still there: %v", err)
	}
}
