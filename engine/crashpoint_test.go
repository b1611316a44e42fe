package engine_test

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/testseed"
	"github.com/kennel-cache/kennel/internal/vfs"
	"github.com/kennel-cache/kennel/segment"
)

var crashPointRuns = flag.Int("kennel.crashpoint-runs", 2, "runs per crash point of TestCrashPoints (CI runs 2; a soak run, 20 or more)")

// This file kills a process at every crash point of the engine (see
// engine/crashpoint.go, and cpFSPoints below) and checks what a reopen
// finds.
//
// For each point, each run starts a child process (the test binary) on a
// directory: a new one; one with a torn tail (the start of a record past
// the last whole one, as a writer killed mid-pwrite leaves it); the
// directory the previous run's child was killed in, as it was left; or
// that directory once the parent had recovered, compacted and closed it.
// The child applies seeded operations from one to three goroutines, each
// on its own keys (puts inline and in sidecar files, some with a TTL,
// deletes, batches, files moved in, compactions, syncs), announcing each
// one before it starts and once it returned, and SIGKILLs itself at the
// k-th time it reaches the point.
//
// In a third of the runs the parent holds the directory open meanwhile (a
// survivor), so that the child is not the first to open it. Then a second
// child may follow the first and die at the same point too (taking over
// from a dead writer or compactor, and dying while it does), and the
// survivor either only reads, or writes and compacts, taking over from the
// dead children itself.
//
// The parent then checks, on a copy of the directory: it opens; each key
// holds what the acknowledged operations left, or what an operation in
// flight would have (a batch: a prefix of it; seen by a survivor, all or
// none of it); a key may have no value only if its value expired, or was
// evicted under a tight budget; nothing else appears; no read fails, a
// scan agrees with the reads, and no corruption is reported; no temporary
// file is left, and no hint without its segment; Compact, Close and a
// reopen agree with what was read first.

// cpFSPoints are crash points between the filesystem calls the engine
// makes through its vfs.FS, for states that arise inside package segment,
// where the engine marks no point: the child's filesystem (cpKillFS)
// kills it there.
var cpFSPoints = []string{
	"fs:segment-created",     // a segment file exists, without its header
	"fs:segment-write-torn",  // a pwrite into a segment reached the file in part (a prefix of a group, of a copy, of a seal)
	"fs:hint-temp-written",   // a hint is written and synced under its temporary name
	"fs:format-temp-written", // a new directory's format file is written under its temporary name
}

// cpKeys is the key space: small, so that keys are overwritten and deleted
// across segments and compaction has dead records to reclaim.
const cpKeys = 40

func cpKey(i int) string { return fmt.Sprintf("cp-%02d", i) }

// cpMarker is the key a survivor writes after the child died.
const cpMarker = "marker"

// cpMaxK bounds the k of a run: the child dies at the k-th time it reaches
// the point, k in [1, cpMaxK]. Points reached less often get smaller ks; a
// point reached at most once per process (in Open) gets 1.
var cpMaxK = map[string]int{
	"append-begun": 40, "append-written": 40, "append-synced": 40, "append-published": 40,
	"roll-sealed": 6, "roll-synced": 6, "roll-started": 6, "hint-written": 6,
	"recover-started": 1,
	"sidecar-written": 12, "sidecar-named": 12, "sweep-deleting": 4, "compact-segment-removed": 2,
	"fs:segment-created": 6, "fs:segment-write-torn": 40, "fs:hint-temp-written": 6, "fs:format-temp-written": 1,
}

func cpMaxKOf(point string) int {
	if k, ok := cpMaxK[point]; ok {
		return k
	}
	return 3
}

// cpVariant is how a run's processes open the directory.
type cpVariant struct {
	segKiB int // SegmentSize in KiB
	inline int // InlineLimit
	sync   engine.SyncPolicy
	tight  bool // a budget the data exceeds: compaction evicts
	// writers is how many goroutines of the child write at once, each to
	// its own share of the keys: their writes meet in groups.
	writers int
}

func (v cpVariant) String() string {
	return fmt.Sprintf("%d,%d,%d,%t,%d", v.segKiB, v.inline, int(v.sync), v.tight, v.writers)
}

func parseCPVariant(s string) (cpVariant, error) {
	var v cpVariant
	var sync int
	_, err := fmt.Sscanf(s, "%d,%d,%d,%t,%d", &v.segKiB, &v.inline, &sync, &v.tight, &v.writers)
	v.sync = engine.SyncPolicy(sync)
	return v, err
}

func (v cpVariant) options() engine.Options {
	o := engine.Options{
		SegmentSize:        int64(v.segKiB) << 10,
		InlineLimit:        v.inline,
		Sync:               v.sync,
		SyncInterval:       5 * time.Millisecond,
		CompactionInterval: 25 * time.Millisecond,
		SidecarGrace:       -1,
	}
	if v.tight {
		o.CacheSize = 160 << 10
	}
	return o
}

// Operation kinds of the workload.
const (
	cpSet = iota
	cpDelete
	cpBatch
	cpMove // SetFile, Movable
	cpCompact
	cpSync
)

