package engine

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/kennel-cache/kennel/compaction"
	"github.com/kennel-cache/kennel/index"
	"github.com/kennel-cache/kennel/internal/sharedstate"
	"github.com/kennel-cache/kennel/segment"
)

// rebuild carries state that only matters while the index is rebuilt.
type rebuild struct {
	// recs holds every record found, whatever its segment; buildIndex
	// sorts them by key and keeps the highest sequence number of each.
	recs   []recovered
	maxSeq uint64
	// hints to write for sealed segments that had none.
	hints map[uint64][]byte
	// badHeaders are segments whose header could not be read.
	badHeaders map[uint64]error
}

// recovered is one record found on open: its would-be index entry and its
// sequence number.
type recovered struct {
	entry index.Entry
	seq   uint64
}

// loaded says how a segment's load ended.
type loaded struct {
	end    int64  // bytes holding the header and whole records
	size   int64  // file size
	clean  bool   // no tail past end and no damage inside
	sealed bool   // it has a hint or ends with a seal: it was sealed, whatever its position
	next   uint64 // the segment its seal says the log continues in; 0 if none
}

// errVanished says a segment disappeared while the directory was loaded.
var errVanished = errors.New("kennel: a segment was removed while the directory was loaded")

// load runs recover, again as long as compaction removes a segment under
// it (each retry sees the directory after one more compaction step).
func (c *Cache) load(first bool) error {
	for attempt := 0; ; attempt++ {
		err := c.recover(first)
		if !errors.Is(err, errVanished) || attempt == 100 {
			return err
		}
		c.mu.Lock()
		for _, m := range c.maps {
			m.Release()
		}
		c.resetIndex()
		c.mu.Unlock()
	}
}

