package compaction

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func newPolicy(tb testing.TB, cfg Config) *Policy {
	tb.Helper()
	if cfg.Budget == 0 {
		cfg.Budget = 1 << 20
	}
	p, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// fill appends n records of size bytes to a new segment of q; the hash of
// slot i is hashBase+i.
func fill(p *Policy, id uint64, q Queue, n int, size int64) *Segment {
	s := p.NewSegment(id, q)
	for i := 0; i < n; i++ {
		if slot := s.Append(size); slot != uint32(i) {
			panic(fmt.Sprintf("slot %d, want %d", slot, i))
		}
	}
	return s
}

// decideAll evicts s, deciding every slot in order, and returns the kept
// slots with their decisions.
func decideAll(p *Policy, s *Segment, n int, size int64, hashBase uint64) map[uint32]Decision {
	e := p.Evict(s)
	kept := make(map[uint32]Decision)
	for i := 0; i < n; i++ {
		if d := e.Decide(uint32(i), hashBase+uint64(i), size); d.Keep {
			kept[uint32(i)] = d
		}
	}
	e.Done()
	return kept
}

func TestSmallKeepsReadRecordsDropsOthers(t *testing.T) {
	p := newPolicy(t, Config{})
	s := fill(p, 1, Small, 10, 100)
	for _, slot := range []uint32{1, 3, 3, 5} {
		s.Touch(slot)
	}
	kept := decideAll(p, s, 10, 100, 1000)
	if len(kept) != 3 {
		t.Fatalf("kept %v, want slots 1, 3, 5", kept)
	}
	for _, slot := range []uint32{1, 3, 5} {
		d, ok := kept[slot]
		if !ok {
			t.Errorf("slot %d was read but dropped", slot)
		}
		if d.freq != 0 {
			t.Errorf("slot %d enters Main with counter %d, want 0", slot, d.freq)
		}
	}
	st := p.Stats()
	if st.Promoted != 3 || st.PromotedBytes != 300 || st.Dropped != 7 || st.Forced != 0 {
		t.Errorf("stats %+v", st)
	}
	if st.Segments != [2]int{} || st.Bytes != [2]int64{} || st.Records != [2]int{} {
		t.Errorf("evicted segment still counted: %+v", st)
	}
}

// A Main record survives one pass through Main per read, up to three.
func TestMainCopyForwardUsesUpReads(t *testing.T) {
	p := newPolicy(t, Config{})
	reads := []int{0, 1, 2, 3, 5}
	s := fill(p, 1, Main, len(reads), 10)
	for slot, n := range reads {
		for range n {
			s.Touch(uint32(slot))
		}
	}
	live := map[uint32]int{} // slot in the current segment -> index in reads
	for i := range reads {
		live[uint32(i)] = i
	}
	passes := make([]int, len(reads)) // passes survived
	id := uint64(1)
	for len(live) > 0 {
		id++
		next := p.NewSegment(id, Main)
		e := p.Evict(s)
		nextLive := map[uint32]int{}
		for slot := uint32(0); int(slot) < s.slots; slot++ {
			i, ok := live[slot]
			if !ok {
				continue
			}
			if d := e.Decide(slot, uint64(i), 10); d.Keep {
				passes[i]++
				nextLive[next.AppendKept(10, d)] = i
			}
		}
		e.Done()
		s, live = next, nextLive
	}
	want := []int{0, 1, 2, 3, 3}
	for i := range reads {
		if passes[i] != want[i] {
			t.Errorf("record read %d times survived %d passes, want %d", reads[i], passes[i], want[i])
		}
	}
	if st := p.Stats(); st.Reinserted != 9 || st.Dropped != 5 {
		t.Errorf("reinserted %d, dropped %d; want 9, 5", st.Reinserted, st.Dropped)
	}
}

// Eviction frees space even when every record was read. With records of one
// size it keeps exactly the most-read ones, whatever order the engine
// decides them in; with sizes that vary the plan works from the mean size,
// so the order is only nearly kept, but the bound holds exactly.
func TestEvictionAlwaysFreesSpace(t *testing.T) {
	for _, q := range []Queue{Small, Main} {
		for _, keep := range []float64{0.01, 0.5, DefaultMaxKeepFraction, 0.99} {
			for _, varied := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/keep=%v/varied=%v", q, keep, varied), func(t *testing.T) {
					testEvictionFreesSpace(t, q, keep, varied)
				})
			}
		}
	}
}