// cpWrite is one key's change: a put of value, or a delete. A put with a
// ttl has a value marked mortal (see cpMortal).
type cpWrite struct {
	key   string
	value string
	del   bool
	ttl   time.Duration
}

func (w cpWrite) state() cpState { return cpState{present: !w.del, value: w.value} }

// cpOp is operation number n of a run's child, the same in the parent.
// With several writers, operation n writes only keys i with i = n mod
// writers, so that the writers' operations in flight at once never touch
// the same key.
type cpOp struct {
	n      int
	kind   int
	writes []cpWrite // in order; distinct keys
}

func cpOpAt(seed uint64, n, writers int) cpOp {
	op := cpOpOf(seed, n, writers)
	op.n = n
	return op
}

func cpOpOf(seed uint64, n, writers int) cpOp {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	share := n % writers
	keys := (cpKeys - share + writers - 1) / writers // in this share
	put := func(key string) cpWrite {
		size := 1 + r.IntN(240) // inline
		switch r.IntN(4) {
		case 0:
			size = 250 + r.IntN(1000) // inline or not, depending on the run
		case 1:
			size = 1300 + r.IntN(3000) // a sidecar file
		}
		w := cpWrite{key: key}
		if r.IntN(5) == 0 {
			w.ttl = []time.Duration{150 * time.Millisecond, 2 * time.Second, time.Hour}[r.IntN(3)]
		}
		w.value = cpValue(r, key, n, size, w.ttl != 0)
		return w
	}
	key := cpKey(share + writers*r.IntN(keys))
	switch p := r.IntN(100); {
	case p < 10:
		return cpOp{kind: cpDelete, writes: []cpWrite{{key: key, del: true}}}
	case p < 22:
		op := cpOp{kind: cpBatch}
		for _, i := range r.Perm(keys)[:2+r.IntN(3)] {
			if key := cpKey(share + writers*i); r.IntN(5) == 0 {
				op.writes = append(op.writes, cpWrite{key: key, del: true})
			} else {
				op.writes = append(op.writes, put(key))
			}
		}
		return op
	case p < 30:
		return cpOp{kind: cpMove, writes: []cpWrite{{key: key, value: cpValue(r, key, n, 1+r.IntN(3000), false)}}}
	case p < 32:
		return cpOp{kind: cpCompact}
	case p < 33:
		return cpOp{kind: cpSync}
	}
	return cpOp{kind: cpSet, writes: []cpWrite{put(key)}}
}

// cpValue is a value that names its key and operation, size bytes long:
// compressible or not. A mortal one (given a TTL) says so.
func cpValue(r *rand.Rand, key string, n, size int, mortal bool) string {
	b := fmt.Appendf(nil, "%s=%d:", key, n)
	if mortal {
		b = fmt.Appendf(b[:0], "%s=%d~:", key, n)
	}
	fill := byte('a' + n%26)
	random := r.IntN(2) == 0
	for len(b) < size {
		if random {
			fill = byte('a' + r.IntN(26))
		}
		b = append(b, fill)
	}
	return string(b)
}

// cpMortal reports whether s is a value written with a TTL: a key holding
// it may be found without a value, expired.
func cpMortal(s cpState) bool {
	head, _, _ := strings.Cut(s.value, ":")
	return s.present && strings.HasSuffix(head, "~")
}

// cpApply runs op on c. src is a folder on the cache's filesystem where
// files to move in are made.
func cpApply(c *engine.Cache, op cpOp, n int, src string) error {
	switch op.kind {
	case cpSet:
		w := op.writes[0]
		return c.SetWithTTL([]byte(w.key), []byte(w.value), w.ttl)
	case cpDelete:
		return c.Delete([]byte(op.writes[0].key))
	case cpBatch:
		var b engine.Batch
		for _, w := range op.writes {
			if w.del {
				b.Delete([]byte(w.key))
			} else {
				b.SetWithTTL([]byte(w.key), []byte(w.value), w.ttl)
			}
		}
		return c.Write(&b)
	case cpMove:
		w := op.writes[0]
		path := filepath.Join(src, fmt.Sprintf("move-%d", n))
		if err := os.WriteFile(path, []byte(w.value), 0o600); err != nil {
			return err
		}
		return c.SetFile([]byte(w.key), path, engine.Movable())
	case cpCompact:
		return c.Compact()
	case cpSync:
		return c.Sync()
	}
	return fmt.Errorf("unknown operation kind %d", op.kind)
}

// cpState is what a key holds: no value, or value.
type cpState struct {
	present bool
	value   string
}

func (s cpState) String() string {
	if !s.present {
		return "(none)"
	}
	if i := strings.IndexByte(s.value, ':'); i >= 0 {
		return fmt.Sprintf("%q (%d bytes)", s.value[:i], len(s.value))
	}
	return fmt.Sprintf("%.40q (%d bytes)", s.value, len(s.value))
}

// cpModel holds, per key, the states a check may find; a key not in it
// may only have no value.
type cpModel map[string][]cpState

func (m cpModel) allowed(key string) []cpState {
	if s, ok := m[key]; ok {
		return s
	}
	return []cpState{{}}
}