// recover builds the index from the directory's segments in id order.
//
// The first process to open the directory (first) recovers it: it reads
// every segment, and opens the last one for appending unless it is damaged,
// ends in a torn tail, or was sealed; then it is sealed at its last good
// record (its hint records that length, so the tail is never read as
// records) and a new segment becomes the active one. Nothing is truncated:
// bytes past a segment's end are simply not records. It then initialises the
// shared state from what it found.
//
// Any other process (and a read-only one that found a state file) loads the
// log up to the position published in the shared state: segments past it
// are being created by an append in flight.
func (c *Cache) recover(first bool) error {
	// The published position is read before the directory, so that every
	// segment it names is listed: segments created after it are skipped.
	live := !first && c.state != nil && !c.stateStale
	var pos sharedstate.Position
	if c.state != nil && !first {
		c.gen.Store(c.state.Generation())
		pos = c.state.Position()
		c.seen.Store(uint64(pos))
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("kennel: read directory: %w", err)
	}
	var ids []uint64
	var temps []string // removed once the directory is known to be ours to write
	hints := make(map[uint64]bool)
	for _, e := range entries {
		name := e.Name()
		if isTemp(name) {
			temps = append(temps, name)
			continue
		}
		if id, ok := segment.ParseFileName(name); ok {
			ids = append(ids, id)
		} else if id, ok := segment.ParseHintFileName(name); ok {
			hints[id] = true
		}
	}
	slices.Sort(ids)
	if len(ids) > 0 && ids[len(ids)-1] >= math.MaxUint32 {
		return fmt.Errorf("%w: segment id %d exceeds this kennel's limit", ErrIncompatible, ids[len(ids)-1])
	}
	// Segments written by compaction are not part of the log: they are
	// loaded whole, whatever the published position, and never appended to.
	compacted := c.compactedSegments(ids)
	if live {
		ids = slices.DeleteFunc(ids, func(id uint64) bool { return !compacted[id] && id > uint64(pos.Segment()) })
	}
	var logIDs []uint64
	for _, id := range ids {
		if !compacted[id] {
			logIDs = append(logIDs, id)
		}
	}
	lastLog := uint64(0)
	if len(logIDs) > 0 {
		lastLog = logIDs[len(logIDs)-1]
	}
	if live {
		lastLog = uint64(pos.Segment())
	}
	rb := &rebuild{hints: make(map[uint64][]byte), badHeaders: make(map[uint64]error)}
	var last loaded
	lastMapped := false
	seals := make(map[uint64]uint64) // segment id -> the id its seal names
	for _, id := range ids {
		seg := segLoad{id: id, hasHint: hints[id], compacted: compacted[id], active: !compacted[id] && id == lastLog, limit: -1}
		if live && seg.active {
			seg.limit = int64(pos.End())
		}
		l, mapped, err := c.loadSegment(rb, seg, first)
		if err != nil {
			return err
		}
		if seg.active {
			last, lastMapped = l, mapped
		}
		if l.next > id {
			seals[id] = l.next
		}
	}
	orphans := c.dropOrphans(rb, logIDs, seals, first)
	for _, id := range ids {
		if c.maps[uint32(id)] == nil {
			continue
		}
		q := compaction.Small
		if compacted[id] {
			q = compaction.Main
		}
		c.psegs[uint32(id)] = c.policy.NewSegment(id, q)
	}
	for id, err := range rb.badHeaders {
		if !orphans[id] {
			c.reportCorrupt("unreadable segment header; segment skipped", "segment", id, "err", err)
		}
	}
	if orphans[lastLog] {
		lastMapped = false
	}
	c.buildIndex(rb)
	if !first {
		if !c.opts.ReadOnly {
			c.writeHintsAsync(rb.hints)
		}
		return nil
	}

	for _, name := range temps {
		c.log.Info("removing temporary file left by a crash", "file", name)
		c.fs.Remove(filepath.Join(c.dir, name))
	}
	// A hint outlives its segment when compaction was killed between
	// removing the one and the other.
	for id := range hints {
		if !slices.Contains(ids, id) && !orphans[id] {
			c.log.Info("removing the hint of a segment that is gone", "segment", id)
			c.fs.Remove(filepath.Join(c.dir, segment.HintFileName(id)))
		}
	}
	// The next id is past every segment, and is the one the last seal names
	// if that segment was never created, so the log stays one chain.
	nextSegID := uint64(1)
	if len(ids) > 0 {
		nextSegID = ids[len(ids)-1] + 1
	}
	for _, next := range seals {
		nextSegID = max(nextSegID, next)
	}
	if lastMapped && last.clean && !last.sealed {
		id := lastLog
		w, err := segment.OpenWriter(c.fs, filepath.Join(c.dir, segment.FileName(id)), id, last.end)
		if err != nil {
			return fmt.Errorf("kennel: reopen segment %d: %w", id, err)
		}
		c.active = w
	} else {
		if lastMapped && !last.sealed {
			id := lastLog
			c.log.Warn("sealing segment at its last good record", "segment", id, "end", last.end, "size", last.size)
		}
		if err := c.startSegment(nextSegID, c.logSegmentSize); err != nil {
			return err
		}
		reached("recover-started")
		nextSegID++
	}
	pos = sharedstate.MakePosition(uint32(c.active.ID()), uint32(c.active.Size()))
	c.state.Init(pos, rb.maxSeq+1, nextSegID)
	c.seen.Store(uint64(pos))
	c.gen.Store(c.state.Generation())
	c.writeHintsAsync(rb.hints)
	return nil
}

// segLoad says how to load one segment.
type segLoad struct {
	id      uint64
	hasHint bool
	// compacted marks a segment written by compaction. Only the first
	// opener writes a hint for one that has none: a compactor may still be
	// appending to it, and its own hint, written when it is done, marks it
	// finished.
	compacted bool
	// active marks the segment appended to: it is mapped at full capacity,
	// gets no hint, and may end in a torn tail.
	active bool
	// limit is how many bytes of the file hold published records (the
	// published end, for the active segment of a directory open elsewhere);
	// -1 means the whole file.
	limit int64
}