func testEvictionFreesSpace(t *testing.T, q Queue, keep float64, varied bool) {
	p := newPolicy(t, Config{MaxKeepFraction: keep})
	const n = 64
	s := p.NewSegment(1, q)
	sizes := make([]int64, n)
	var live int64
	for i := range sizes {
		sizes[i] = 100
		if varied {
			sizes[i] += int64(37 * (i % 7))
		}
		live += sizes[i]
		s.Append(sizes[i])
		for range 1 + i%3 { // counters 1, 2, 3, 1, 2, 3, ...
			s.Touch(uint32(i))
		}
	}
	e := p.Evict(s)
	var kept int64
	minKept, maxDropped := uint8(255), uint8(0)
	for i := n - 1; i >= 0; i-- { // engine order is free
		f := s.counter(uint32(i)) & freqMask
		if e.Decide(uint32(i), uint64(i), sizes[i]).Keep {
			kept += sizes[i]
			minKept = min(minKept, f)
		} else {
			maxDropped = max(maxDropped, f)
		}
	}
	e.Done()
	if limit := int64(float64(live) * keep); kept > limit {
		t.Errorf("kept %d of %d bytes, bound is %d", kept, live, limit)
	}
	if kept >= live {
		t.Errorf("eviction freed nothing")
	}
	if !varied && kept > 0 && maxDropped > minKept {
		t.Errorf("dropped a record read %d times, kept one read %d times", maxDropped, minKept)
	}
	if !varied && float64(kept) < float64(live)*keep-100 {
		t.Errorf("kept %d of %d bytes, bound %v leaves room for more", kept, live, keep)
	}
	if st := p.Stats(); st.Forced == 0 {
		t.Errorf("no forced drops, yet all were read")
	}
}

// Driving the policy like the engine, with every record read before it is
// evicted, the directory still comes back under budget, and fast.
func TestEvictionProgressUnderBudget(t *testing.T) {
	const (
		budget  = 64 << 10
		segSize = 4 << 10
		recSize = 256
	)
	p := newPolicy(t, Config{Budget: budget})
	type rec struct {
		seg  *Segment
		slot uint32
	}
	var (
		id    uint64
		open  [2]*Segment
		used  [2]int64
		total int64
		byID  = map[*Segment][]int{} // records by slot, as keys
		where = map[int]rec{}
	)
	appendTo := func(q Queue, key int, d *Decision) {
		if open[q] == nil || used[q]+recSize > segSize {
			id++
			open[q], used[q] = p.NewSegment(id, q), 0
		}
		s := open[q]
		var slot uint32
		if d != nil {
			slot = s.AppendKept(recSize, *d)
		} else {
			slot = s.Append(recSize)
		}
		byID[s] = append(byID[s], key)
		used[q] += recSize
		total += recSize
		where[key] = rec{s, slot}
		for range 3 {
			s.Touch(slot) // everything is hot
		}
	}
	for key := 0; key < 10_000; key++ {
		for evictions := 0; total+recSize > budget; evictions++ {
			if evictions > 2*budget/recSize {
				t.Fatalf("key %d: %d evictions did not get %d bytes under %d", key, evictions, total, budget)
			}
			v := p.Victim()
			if v == nil {
				t.Fatal("no victim while over budget")
			}
			if open[v.Queue()] == v {
				open[v.Queue()] = nil
			}
			before := total
			e := p.Evict(v)
			for slot, k := range byID[v] {
				if where[k] != (rec{v, uint32(slot)}) {
					continue
				}
				delete(where, k)
				if d := e.Decide(uint32(slot), uint64(k), recSize); d.Keep {
					appendTo(Main, k, &d)
				}
			}
			e.Done()
			total -= v.bytes
			delete(byID, v)
			if freed := before - total; freed < v.bytes/8 {
				t.Fatalf("evicting %d bytes freed %d", v.bytes, freed)
			}
		}
		for range 3 {
			// Reread everything cached: no record is ever unread.
			for _, r := range where {
				r.seg.Touch(r.slot)
			}
		}
		appendTo(p.Admit(uint64(key)), key, nil)
	}
	st := p.Stats()
	if got := st.Bytes[Small] + st.Bytes[Main]; got != total || total > budget {
		t.Errorf("policy counts %d bytes, engine %d, budget %d", got, total, budget)
	}
	if st.Forced == 0 {
		t.Errorf("no forced drops, yet every record was read: %+v", st)
	}
}