func (m cpModel) set(key string, s cpState) { m[key] = []cpState{s} }

func (m cpModel) add(key string, s cpState) {
	if a := m.allowed(key); !slices.Contains(a, s) {
		m[key] = append(slices.Clone(a), s)
	}
}

func (m cpModel) clone() cpModel {
	out := make(cpModel, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

func cpAllKeys() []string {
	keys := make([]string, 0, cpKeys+1)
	for i := range cpKeys {
		keys = append(keys, cpKey(i))
	}
	return append(keys, cpMarker)
}

// cpRun is one run: what the parent chose and what it learnt.
type cpRun struct {
	t       *testing.T
	point   string
	run     int
	seed    uint64
	variant cpVariant
	k       int
	start   string // "new", "crashed" or "recovered"
	shared  bool
	log     *mpBuffer
	checks  *int
	k2      int    // a second child's k; 0 for none
	passive bool   // the survivor only reads: what the children left is what the reopen finds
	flights []cpOp // in flight when the (last) child died
	earlier []cpOp // in flight when the first of two children died
}

func (r *cpRun) fatalf(format string, args ...any) {
	r.t.Helper()
	var flights []string
	for _, op := range r.flights {
		var w []string
		for _, x := range op.writes {
			w = append(w, fmt.Sprintf("%s := %s", x.key, x.state()))
		}
		flights = append(flights, fmt.Sprintf("%d (%s)", op.n, strings.Join(w, ", ")))
	}
	if len(r.earlier) > 0 {
		flights = append(flights, fmt.Sprintf("(and %d ops when the first child died)", len(r.earlier)))
	}
	r.t.Fatalf("%s run %d (seed %d, variant %s, k %d, %d, start %s, shared %t, passive %t): %s\nin flight: %v\nlog:\n%s",
		r.point, r.run, r.seed, r.variant, r.k, r.k2, r.start, r.shared, r.passive, fmt.Sprintf(format, args...), flights, r.log.String())
}

func (r *cpRun) options() engine.Options {
	o := r.variant.options()
	o.ManualCompaction = true
	o.Logger = slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return o
}

// observe reads every key of the key space (and the marker).
func (r *cpRun) observe(c *engine.Cache, when string) map[string]cpState {
	r.t.Helper()
	*r.checks++
	got := make(map[string]cpState)
	for _, key := range cpAllKeys() {
		v, err := c.Get([]byte(key))
		switch {
		case errors.Is(err, engine.ErrNotFound):
			got[key] = cpState{}
		case err != nil:
			r.fatalf("%s: Get(%s): %v", when, key, err)
		default:
			got[key] = cpState{present: true, value: string(v)}
		}
	}
	// Nothing else appears, and a scan (every record and file read and
	// checked) agrees with the reads.
	err := c.Keys(nil, func(ki engine.KeyInfo) error {
		if _, ok := got[string(ki.Key)]; !ok {
			return fmt.Errorf("key %q, never written, appeared", ki.Key)
		}
		return nil
	})
	if err != nil {
		r.fatalf("%s: %v", when, err)
	}
	scanned := make(map[string]bool)
	err = c.Scan(nil, func(key, value []byte) error {
		scanned[string(key)] = true
		if s := got[string(key)]; !s.present || s.value != string(value) {
			return fmt.Errorf("Scan gives %s = %s, Get gave %s", key, cpState{true, string(value)}, s)
		}
		return nil
	})
	if err != nil {
		r.fatalf("%s: Scan: %v", when, err)
	}
	for key, s := range got {
		if s.present && !scanned[key] && !cpMortal(s) { // a mortal one may have expired since
			r.fatalf("%s: Scan skipped %s, which Get found", when, key)
		}
	}
	if n := c.Stats().Corruptions; n != 0 {
		r.fatalf("%s: %d corruptions reported", when, n)
	}
	return got
}

// check checks an observation against the model: each key holds a state
// the model allows, or (under a tight budget) no value, evicted.
func (r *cpRun) check(m cpModel, got map[string]cpState, when string) {
	r.t.Helper()
	for _, key := range cpAllKeys() {
		s := got[key]
		if slices.Contains(m.allowed(key), s) || !s.present && (r.variant.tight || slices.ContainsFunc(m.allowed(key), cpMortal)) {
			continue
		}
		r.fatalf("%s: %s = %s, want one of %v", when, key, s, m.allowed(key))
	}
}

// checkSame checks that two observations agree, but for values that
// expired in between.
func (r *cpRun) checkSame(a, b map[string]cpState, what string) {
	r.t.Helper()
	for _, key := range cpAllKeys() {
		if a[key] != b[key] && (b[key].present || !cpMortal(a[key])) {
			r.fatalf("%s: %s = %s, then %s", what, key, a[key], b[key])
		}
	}
}

// resolve checks an observation made after the kill against the model
// plus the operations in flight (on distinct keys), and returns the model
// it pins down: each key holds what was found. A batch in flight must have
// landed as a prefix of its writes (all or none, seen by a survivor: it is
// published at once).
func (r *cpRun) resolve(m cpModel, flights []cpOp, got map[string]cpState, when string, atomic bool) cpModel {
	r.t.Helper()
	want := m.clone()
	for _, flight := range flights {
		for _, w := range flight.writes {
			want.add(w.key, w.state())
		}
	}
	r.check(want, got, when)
	for _, flight := range flights {
		if len(flight.writes) < 2 {
			continue
		}
		// landed: definitely applied; missed: definitely not.
		firstMissed, lastLanded := -1, -1
		for i, w := range flight.writes {
			s := got[w.key]
			isNew, isOld := s == w.state(), slices.Contains(m.allowed(w.key), s)
			if !s.present {
				// Evicted or expired, whichever write came last.
				isNew = isNew || r.variant.tight || cpMortal(w.state())
				isOld = isOld || r.variant.tight || slices.ContainsFunc(m.allowed(w.key), cpMortal)
			}
			switch {
			case isNew && !isOld:
				lastLanded = i
			case isOld && !isNew && firstMissed < 0:
				firstMissed = i
			}
		}
		if firstMissed >= 0 && (lastLanded > firstMissed || atomic && lastLanded >= 0) {
			var desc []string
			for _, w := range flight.writes {
				desc = append(desc, fmt.Sprintf("%s: %s (before: %v) -> found %s", w.key, w.state(), m.allowed(w.key), got[w.key]))
			}
			r.fatalf("%s: batch %d, in flight, landed in part, not as a prefix:\n%s", when, flight.n, strings.Join(desc, "\n"))
		}
	}
	out := make(cpModel)
	for key, s := range got {
		if s.present {
			out.set(key, s)
		}
	}
	return out
}

// TestCrashPoints kills a process at every crash point, runs times each.
func TestCrashPoints(t *testing.T) {
	seed := testseed.Seed(t)
	points := append(engine.CrashPoints(), cpFSPoints...)
	runs := max(*crashPointRuns, 1)
	var mu sync.Mutex
	ran, reached, children, checks := make(map[string]bool), make(map[string]int), 0, 0
	start := time.Now()
	for _, point := range points {
		t.Run(point, func(t *testing.T) {
			h := fnv.New64a()
			io.WriteString(h, point)
			pseed := seed ^ h.Sum64()
			n, c, k := cpSweepPoint(t, point, pseed, runs)
			mu.Lock()
			ran[point] = true
			reached[point] += n
			children += c
			checks += k
			mu.Unlock()
		})
	}
	if t.Failed() {
		return
	}
	for _, point := range points {
		if ran[point] && reached[point] == 0 {
			t.Errorf("crash point %s was never reached", point)
		}
	}
	t.Logf("%d of %d crash points, %d runs each: %d children, %d killed at their point, %d directory states checked, in %v",
		len(ran), len(points), runs, children, func() int {
			n := 0
			for _, v := range reached {
				n += v
			}
			return n
		}(), checks, time.Since(start).Round(time.Millisecond))
}

// cpSweepPoint runs the runs of one point and returns how many children
// died at it, how many children ran, and how many states it checked.
func cpSweepPoint(t *testing.T, point string, seed uint64, runs int) (killed, children, checks int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var (
		crashedDir, recoveredDir string
		crashedModel             cpModel // what the crashed directory holds
		recoveredModel           cpModel // what the recovered one holds
		next                     int     // the next operation number
	)
	for run := 0; run < runs; run++ {
		r := &cpRun{t: t, point: point, run: run, seed: seed, log: new(mpBuffer), checks: &checks}
		r.variant = cpVariant{
			segKiB:  []int{4, 8, 16}[rng.IntN(3)],
			inline:  []int{256, 400, 800}[rng.IntN(3)],
			sync:    []engine.SyncPolicy{engine.SyncNever, engine.SyncInterval, engine.SyncAlways}[rng.IntN(3)],
			tight:   rng.IntN(3) == 0 || strings.HasPrefix(point, "compact-") && rng.IntN(2) == 0,
			writers: 1 + rng.IntN(3),
		}
		if point == "append-synced" {
			r.variant.sync = engine.SyncAlways
		}
		r.k = 1 + rng.IntN(cpMaxKOf(point))
		var dir string
		var model cpModel
		switch x := rng.IntN(4); {
		case point == "fs:format-temp-written":
			// Only a new directory gets its format file.
			r.start, dir, model = "new", filepath.Join(t.TempDir(), "cache"), make(cpModel)
		case point == "recover-started" && x < 2, run > 0 && x == 0:
			// Only a directory that needs recovering makes Open start a
			// segment: a new one, or one with a torn tail.
			r.start, dir, model = "torn", filepath.Join(t.TempDir(), "cache"), make(cpModel)
			cpPrepareTorn(r, dir, model, &next, rng)
		case run == 0 || x == 1 || point == "recover-started":
			r.start, dir, model = "new", filepath.Join(t.TempDir(), "cache"), make(cpModel)
		case x == 2:
			r.start, dir, model = "crashed", crashedDir, crashedModel
		default:
			r.start, dir, model = "recovered", recoveredDir, recoveredModel
		}
		r.shared = rng.IntN(3) == 0 && point != "recover-started" && point != "fs:format-temp-written"

		if r.shared && rng.IntN(2) == 0 {
			r.k2 = 1 + rng.IntN(cpMaxKOf(point))
		}
		r.passive = r.shared && rng.IntN(2) == 0
		kids, kills, flights, acked := cpRunChild(r, dir, &next, model)
		if kills == 0 {
			// The workload ended first: try once more, at the first time.
			r.k, r.k2, r.run = 1, 0, run+1000
			children += kids
			kids, kills, flights, acked = cpRunChild(r, dir, &next, acked)
		}
		children += kids
		killed += kills
		var what []string
		for _, op := range flights {
			what = append(what, []string{"set", "delete", "batch", "move", "compact", "sync"}[op.kind])
		}
		t.Logf("run %d: variant %s, start %s, shared %t, k %d, %d: %d of %d children killed, %d operations numbered, in flight: %v",
			r.run, r.variant, r.start, r.shared, r.k, r.k2, kills, kids, next, what)
		if r.shared && !r.passive {
			flights = nil // the survivor pinned them down
		}
		crashedDir, crashedModel, recoveredDir, recoveredModel = cpCheck(r, dir, flights, acked)
	}
	return killed, children, checks
}

// cpPrepareTorn fills a new directory with a few operations and leaves the
// log's active segment with a torn tail: the start of a record, as a
// writer killed in the middle of its pwrite leaves it.
func cpPrepareTorn(r *cpRun, dir string, model cpModel, next *int, rng *rand.Rand) {
	r.t.Helper()
	c, err := engine.Open(dir, r.options())
	if err != nil {
		r.fatalf("prepare: %v", err)
	}
	src := r.t.TempDir()
	for range 20 + rng.IntN(60) {
		n := *next
		*next = n + 1
		op := cpOpAt(r.seed, n, 1)
		if err := cpApply(c, op, n, src); err != nil {
			r.fatalf("prepare: operation %d: %v", n, err)
		}
		for _, w := range op.writes {
			model.set(w.key, w.state())
		}
	}
	if err := c.Close(); err != nil {
		r.fatalf("prepare: Close: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		r.fatalf("prepare: %v", err)
	}
	last := ""
	for _, e := range entries {
		if _, ok := segment.ParseFileName(e.Name()); !ok {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			r.fatalf("prepare: %v", err)
		}
		h, err := segment.ReadHeader(f)
		f.Close()
		if err == nil && !h.Compacted() {
			last = max(last, e.Name())
		}
	}
	if last == "" {
		r.fatalf("prepare: no log segment in %s", dir)
	}
	rec := segment.Record{Kind: segment.KindPut, Seq: 1 << 40, Key: []byte(cpKey(0)), Value: []byte("torn")}
	b := segment.AppendRecord(nil, &rec)
	f, err := os.OpenFile(filepath.Join(dir, last), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		r.fatalf("prepare: %v", err)
	}
	_, err = f.Write(b[:1+rng.IntN(len(b)-1)])
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.fatalf("prepare: %v", err)
	}
}

// cpRunChild runs a child on dir (the parent holding it open meanwhile if
// the run is shared, and then, if r.k2 is set, a second child that takes
// over from the dead one and dies too) and returns how many children it
// ran and how many died at the point, the operations in flight at the
// last death, and the model with every acknowledged write. With a
// survivor, the model returned is what the survivor found.
func cpRunChild(r *cpRun, dir string, next *int, model cpModel) (children, killed int, flights []cpOp, acked cpModel) {
	r.t.Helper()
	var survivor *engine.Cache
	if r.shared {
		var err error
		if survivor, err = engine.Open(dir, r.options()); err != nil {
			r.fatalf("open before the child: %v", err)
		}
	}
	acked = model.clone()
	died, flights := cpChild(r, dir, next, r.k, acked)
	children++
	if died {
		killed++
	}
	if died && r.k2 > 0 {
		// The writes the first child had in flight may have landed or
		// not, whatever the second does with the keys they touch.
		for _, op := range flights {
			for _, w := range op.writes {
				acked.add(w.key, w.state())
			}
		}
		r.earlier = flights
		died, flights = cpChild(r, dir, next, r.k2, acked)
		children++
		if died {
			killed++
		}
	}
	if survivor != nil {
		acked = cpSurvive(r, survivor, acked, flights)
	}
	return children, killed, flights, acked
}

// cpChild runs one child on dir, dying the k-th time it reaches the point,
// applies the writes it acknowledged to acked and returns whether it died
// there and the operations it had in flight.
func cpChild(r *cpRun, dir string, next *int, k int, acked cpModel) (died bool, flights []cpOp) {
	r.t.Helper()
	src := r.t.TempDir()
	cmd, stdout, stderr := startChild(r.t, "crash-point", dir,
		"KENNEL_CP_POINT="+r.point, "KENNEL_CP_K="+strconv.Itoa(k), "KENNEL_CP_SEED="+strconv.FormatUint(r.seed, 10),
		"KENNEL_CP_START="+strconv.Itoa(*next), "KENNEL_CP_VARIANT="+r.variant.String(), "KENNEL_CP_SRC="+src)
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	inFlight, unreached := make(map[int]bool), false
	readProgress(stdout, func(kind string, n int) {
		switch kind {
		case "b":
			inFlight[n] = true
			*next = max(*next, n+1) // never used again
		case "a":
			for _, w := range cpOpAt(r.seed, n, r.variant.writers).writes {
				acked.set(w.key, w.state())
			}
			delete(inFlight, n)
		case "unreached":
			unreached = true
		}
	})
	timer.Stop()
	cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL:
		died = true
	case unreached && cmd.ProcessState.Success():
	default:
		r.fatalf("the child ended with %v; stderr:\n%s", cmd.ProcessState, stderr)
	}
	for n := range inFlight {
		flights = append(flights, cpOpAt(r.seed, n, r.variant.writers))
	}
	slices.SortFunc(flights, func(a, b cpOp) int { return a.n - b.n })
	r.flights = flights
	return died, flights
}

// cpSurvive checks the survivor's view after the child died, writes and
// compacts through it (taking over from a writer or compactor that died
// mid-way), checks again and closes it. It returns the model its first
// look pinned down. A passive survivor only looks: it returns model.
func cpSurvive(r *cpRun, c *engine.Cache, model cpModel, flights []cpOp) cpModel {
	r.t.Helper()
	got := r.observe(c, "survivor")
	resolved := r.resolve(model, flights, got, "survivor", true)
	if r.passive {
		// Nothing sealed the log over the writes in flight: a first
		// open may still find them.
		if err := c.Close(); err != nil {
			r.fatalf("survivor: Close: %v", err)
		}
		return model
	}
	model = resolved
	if err := c.Set([]byte(cpMarker), []byte(strconv.Itoa(r.run))); err != nil {
		r.fatalf("survivor: Set: %v", err)
	}
	model.set(cpMarker, cpState{present: true, value: strconv.Itoa(r.run)})
	if err := c.Compact(); err != nil {
		r.fatalf("survivor: Compact: %v", err)
	}
	r.check(model, r.observe(c, "survivor, after Compact"), "survivor, after Compact")
	if err := c.Close(); err != nil {
		r.fatalf("survivor: Close: %v", err)
	}
	return model
}

// cpCheck checks a copy of the directory the child died in and returns
// the directories and models for the next run: the crashed one as it is,
// and the copy, recovered, compacted and closed.
func cpCheck(r *cpRun, dir string, flights []cpOp, model cpModel) (string, cpModel, string, cpModel) {
	r.t.Helper()
	check := filepath.Join(r.t.TempDir(), "cache")
	if err := copyTree(dir, check); err != nil {
		r.fatalf("copy the directory: %v", err)
	}
	c, err := engine.Open(check, r.options())
	if err != nil {
		r.fatalf("reopen: %v", err)
	}
	defer c.Close()
	for _, name := range sidecarFiles(r.t, check) {
		if strings.Contains(name, segment.TempInfix) {
			r.fatalf("temporary file %s left in the sidecar folder after reopen", name)
		}
	}
	first := r.observe(c, "reopen")
	crashed := r.resolve(model, flights, first, "reopen", false)

	if err := c.Compact(); err != nil {
		r.fatalf("Compact after reopen: %v", err)
	}
	compacted := r.observe(c, "after Compact")
	if r.variant.tight {
		r.check(crashed, compacted, "after Compact")
	} else {
		r.checkSame(first, compacted, "reopen, then Compact")
	}
	if files, live := len(sidecarFiles(r.t, check)), c.Stats().SidecarFiles; files != live {
		r.fatalf("%d sidecar files after Compact, %d live values in sidecars", files, live)
	}
	if err := c.Close(); err != nil {
		r.fatalf("Close: %v", err)
	}
	cpCheckFiles(r, check)

	c, err = engine.Open(check, r.options())
	if err != nil {
		r.fatalf("reopen after Compact: %v", err)
	}
	defer c.Close()
	r.checkSame(compacted, r.observe(c, "reopen after Compact"), "Compact, then reopen")
	if err := c.Close(); err != nil {
		r.fatalf("Close: %v", err)
	}
	cpCheckFiles(r, check)
	recovered := make(cpModel)
	for key, s := range compacted {
		if s.present {
			recovered.set(key, s)
		}
	}
	return dir, crashed, check, recovered
}

// cpCheckFiles checks a closed directory's files: no temporary file, and
// no hint without its segment.
func cpCheckFiles(r *cpRun, dir string) {
	r.t.Helper()
	for _, d := range []string{dir, filepath.Join(dir, segment.SidecarDir)} {
		entries, err := os.ReadDir(d)
		if err != nil {
			r.fatalf("%v", err)
		}
		for _, e := range entries {
			name := e.Name()
			if strings.Contains(name, segment.TempInfix) {
				r.fatalf("temporary file %s left in %s", name, d)
			}
			if id, ok := segment.ParseHintFileName(name); ok {
				if _, err := os.Lstat(filepath.Join(d, segment.FileName(id))); err != nil {
					r.fatalf("hint %s without its segment: %v", name, err)
				}
			}
		}
	}
}

// TestCrashPointsListed checks that crashPoints names every crash point in
// the engine's sources, each once, and nothing else.
func TestCrashPointsListed(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\breached\("([^"]*)"\)`)
	inSource := make(map[string]int)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			inSource[string(m[1])]++
		}
	}
	listed := make(map[string]bool)
	for _, p := range engine.CrashPoints() {
		if listed[p] {
			t.Errorf("crash point %s listed twice", p)
		}
		listed[p] = true
		if inSource[p] == 0 {
			t.Errorf("crash point %s is listed but never marked in the source", p)
		}
	}
	for p, n := range inSource {
		if !listed[p] {
			t.Errorf("crash point %s is marked in the source but not listed in crashPoints", p)
		}
		if n > 1 {
			t.Errorf("crash point %s is marked %d times: one place per point", p, n)
		}
	}
}