// loadSegment maps one segment and collects its records, from its hint when
// it has a sound one, else by scanning it. A segment whose header is
// unreadable is reported and left alone (never deleted), except when the
// first opener finds a last segment too short to hold a header: a crash
// interrupted its creation.
func (c *Cache) loadSegment(rb *rebuild, seg segLoad, first bool) (loaded, bool, error) {
	id := seg.id
	path := filepath.Join(c.dir, segment.FileName(id))
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) && !first {
		// Compaction removed it since the directory was read, after
		// copying its records into a segment this load may have read
		// already: the load is not a consistent view.
		return loaded{}, false, errVanished
	}
	if err != nil {
		return loaded{}, false, fmt.Errorf("kennel: open segment %d: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return loaded{}, false, fmt.Errorf("kennel: stat segment %d: %w", id, err)
	}
	size := fi.Size()
	h, herr := segment.ReadHeader(f)
	if herr == nil && h.ID != id {
		herr = fmt.Errorf("%w: header says segment %d", ErrCorrupt, h.ID)
	}
	if herr != nil {
		if errors.Is(herr, segment.ErrVersion) {
			return loaded{}, false, fmt.Errorf("%w: segment %d: %v", ErrIncompatible, id, herr)
		}
		if first && size <= segment.HeaderSize {
			// No room for a record: nothing is lost with it.
			c.log.Info("removing segment whose creation a crash interrupted", "segment", id, "size", size)
			return loaded{}, false, c.fs.Remove(path)
		}
		// Reported once orphans are known: a writer that died while
		// creating a segment leaves one without a header.
		rb.badHeaders[id] = herr
		return loaded{}, false, nil
	}

	mapLen := size
	if seg.active {
		mapLen = max(size, c.logSegmentSize)
	}
	m, err := segment.MapFile(f, id, mapLen)
	if err != nil {
		return loaded{}, false, fmt.Errorf("kennel: %w", err)
	}
	c.maps[uint32(id)] = m
	c.usage[uint32(id)] = &segUsage{end: size}
	if seg.limit >= 0 && seg.limit < size {
		size = seg.limit
	}

	if seg.hasHint {
		if end, err := c.loadHint(rb, m, id, size); err == nil {
			c.usage[uint32(id)].end = end
			return loaded{end: end, size: size, clean: true, sealed: true, next: sealAt(m, end)}, true, nil
		} else {
			c.log.Warn("hint file unusable; scanning its segment", "segment", id, "err", err)
		}
	}
	// A hint is written for every segment that is or becomes sealed: all
	// but the active one, and the first opener's last one if it is damaged.
	l := c.scanSegment(rb, m, id, size, seg.active)
	if (!seg.active || (first && !l.clean) || l.sealed) && (first || !seg.compacted) {
		rb.hints[id] = l.hint
	}
	c.usage[uint32(id)].end = l.end
	return l.loaded, true, nil
}

// sealAt returns the id named by the seal that ends a segment's first end
// bytes, or 0 if they do not end with a seal.
func sealAt(m *segment.Map, end int64) uint64 {
	size := int64(segment.SealRecordSize)
	if end < segment.HeaderSize+size {
		return 0
	}
	r, err := m.Record(uint32(end-size), uint32(size))
	if err != nil || r.Kind != segment.KindSeal {
		return 0
	}
	return r.SealNext()
}

// dropOrphans finds segments that a writer created and died before
// publishing: the seal of the segment before them names a later one, so the
// log skipped them. Their records were never seen by anyone and are
// dropped; the first opener deletes them. It returns the orphans' ids.
func (c *Cache) dropOrphans(rb *rebuild, ids []uint64, seals map[uint64]uint64, first bool) map[uint64]bool {
	orphans := make(map[uint64]bool)
	for _, id := range ids {
		for from, next := range seals {
			if from < id && id < next {
				orphans[id] = true
			}
		}
	}
	if len(orphans) == 0 {
		return orphans
	}
	rb.recs = slices.DeleteFunc(rb.recs, func(r recovered) bool { return orphans[uint64(r.entry.Seg)] })
	for id := range orphans {
		c.log.Warn("segment abandoned by a writer that died before publishing it; its records are dropped", "segment", id)
		if m := c.maps[uint32(id)]; m != nil {
			m.Release()
		}
		delete(c.maps, uint32(id))
		delete(c.usage, uint32(id))
		delete(rb.hints, id)
		if first {
			c.fs.Remove(filepath.Join(c.dir, segment.HintFileName(id)))
			c.fs.Remove(filepath.Join(c.dir, segment.FileName(id)))
		}
	}
	return orphans
}