func TestGhostAdmission(t *testing.T) {
	p := newPolicy(t, Config{GhostEntries: 100})
	if q := p.Admit(7); q != Small {
		t.Fatalf("unknown key admitted to %v", q)
	}
	s := fill(p, 1, Small, 4, 10)
	s.Touch(0)
	decideAll(p, s, 4, 10, 100) // keeps 100, drops 101..103
	if q := p.Admit(100); q != Small {
		t.Errorf("key promoted to Main, not dropped, admitted to %v", q)
	}
	for _, h := range []uint64{101, 102, 103} {
		if q := p.Admit(h); q != Main {
			t.Errorf("key %d dropped from Small admitted to %v, want Main", h, q)
		}
		if q := p.Admit(h); q != Small {
			t.Errorf("ghost kept key %d after admitting it", h)
		}
	}
	m := fill(p, 2, Main, 2, 10)
	m.Touch(1)
	decideAll(p, m, 2, 10, 200) // drops 200
	if q := p.Admit(200); q != Main {
		t.Errorf("key dropped from Main admitted to %v, want Main", q)
	}
	if st := p.Stats(); st.GhostHits != 4 || st.Ghost != 0 {
		t.Errorf("ghost hits %d, ghost size %d; want 4, 0", st.GhostHits, st.Ghost)
	}
}

func TestGhostIsBounded(t *testing.T) {
	p := newPolicy(t, Config{GhostEntries: 5})
	s := fill(p, 1, Small, 20, 10)
	decideAll(p, s, 20, 10, 0)
	if n := p.Stats().Ghost; n != 5 {
		t.Fatalf("ghost holds %d hashes, want 5", n)
	}
	for h := uint64(0); h < 20; h++ {
		want := Small
		if h >= 15 {
			want = Main // only the last five drops are remembered
		}
		if q := p.Admit(h); q != want {
			t.Errorf("hash %d admitted to %v, want %v", h, q, want)
		}
	}
}

// With no fixed size, the ghost set remembers as many keys as Main holds.
func TestGhostSizeFollowsMain(t *testing.T) {
	p := newPolicy(t, Config{Budget: 1000 * 100}) // Main holds 900 records of 100 bytes
	fill(p, 1, Main, 50, 100)
	s := fill(p, 2, Small, 2000, 100)
	decideAll(p, s, 2000, 100, 0)
	if n := p.Stats().Ghost; n < 850 || n > 950 {
		t.Errorf("ghost holds %d hashes, want about 900", n)
	}
}

func TestVictim(t *testing.T) {
	p := newPolicy(t, Config{Budget: 1000, SmallFraction: 0.1})
	if v := p.Victim(); v != nil {
		t.Fatalf("victim %v of an empty policy", v.ID())
	}
	m1 := fill(p, 1, Main, 1, 500)
	if v := p.Victim(); v != m1 {
		t.Fatalf("victim with only Main = %v", v)
	}
	s1 := fill(p, 2, Small, 1, 60)
	if v := p.Victim(); v != m1 {
		t.Errorf("Small under target, victim %d, want Main's oldest", v.ID())
	}
	s2 := fill(p, 3, Small, 1, 60)
	fill(p, 4, Main, 1, 100)
	if v := p.Victim(); v != s1 {
		t.Errorf("Small over target, victim %d, want Small's oldest", v.ID())
	}
	decideAll(p, s1, 1, 60, 0)
	if v := p.Victim(); v != m1 {
		t.Errorf("victim %d, want Main's oldest", v.ID())
	}
	decideAll(p, m1, 1, 500, 0)
	decideAll(p, p.Victim(), 1, 100, 0)
	if v := p.Victim(); v != s2 {
		t.Errorf("only Small left, victim %v", v)
	}
}

func TestKill(t *testing.T) {
	p := newPolicy(t, Config{})
	s := fill(p, 1, Small, 3, 100)
	s.Touch(1)
	s.Kill(1, 100)
	s.Kill(1, 100) // twice is harmless
	s.Touch(1)     // a late read of a dead record
	if got := s.LiveBytes(); got != 200 {
		t.Errorf("live bytes %d, want 200", got)
	}
	if got := s.Bytes(); got != 300 {
		t.Errorf("bytes %d, want 300", got)
	}
	if st := p.Stats(); st.Records[Small] != 2 || st.LiveBytes[Small] != 200 {
		t.Errorf("stats %+v", st)
	}
	e := p.Evict(s)
	if d := e.Decide(1, 1, 100); d.Keep {
		t.Error("kept a killed record")
	}
	e.Done()
}