func init() { childRoles["crash-point"] = childCrashPoint }

// cpKill kills the process at once: no deferred call runs, nothing is
// flushed or closed.
func cpKill() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// cpKillFS is the real filesystem with the crash points of cpFSPoints:
// hit says whether the process dies at one.
type cpKillFS struct {
	vfs.FS
	hit func(name string) bool
}

func isSegment(path string) bool {
	_, ok := segment.ParseFileName(filepath.Base(path))
	return ok
}

func (k cpKillFS) Create(name string, perm fs.FileMode) (vfs.File, error) {
	f, err := k.FS.Create(name, perm)
	if err == nil && isSegment(name) {
		if k.hit("fs:segment-created") {
			cpKill()
		}
		f = cpKillFile{File: f, hit: k.hit}
	}
	return f, err
}

func (k cpKillFS) OpenWrite(name string) (vfs.File, error) {
	f, err := k.FS.OpenWrite(name)
	if err == nil && isSegment(name) {
		f = cpKillFile{File: f, hit: k.hit}
	}
	return f, err
}

func (k cpKillFS) Rename(from, to string) error {
	base := filepath.Base(from)
	if strings.Contains(base, segment.HintSuffix+segment.TempInfix) && k.hit("fs:hint-temp-written") ||
		strings.HasPrefix(base, "KENNEL"+segment.TempInfix) && k.hit("fs:format-temp-written") {
		cpKill()
	}
	return k.FS.Rename(from, to)
}