// removeDeadHint removes the hint of segment id, the log's published
// segment, before a process seals it at the published end because its
// writer died appending. Such a hint is the dead writer's: it sealed the
// segment past the published end (a group that rolled) and wrote the hint
// before it died, and the hint lists records that the new seal goes over,
// and names the segment the dead writer went on in. Callers hold the
// append lock.
func (c *Cache) removeDeadHint(id uint64) error {
	err := c.fs.Remove(filepath.Join(c.dir, segment.HintFileName(id)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		// Durable before the seal: a hint back after a power cut would
		// describe the records under it again.
		err = c.fs.SyncDir(c.dir)
	}
	if err != nil {
		return fmt.Errorf("kennel: remove the hint a dead writer left for segment %d: %w", id, err)
	}
	c.log.Warn("removed the hint a writer wrote for a segment it sealed but never published", "segment", id)
	return nil
}

// removeOrphans deletes the log segments whose ids lie strictly between
// from and to: a process that sealed a dead writer's segment from at its
// published end, and went on in segment to, made them orphans. They go at
// once, not at the next first open: compaction may reclaim from, and with
// it the seal that says they are orphans, and their records would then be
// read. Callers hold the append lock, so no log segment is being created.
// Segments written by compaction (their ids come from the same counter)
// are kept, and so is a file whose header cannot be read: a compactor may
// be creating it (one a dead writer left holds no record).
func (c *Cache) removeOrphans(from, to uint64) error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("kennel: remove abandoned segments: %w", err)
	}
	removed := false
	for _, e := range entries {
		id, ok := segment.ParseFileName(e.Name())
		if !ok || id <= from || id >= to {
			continue
		}
		if h, err := c.segmentHeader(id); err != nil || h.ID != id || h.Compacted() {
			continue
		}
		path := filepath.Join(c.dir, e.Name())
		c.log.Warn("removing a segment abandoned by a writer that died before publishing it", "segment", id)
		if err := c.fs.Remove(filepath.Join(c.dir, segment.HintFileName(id))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("kennel: remove abandoned segment %d: %w", id, err)
		}
		if err := c.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("kennel: remove abandoned segment %d: %w", id, err)
		}
		removed = true
	}
	if removed {
		if err := c.fs.SyncDir(c.dir); err != nil {
			return fmt.Errorf("kennel: remove abandoned segments: %w", err)
		}
	}
	return nil
}

// loadHint applies a segment's hint file, after checking it whole.
func (c *Cache) loadHint(rb *rebuild, m *segment.Map, id uint64, size int64) (int64, error) {
	b, err := segment.ReadFileBounded(filepath.Join(c.dir, segment.HintFileName(id)), size+64)
	if err != nil {
		return 0, err
	}
	before := len(rb.recs)
	hh, err := segment.DecodeHint(b, func(e segment.HintEntry) error {
		if int64(e.Offset)+int64(e.Size) > size {
			return fmt.Errorf("%w: hint entry past the end of segment %d", ErrCorrupt, id)
		}
		c.applyRecovered(rb, m, e.Kind, e.Key, e.Offset, e.Size, e.Seq, e.Expiry)
		return nil
	})
	if err == nil && (hh.ID != id || hh.Length > size) {
		err = fmt.Errorf("%w: hint of segment %d describes segment %d of %d bytes", ErrCorrupt, id, hh.ID, hh.Length)
	}
	if err != nil {
		rb.recs = rb.recs[:before] // the segment is scanned instead
	}
	return hh.Length, err
}

// scanned is a segment scan's result: how it ended, and the segment's hint.
type scanned struct {
	loaded
	hint []byte
}