// A write the ghost set admitted goes to Small counted as read once, so the
// eviction of its segment promotes it though nobody read it there.
func TestAppendAdmitted(t *testing.T) {
	p := newPolicy(t, Config{})
	s := p.NewSegment(1, Small)
	admitted := s.AppendAdmitted(100)
	plain := s.Append(100)
	kept := decideAll(p, s, 2, 100, 0)
	d, ok := kept[admitted]
	if !ok {
		t.Fatal("admitted record dropped by the Small eviction")
	}
	if d.freq != 0 {
		t.Errorf("admitted record enters Main with counter %d, want 0", d.freq)
	}
	if _, ok := kept[plain]; ok {
		t.Error("unread record kept by the Small eviction")
	}
	if st := p.Stats(); st.Promoted != 1 || st.Dropped != 1 || st.Forced != 0 {
		t.Errorf("stats %+v", st)
	}

	// The keep bound holds for admitted records too.
	const n = 64
	s = p.NewSegment(2, Small)
	for range n {
		s.AppendAdmitted(100)
	}
	kept = decideAll(p, s, n, 100, 1000)
	if want := int(n * DefaultMaxKeepFraction); len(kept) != want {
		t.Errorf("kept %d of %d admitted records, want %d", len(kept), n, want)
	}
}

// A merge keeps every live record, uses up no reads, adds nothing to the
// ghost set and may take a segment from the middle of its queue.
func TestMerge(t *testing.T) {
	p := newPolicy(t, Config{GhostEntries: 100})
	oldest := fill(p, 1, Main, 1, 10)
	reads := []int{0, 1, 2, 3, 5}
	m := fill(p, 2, Main, len(reads)+1, 10)
	for slot, n := range reads {
		for range n {
			m.Touch(uint32(slot))
		}
	}
	m.Kill(uint32(len(reads)), 10)
	newest := fill(p, 3, Main, 1, 10)

	e := p.Merge(m)
	if v := p.Victim(); v != oldest {
		t.Errorf("victim %d during a merge, want the oldest", v.ID())
	}
	for slot := range len(reads) + 1 {
		want := slot < len(reads)
		d := e.Decide(uint32(slot), 100+uint64(slot), 10)
		if d.Keep != want {
			t.Errorf("slot %d: keep %v, want %v", slot, d.Keep, want)
			continue
		}
		if want && d.freq != min(uint8(reads[slot]), maxFreq) {
			t.Errorf("slot %d read %d times: copy starts with counter %d", slot, reads[slot], d.freq)
		}
	}
	e.Done()

	s := fill(p, 4, Small, 2, 10)
	s.Touch(1)
	for slot, d := range decideAllMerge(p, s, 2, 10, 200) {
		if d.freq != 0 {
			t.Errorf("Small slot %d enters Main with counter %d, want 0", slot, d.freq)
		}
	}

	st := p.Stats()
	if st.Merged != 7 || st.MergedBytes != 70 || st.Dropped != 0 || st.Promoted != 0 || st.Reinserted != 0 {
		t.Errorf("stats %+v", st)
	}
	if st.Ghost != 0 {
		t.Errorf("merge added %d hashes to the ghost set", st.Ghost)
	}
	if st.Segments != [2]int{0, 2} || st.Bytes != [2]int64{0, 20} {
		t.Errorf("merged segments still counted: %+v", st)
	}
	if v := p.Victim(); v != oldest {
		t.Errorf("victim %d after a merge, want the oldest", v.ID())
	}
	decideAll(p, oldest, 1, 10, 0)
	if v := p.Victim(); v != newest {
		t.Errorf("victim %d, want %d", v.ID(), newest.ID())
	}
}

// decideAllMerge merges s, deciding every slot in order, and returns the
// decisions, all of which must keep.
func decideAllMerge(p *Policy, s *Segment, n int, size int64, hashBase uint64) map[uint32]Decision {
	e := p.Merge(s)
	kept := make(map[uint32]Decision)
	for i := 0; i < n; i++ {
		d := e.Decide(uint32(i), hashBase+uint64(i), size)
		if !d.Keep {
			panic(fmt.Sprintf("merge dropped slot %d", i))
		}
		kept[uint32(i)] = d
	}
	e.Done()
	return kept
}

// An aborted merge puts its segment back where it was in its queue, not at
// the head, whether the queue's slice was compacted meanwhile or not.
func TestMergeAbort(t *testing.T) {
	for _, compacted := range []bool{false, true} {
		p := newPolicy(t, Config{})
		var segs []*Segment
		for id := range uint64(4) {
			segs = append(segs, fill(p, id+1, Main, 1, 10))
		}
		decideAll(p, segs[0], 1, 10, 0)
		segs = segs[1:]
		e := p.Merge(segs[1])
		if compacted {
			// Appending a segment during the merge moves the queue to
			// the start of its slice.
			segs = append(segs, fill(p, 5, Main, 1, 10))
		}
		if head := p.queues[Main].head; (head == 0) != compacted {
			t.Fatalf("compacted=%v: queue head at %d", compacted, head)
		}
		e.Abort()
		if st := p.Stats(); st.Segments[Main] != len(segs) || st.Bytes[Main] != 10*int64(len(segs)) {
			t.Errorf("compacted=%v: stats after abort %+v", compacted, st)
		}
		for i, want := range segs {
			v := p.Victim()
			if v != want {
				t.Fatalf("compacted=%v: victim %d is %d, want %d", compacted, i, v.ID(), want.ID())
			}
			decideAll(p, v, 1, 10, 0)
		}
	}
}