// cpKillFile is a segment file whose pwrites may reach it in part.
type cpKillFile struct {
	vfs.File
	hit func(name string) bool
}

func (f cpKillFile) WriteAt(p []byte, off int64) (int, error) {
	if len(p) > 1 && f.hit("fs:segment-write-torn") {
		f.File.WriteAt(p[:1+int(off+int64(len(p)))%(len(p)-1)], off)
		cpKill()
	}
	return f.File.WriteAt(p, off)
}

// childCrashPoint applies the workload from KENNEL_CP_START on and SIGKILLs
// itself the KENNEL_CP_K-th time it reaches KENNEL_CP_POINT. If the
// workload ends first, it closes the cache and says "unreached".
func childCrashPoint(dir string) int {
	point := os.Getenv("KENNEL_CP_POINT")
	k, err1 := strconv.ParseInt(os.Getenv("KENNEL_CP_K"), 10, 64)
	seed, err2 := strconv.ParseUint(os.Getenv("KENNEL_CP_SEED"), 10, 64)
	start, err3 := strconv.Atoi(os.Getenv("KENNEL_CP_START"))
	v, err4 := parseCPVariant(os.Getenv("KENNEL_CP_VARIANT"))
	src := os.Getenv("KENNEL_CP_SRC")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	known := make(map[string]bool)
	for _, p := range engine.CrashPoints() {
		known[p] = true
	}
	var hits atomic.Int64
	hit := func(name string) bool { return name == point && hits.Add(1) == k }
	engine.SetCrashPoint(func(name string) {
		if !known[name] {
			fmt.Fprintf(os.Stderr, "crash point %q is not listed\n", name)
			os.Exit(3)
		}
		if hit(name) {
			cpKill()
		}
	})
	opts := engine.WithFS(v.options(), cpKillFS{FS: vfs.OS{}, hit: hit})
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := engine.Open(dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var outMu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(out, format, args...)
		out.Flush()
		outMu.Unlock()
	}
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for g := range v.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := start + g; n < start+5000 && time.Now().Before(deadline) && !failed.Load(); n += v.writers {
				say("b %d\n", n)
				if err := cpApply(c, cpOpAt(seed, n, v.writers), n, src); err != nil {
					fmt.Fprintf(os.Stderr, "operation %d: %v\n", n, err)
					failed.Store(true)
					return
				}
				say("a %d\n", n)
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		return 1
	}
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	say("unreached %d\n", hits.Load())
	return 0
}