// scanSegment collects every record of a segment, resynchronising past
// damage (reported) and stopping at a seal or at a tail that holds no further
// record. It also builds the segment's hint, for the caller to write if the
// segment is sealed.
func (c *Cache) scanSegment(rb *rebuild, m *segment.Map, id uint64, size int64, isLast bool) scanned {
	data := m.Bytes(int(size))
	hint := segment.NewHintBuilder(id)
	clean := true
	s := segment.NewScanner(data, segment.HeaderSize)
	var end int
	for {
		for s.Next() {
			r := s.Record()
			off, sz := uint32(s.Offset()), uint32(s.Size())
			c.applyRecovered(rb, m, r.Kind, r.Key, off, sz, r.Seq, r.Expiry)
			hint.Add(segment.HintEntry{Kind: r.Kind, Key: r.Key, Offset: off, Size: sz, Seq: r.Seq, Expiry: r.Expiry})
		}
		var err error
		end, err = s.Stop()
		if err == nil {
			break
		}
		clean = false
		if next := s.Resync(); next >= 0 {
			c.reportCorrupt("damaged records skipped", "segment", id, "offset", end, "resumed", next, "err", err)
			continue
		}
		switch {
		case isLast:
			c.log.Warn("torn tail in the active segment", "segment", id, "offset", end, "bytes", size-int64(end), "err", err)
		case segment.Torn(err):
			c.log.Warn("segment ends with a torn tail", "segment", id, "offset", end, "err", err)
		default:
			c.reportCorrupt("damaged records at the end of a segment", "segment", id, "offset", end, "err", err)
		}
		break
	}
	return scanned{
		loaded: loaded{end: int64(end), size: size, clean: clean, sealed: s.Sealed(), next: s.ContinuesIn()},
		hint:   hint.Finish(int64(end)),
	}
}

// applyRecovered collects one record found on disk for buildIndex.
func (c *Cache) applyRecovered(rb *rebuild, m *segment.Map, kind segment.Kind, key []byte, off, size uint32, seq uint64, expiry int64) {
	rb.maxSeq = max(rb.maxSeq, seq)
	e := index.NewEntry(key)
	e.Expiry, e.Seg, e.Offset, e.Size, e.Kind = expiry, uint32(m.ID()), off, size, uint8(kind)
	rb.recs = append(rb.recs, recovered{entry: e, seq: seq})
}

// buildIndex resolves the records found on open and bulk-loads the index:
// for each key the highest sequence number wins, whatever segment holds it
// (compaction copies records into newer segments with their sequence
// numbers), and a winning tombstone means no value. Equal sequence numbers
// are one record and its copy, or a put and the tombstone compaction wrote
// when it evicted it (kept while the put survives); the put wins, from the
// newest segment. Sorting first lets the index be loaded in key order with
// full nodes (index.Load), which is faster than inserting records one by one
// and leaves less of the tree empty.
//
// Every record gets a slot in the eviction policy, and each key's count of
// older puts on disk is set (Entry.Older, or the tombs map for a deleted
// key).
func (c *Cache) buildIndex(rb *rebuild) {
	recs := rb.recs
	slices.SortFunc(recs, func(a, b recovered) int {
		if c := index.Compare(&a.entry, &b.entry); c != 0 {
			return c
		}
		if c := cmp.Compare(a.seq, b.seq); c != 0 {
			return c
		}
		if c := cmp.Compare(isPut(a.entry.Kind), isPut(b.entry.Kind)); c != 0 {
			return c
		}
		return cmp.Compare(a.entry.Seg, b.entry.Seg)
	})
	live := make([]index.Entry, 0, len(recs))
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && index.Compare(&recs[j].entry, &recs[i].entry) == 0 {
			j++
		}
		win := recs[j-1].entry
		older := 0
		for k := range recs[i : j-1] {
			r := &recs[i+k].entry
			c.addDead(r.Seg, r.Size)
			w := c.weight(r)
			c.usage[r.Seg].side += w - int64(r.Size)
			ps := c.psegs[r.Seg]
			ps.Kill(ps.Append(w), w)
			older += isPut(r.Kind)
		}
		ps := c.psegs[win.Seg]
		w := c.weight(&win)
		c.usage[win.Seg].side += w - int64(win.Size)
		win.Slot = ps.Append(w)
		win.Older = addOlder(0, older)
		if segment.Kind(win.Kind) == segment.KindDelete {
			ps.Kill(win.Slot, w)
			c.addDead(win.Seg, win.Size)
			if older > 0 {
				c.setTomb(string(win.Key()), tomb{seg: win.Seg, off: win.Offset, size: win.Size, older: win.Older})
			}
		} else {
			c.remember(win)
			live = append(live, win)
		}
		i = j
	}
	rb.recs = nil
	c.idx = index.Load(live)
}