func TestAbort(t *testing.T) {
	p := newPolicy(t, Config{})
	a := fill(p, 1, Small, 3, 10)
	fill(p, 2, Small, 3, 10)
	a.Touch(0)
	a.Touch(2)
	e := p.Evict(a)
	if d := e.Decide(0, 0, 10); !d.Keep {
		t.Fatal("read record dropped")
	}
	e.Abort()
	if v := p.Victim(); v != a {
		t.Fatalf("aborted segment not first in line, victim %v", v.ID())
	}
	if st := p.Stats(); st.Segments[Small] != 2 || st.Bytes[Small] != 60 || st.Records[Small] != 5 {
		t.Errorf("stats after abort %+v", st)
	}
	e = p.Evict(a)
	if e.Decide(0, 0, 10).Keep {
		t.Error("record decided before the abort kept twice")
	}
	if !e.Decide(2, 2, 10).Keep {
		t.Error("read record dropped after abort")
	}
	e.Done()
}

func TestTouchDoesNotAllocate(t *testing.T) {
	p := newPolicy(t, Config{})
	s := fill(p, 1, Small, 1000, 10)
	slot := uint32(0)
	if n := testing.AllocsPerRun(1000, func() {
		s.Touch(slot)
		slot = (slot + 7) % 1000
	}); n != 0 {
		t.Errorf("Touch allocates %v times per call", n)
	}
}

// Touches racing with Appends that grow the counter table are not lost (run
// with -race).
func TestTouchConcurrentWithAppend(t *testing.T) {
	p := newPolicy(t, Config{})
	s := p.NewSegment(1, Main)
	const n = 5000
	slots := make(chan uint32, n)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for slot := range slots {
				s.Touch(slot)
			}
		})
	}
	for range n {
		slots <- s.Append(1)
	}
	close(slots)
	wg.Wait()
	e := p.Evict(s)
	for slot := range uint32(n) {
		if s.counter(slot)&freqMask != 1 {
			t.Fatalf("slot %d counter %d, want 1", slot, s.counter(slot))
		}
		e.Decide(slot, 0, 1)
	}
	e.Done()
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Budget: -1},
		{Budget: 1, SmallFraction: 1},
		{Budget: 1, SmallFraction: -0.1},
		{Budget: 1, MaxKeepFraction: 1.5},
		{Budget: 1, GhostEntries: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestSegmentSize(t *testing.T) {
	p := newPolicy(t, Config{Budget: 64 << 20})
	if got := p.SegmentSize(Main, 4<<20); got != 4<<20 {
		t.Errorf("Main segment %d", got)
	}
	if got := p.SegmentSize(Small, 4<<20); got != (64<<20)/10/8 {
		t.Errorf("Small segment %d, want an eighth of Small", got)
	}
	if got := p.SegmentSize(Small, 256<<10); got != 256<<10 {
		t.Errorf("Small segment %d, want the engine's limit", got)
	}
	tiny := newPolicy(t, Config{Budget: 1 << 20})
	if got := tiny.SegmentSize(Small, 1<<20); got != minSmallSegment {
		t.Errorf("Small segment %d for a tiny budget, want %d", got, minSmallSegment)
	}
}

func TestMisuseReported(t *testing.T) {
	p := newPolicy(t, Config{})
	s := fill(p, 1, Small, 1, 10)
	e := p.Evict(s)
	e.Done()
	for name, f := range map[string]func(){
		"append after evict": func() { s.Append(1) },
		"evict twice":        func() { p.Evict(s) },
		"decide after done":  func() { e.Decide(0, 0, 1) },
		"kept into small":    func() { p.NewSegment(2, Small).AppendKept(1, Decision{Keep: true}) },
		"admitted into main": func() { p.NewSegment(4, Main).AppendAdmitted(1) },
		"merge after evict":  func() { p.Merge(s) },
		"no such queue":      func() { p.NewSegment(3, Queue(9)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func BenchmarkTouch(b *testing.B) {
	p := newPolicy(b, Config{})
	s := fill(p, 1, Main, 1<<12, 10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		slot := uint32(0)
		for pb.Next() {
			s.Touch(slot & (1<<12 - 1))
			slot += 17
		}
	})
}