// TestCrashOrphanOutlivesItsSeal: a writer dies after a group that spans a
// roll reached its new segment, unpublished. A survivor seals the log at
// the published end (the dead writer's segment is an orphan: its id lies
// between the sealed segment and the one the seal names), then compacts,
// which reclaims the sealed segment. The orphan's records must stay
// unread by every later open.
func TestCrashOrphanOutlivesItsSeal(t *testing.T) {
	dir := t.TempDir()
	opts := engine.Options{SegmentSize: 4 << 10, ManualCompaction: true, Sync: engine.SyncNever}
	survivor := openCache(t, dir, opts)
	mustSet(t, survivor, "a", "overwritten") // dead: compaction reclaims the segment
	mustSet(t, survivor, "a", "published")
	runToCrashPoint(t, "crash-orphan", dir)
	wantValue(t, survivor, "a", "published")
	for i := range 3 {
		if _, err := survivor.Get(fmt.Appendf(nil, "batch-%d", i)); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("survivor: batch-%d: %v, want ErrNotFound: the batch was never published", i, err)
		}
	}
	mustSet(t, survivor, "marker", "x") // seals the log where it was published
	if err := survivor.Compact(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, survivor)
	c := openCache(t, dir, opts)
	for i := range 3 {
		if v, err := c.Get(fmt.Appendf(nil, "batch-%d", i)); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("reopen: batch-%d = %d bytes, %v: a record the survivor never saw came back", i, len(v), err)
		}
	}
	wantValue(t, c, "a", "published")
	wantValue(t, c, "marker", "x")
}