func isPut(kind uint8) int {
	if segment.Kind(kind) == segment.KindDelete {
		return 0
	}
	return 1
}

// tomb is a deleted key whose older puts are still on disk: where its
// tombstone is, and how many puts it shadows (saturating, as Entry.Older).
type tomb struct {
	seg, off, size uint32
	older          uint8
}

// segmentHeader reads the header of segment id, not following a symlink.
func (c *Cache) segmentHeader(id uint64) (segment.Header, error) {
	f, err := os.OpenFile(filepath.Join(c.dir, segment.FileName(id)), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return segment.Header{}, err
	}
	defer f.Close()
	return segment.ReadHeader(f)
}

// compactedSegments reads the header of each segment and returns those
// written by compaction. A segment it cannot read is taken for a log
// segment: loading it reports why.
func (c *Cache) compactedSegments(ids []uint64) map[uint64]bool {
	compacted := make(map[uint64]bool)
	for _, id := range ids {
		if h, err := c.segmentHeader(id); err == nil && h.Compacted() {
			compacted[id] = true
		}
	}
	return compacted
}

// segUsage is the byte accounting of one segment.
type segUsage struct {
	end      int64 // bytes holding the header and whole records
	live     int64 // bytes of records the index points to
	dead     int64 // bytes of the other records
	tombs    int64 // of dead: tombstones compaction must keep (see tomb)
	side     int64 // bytes of the sidecar files its put-sidecar records name
	liveKeys int
}

// reclaimable is how many of the segment's bytes compaction would free.
func (u *segUsage) reclaimable() int64 { return u.dead - u.tombs }

// remember, forget and addDead keep the byte accounting in step with the
// index. Callers hold mu exclusively (or own the cache, while opening it).
func (c *Cache) remember(e index.Entry) {
	c.live += int64(e.Size)
	u := c.usage[e.Seg]
	u.live += int64(e.Size)
	u.liveKeys++
	if e.Expiry != 0 {
		c.withTTL++
	}
	if segment.Kind(e.Kind) == segment.KindPutSidecar {
		if desc, ok := c.sidecarAt(&e); ok {
			c.sidecars[desc.Name] = desc.Size
		}
	}
}

func (c *Cache) forget(e index.Entry) {
	c.live -= int64(e.Size)
	u := c.usage[e.Seg]
	u.live -= int64(e.Size)
	u.liveKeys--
	c.addDead(e.Seg, e.Size)
	if e.Expiry != 0 {
		c.withTTL--
	}
	if segment.Kind(e.Kind) == segment.KindPutSidecar {
		if desc, ok := c.sidecarAt(&e); ok {
			delete(c.sidecars, desc.Name)
			c.compactor.sidecarsDropped.Store(true)
		}
	}
}

func (c *Cache) addDead(seg, size uint32) {
	c.dead += int64(size)
	c.usage[seg].dead += int64(size)
}

// setTomb records that key's tombstone is t and still needed; clearTomb
// that key has no needed tombstone. Callers hold mu.
func (c *Cache) setTomb(key string, t tomb) {
	c.clearTomb(key)
	c.tombs[key] = t
	c.usage[t.seg].tombs += int64(t.size)
}

func (c *Cache) clearTomb(key string) {
	if old, ok := c.tombs[key]; ok {
		if u := c.usage[old.seg]; u != nil {
			u.tombs -= int64(old.size)
		}
		delete(c.tombs, key)
	}
}

// reportCorrupt logs damage found on disk and counts it in Stats.
func (c *Cache) reportCorrupt(msg string, args ...any) {
	c.corruptions.Add(1)
	c.log.Error(msg, args...)
}