func init() { childRoles["crash-orphan"] = childCrashOrphan }

// runToCrashPoint runs the test binary in role on dir and fails unless the
// child killed itself (at its crash point).
func runToCrashPoint(t *testing.T, role, dir string) {
	t.Helper()
	cmd := childCommand(role, dir)
	out, _ := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s did not die at its crash point: %v\n%s", role, cmd.ProcessState, out)
	}
}

// childCrashOrphan writes a batch too large for what is left of the active
// segment and dies once its records reached the next segment, unpublished.
func childCrashOrphan(dir string) int {
	return childDieInBatch(dir, func(name string) {
		if name == "append-written" {
			cpKill()
		}
	})
}

// childDieInBatch opens dir and writes a batch too large for what is left
// of the active 4 KiB segment; once the batch is under way, each crash
// point reached is passed to die, which kills the process at the one it
// waits for.
func childDieInBatch(dir string, die func(point string)) int {
	var armed atomic.Bool
	engine.SetCrashPoint(func(name string) {
		if armed.Load() {
			die(name)
		}
	})
	c, err := engine.Open(dir, engine.Options{SegmentSize: 4 << 10, ManualCompaction: true, Sync: engine.SyncNever})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var b engine.Batch
	for i := range 3 {
		b.Set(fmt.Appendf(nil, "batch-%d", i), randomBytes(uint64(i), 1500))
	}
	armed.Store(true)
	c.Write(&b)
	fmt.Fprintln(os.Stderr, "crash point not reached")
	return 1
}

// TestCrashStaleHintOfResealedSegment: a writer dies after a group that
// spans a roll: it sealed the active segment past the published end and
// wrote that segment's hint, listing its unpublished records. A second
// writer seals the segment again at the published end (over those
// records) and dies before it wrote a new hint. Open must not take the
// first writer's hint for the segment's records.
func TestCrashStaleHintOfResealedSegment(t *testing.T) {
	dir := t.TempDir()
	opts := engine.Options{SegmentSize: 4 << 10, ManualCompaction: true, Sync: engine.SyncNever}
	c := openCache(t, dir, opts) // keeps the children from being first to open
	mustSet(t, c, "a", "published")
	runToCrashPoint(t, "crash-hinted-writer", dir)
	runToCrashPoint(t, "crash-resealer", dir)
	mustClose(t, c)
	c = openCache(t, dir, opts)
	for _, key := range []string{"batch-0", "batch-1", "batch-2", "marker"} {
		if v, err := c.Get([]byte(key)); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("%s = %d bytes, %v; want ErrNotFound: never published, and sealed over", key, len(v), err)
		}
	}
	wantValue(t, c, "a", "published")
	if n := c.Stats().Corruptions; n != 0 {
		t.Errorf("%d corruptions reported", n)
	}
}

func init() {
	childRoles["crash-hinted-writer"] = childCrashHintedWriter
	childRoles["crash-resealer"] = childCrashResealer
}

// childCrashHintedWriter writes a batch that rolls the active segment and
// dies once the sealed segment's hint is written, before the batch is
// published.
func childCrashHintedWriter(dir string) int {
	hinted := make(chan struct{})
	var once sync.Once
	return childDieInBatch(dir, func(name string) {
		switch name {
		case "hint-written": // by a goroutine of its own
			once.Do(func() { close(hinted) })
		case "append-written":
			select {
			case <-hinted:
				cpKill()
			case <-time.After(10 * time.Second):
				fmt.Fprintln(os.Stderr, "no hint written")
				os.Exit(1)
			}
		}
	})
}

// childCrashResealer writes once, which seals the log at its published
// end (the last writer died mid-append), and dies once the next segment
// is started.
func childCrashResealer(dir string) int {
	engine.SetCrashPoint(func(name string) {
		if name == "roll-started" {
			cpKill()
		}
	})
	c, err := engine.Open(dir, engine.Options{SegmentSize: 4 << 10, ManualCompaction: true, Sync: engine.SyncNever})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c.Set([]byte("marker"), []byte("x"))
	fmt.Fprintln(os.Stderr, "crash point not reached")
	return 1
}
