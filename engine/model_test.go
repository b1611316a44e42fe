package engine_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/testseed"
)

var (
	modelSeqs = flag.Int("kennel.model-seqs", 2, "random operation sequences per configuration of TestModel (a soak run: 100 or more)")
	modelOps  = flag.Int("kennel.model-ops", 150, "operations per sequence of TestModel (a soak run: 1000 or more)")
)

// modelHistory is how many operations a failure report shows: enough to
// see how the key at fault got its value.
const modelHistory = 30

// modelConfig is a configuration TestModel runs its sequences under.
type modelConfig struct {
	name string
	opts engine.Options
	// compactEvery forces a Compact after every this many operations
	// (0: only the randomly chosen ones).
	compactEvery int
	// evicts marks a budget the sequences overflow: a key may be absent,
	// but only if Stats reported an eviction since it was written, and
	// only for good (modelValue.goneIn); it never holds a value other than
	// its last.
	evicts bool
	// shared opens the directory twice, as two processes would: each
	// operation goes to one cache or the other, and every check reads
	// through both.
	shared bool
}

// modelConfigs are the stressful configurations. All but the tight-budget
// ones keep CacheSize at its default of 1 GiB, hundreds of times what a
// sequence writes, so that eviction never removes a live key: the model has
// no eviction and expects every value it holds.
func modelConfigs() []modelConfig {
	return []modelConfig{
		{name: "tiny-segments", opts: engine.Options{SegmentSize: 4 << 10, InlineLimit: 1 << 10, Sync: engine.SyncNever}},
		{name: "compact-often", opts: engine.Options{SegmentSize: 4 << 10, InlineLimit: 512, Sync: engine.SyncNever}, compactEvery: 4},
		{name: "all-sidecars", opts: engine.Options{SegmentSize: 16 << 10, InlineLimit: -1, Sync: engine.SyncNever}},
		// SetFile and SetReader still make sidecar files.
		{name: "no-sidecars", opts: engine.Options{SegmentSize: 4 << 10, InlineLimit: 1 << 30, Sync: engine.SyncNever}},
		{name: "sync-always", opts: engine.Options{SegmentSize: 8 << 10, InlineLimit: 1 << 10, Sync: engine.SyncAlways}},
		// Background syncs and expiry compactions race with the operations.
		{name: "background-default-ttl", opts: engine.Options{SegmentSize: 8 << 10, InlineLimit: 1 << 10,
			SyncInterval: time.Millisecond, CompactionInterval: 2 * time.Millisecond, DefaultTTL: 40 * time.Second}},
		{name: "exclusive-uncompressed", opts: engine.Options{SegmentSize: 8 << 10, InlineLimit: 2 << 10,
			Exclusive: true, Compression: engine.CompressNone, Sync: engine.SyncNever}},
		{name: "tight-budget", opts: engine.Options{SegmentSize: 4 << 10, CacheSize: 24 << 10, InlineLimit: 512,
			Sync: engine.SyncNever}, evicts: true},
		{name: "shared", opts: engine.Options{SegmentSize: 4 << 10, InlineLimit: 1 << 10, Sync: engine.SyncNever},
			compactEvery: 10, shared: true},
		{name: "shared-tight-budget", opts: engine.Options{SegmentSize: 4 << 10, CacheSize: 24 << 10, InlineLimit: 512,
			Sync: engine.SyncNever}, evicts: true, shared: true},
	}
}

// modelTally counts what the sequences of a configuration checked.
type modelTally struct {
	seqs, ops  int
	gets       int // Gets (with Has) compared with the model
	fullChecks int // comparisons of every key, Len and a full Scan
	excused    int // absences accepted because compaction evicted
}

func (t *modelTally) add(o modelTally) {
	t.seqs += o.seqs
	t.ops += o.ops
	t.gets += o.gets
	t.fullChecks += o.fullChecks
	t.excused += o.excused
}

func (t modelTally) String() string {
	return fmt.Sprintf("%d sequences, %d ops, %d Gets compared, %d full checks, %d absences excused by eviction",
		t.seqs, t.ops, t.gets, t.fullChecks, t.excused)
}

// TestModel runs seeded random operation sequences against a cache and
// against a map, under several configurations, and compares every value
// the cache returns (Get, Has, Open, Scan, Len) with the map after every
// operation that may change the state: writes of every kind, deletes,
// clock advances that expire values, compactions, reopens.
func TestModel(t *testing.T) {
	seed := testseed.Seed(t)
	var total modelTally
	for _, cfg := range modelConfigs() {
		t.Run(cfg.name, func(t *testing.T) {
			var tally modelTally
			for seq := range *modelSeqs {
				runModelSequence(t, cfg, seed, seq, &tally)
			}
			t.Logf("%s: %v", cfg.name, tally)
			total.add(tally)
		})
	}
	t.Logf("total: %v", total)
}

// modelValue is what the model holds for a key.
type modelValue struct {
	value  []byte
	expiry int64 // unix nanos; 0: never
	// evictions is how many evictions Stats had reported before the write:
	// only a later one can excuse the value's absence.
	evictions uint64
	// goneIn has bit i set once caches[i] found the value evicted: that
	// cache must never return it again. Another cache may, until it learns
	// of the eviction.
	goneIn uint8
}

// modelRun is one sequence: the cache, the model, and what a failure
// report needs.
type modelRun struct {
	t      *testing.T
	cfg    modelConfig
	seed   uint64
	seq    int
	rng    *rand.Rand
	clock  *testClock
	dir    string // the cache
	srcDir string // files for SetFile, on the cache's filesystem so that Movable moves
	opts   engine.Options
	caches []*engine.Cache // open on dir; none while closed
	c      *engine.Cache   // the one in use, caches[cur]
	cur    int

	keys      []string
	model     map[string]modelValue
	inlineRef int // value sizes are drawn around it

	op      int
	made    int // values made, to tell them apart
	history []string
	// evictedClosed adds up Stats.Evicted of the opens already closed;
	// evictionsAtOp is the total when the current operation began.
	evictedClosed uint64
	evictionsAtOp uint64
	tally         modelTally
}

func runModelSequence(t *testing.T, cfg modelConfig, seed uint64, seq int, tally *modelTally) {
	h := fnv.New64a()
	h.Write([]byte(cfg.name))
	base := t.TempDir()
	r := &modelRun{
		t:         t,
		cfg:       cfg,
		seed:      seed,
		seq:       seq,
		rng:       rand.New(rand.NewPCG(seed, h.Sum64()+uint64(seq))),
		clock:     newTestClock(),
		dir:       filepath.Join(base, "cache"),
		srcDir:    filepath.Join(base, "src"),
		model:     make(map[string]modelValue),
		inlineRef: cfg.opts.InlineLimit,
	}
	if r.inlineRef <= 0 || r.inlineRef > 64<<10 {
		r.inlineRef = 1 << 10 // no useful limit: still mix small and large values
	}
	if err := os.Mkdir(r.srcDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Keys like k-1, k-10 and k-100 make prefixes that are also keys.
	for i := range 64 + r.rng.IntN(137) {
		r.keys = append(r.keys, fmt.Sprintf("k-%d", i))
	}
	t.Cleanup(func() {
		for _, c := range r.caches {
			c.Close()
		}
	})

	r.open(cfg.opts)
	for r.op = 0; r.op < *modelOps; r.op++ {
		r.step()
		if cfg.compactEvery > 0 && r.op%cfg.compactEvery == cfg.compactEvery-1 {
			r.note("Compact (forced)")
			r.compact()
			r.checkAll()
		}
	}
	r.checkAll()
	r.note("end: reopen, Compact, count sidecar files")
	r.reopen(r.opts)
	r.checkAll()
	r.compact()
	r.checkAll()
	if files, live := len(sidecarFiles(t, r.dir)), r.c.Stats().SidecarFiles; files != live {
		r.failf("%d sidecar files after Compact, %d values in sidecar files", files, live)
	}
	r.close()

	r.tally.seqs, r.tally.ops = 1, *modelOps
	tally.add(r.tally)
	if err := os.RemoveAll(base); err != nil { // a soak run makes many
		t.Fatal(err)
	}
}

// modelOp is an operation the sequences draw; do reports whether it may
// have changed the state.
type modelOp struct {
	weight int
	do     func(r *modelRun) bool
}

var modelOpTable = []modelOp{
	{20, (*modelRun).opSet},
	{8, (*modelRun).opSetWithTTL},
	{10, (*modelRun).opDelete},
	{5, (*modelRun).opSetFile},
	{4, (*modelRun).opSetReader},
	{6, (*modelRun).opBatch},
	{2, (*modelRun).opInvalid},
	{10, (*modelRun).opGet},
	{5, (*modelRun).opOpen},
	{4, (*modelRun).opScan},
	{4, (*modelRun).opAdvance},
	{2, (*modelRun).opAdvanceToExpiry},
	{2, (*modelRun).opSync},
	{2, (*modelRun).opCompact},
	{2, (*modelRun).opReopen},
	{1, (*modelRun).opReopenOther},
}

var modelOpWeights = func() int {
	sum := 0
	for _, o := range modelOpTable {
		sum += o.weight
	}
	return sum
}()

// step draws an operation, does it, and checks every key if it may have
// changed the state.
func (r *modelRun) step() {
	if r.cfg.evicts {
		r.evictionsAtOp = r.evictions()
	}
	r.use(r.rng.IntN(len(r.caches)))
	n := r.rng.IntN(modelOpWeights)
	for _, o := range modelOpTable {
		if n -= o.weight; n < 0 {
			if o.do(r) {
				r.checkAll()
			}
			return
		}
	}
}

func (r *modelRun) opSet() bool {
	key, v := r.randKey(), r.newValue()
	r.note("Set(%s, %s)", key, describe(v))
	if err := r.c.Set([]byte(key), v); err != nil {
		r.failf("Set(%s): %v", key, err)
	}
	r.put(key, v, r.opts.DefaultTTL)
	return true
}

func (r *modelRun) opSetWithTTL() bool {
	key, v, ttl := r.randKey(), r.newValue(), r.randTTL()
	r.note("SetWithTTL(%s, %s, %v)", key, describe(v), ttl)
	if err := r.c.SetWithTTL([]byte(key), v, ttl); err != nil {
		r.failf("SetWithTTL(%s): %v", key, err)
	}
	r.put(key, v, ttl)
	return true
}

func (r *modelRun) opDelete() bool {
	key := r.randKey()
	r.note("Delete(%s)", key)
	if err := r.c.Delete([]byte(key)); err != nil {
		r.failf("Delete(%s): %v", key, err)
	}
	delete(r.model, key)
	return true
}

func (r *modelRun) opSetFile() bool {
	key, v := r.randKey(), r.newValue()
	path := filepath.Join(r.srcDir, fmt.Sprintf("src-%d", r.made))
	if err := os.WriteFile(path, v, 0o600); err != nil {
		r.t.Fatal(err)
	}
	movable := r.rng.IntN(2) == 0
	opts, ttl, how := r.setOptions()
	if movable {
		opts = append(opts, engine.Movable())
		how += ", Movable"
	}
	r.note("SetFile(%s, %s%s)", key, describe(v), how)
	if err := r.c.SetFile([]byte(key), path, opts...); err != nil {
		r.failf("SetFile(%s): %v", key, err)
	}
	r.put(key, v, ttl)
	// The file was a regular one of this user with one link, on the
	// cache's filesystem: Movable moves it, else it is copied.
	_, err := os.Lstat(path)
	switch {
	case movable && !errors.Is(err, fs.ErrNotExist):
		r.failf("SetFile(%s, Movable): the source is still there (%v)", key, err)
	case !movable && err != nil:
		r.failf("SetFile(%s) without Movable: the source is gone: %v", key, err)
	case !movable:
		// Scribbled over, the source must not change the copy.
		if err := os.WriteFile(path, []byte("scribble"), 0o600); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Remove(path); err != nil {
			r.t.Fatal(err)
		}
	}
	return true
}

func (r *modelRun) opSetReader() bool {
	key, v := r.randKey(), r.newValue()
	opts, ttl, how := r.setOptions()
	var src io.Reader
	switch r.rng.IntN(3) {
	case 0:
		src = bytes.NewReader(v)
	case 1:
		src, how = iotest.HalfReader(bytes.NewReader(v)), how+", half reads"
	default:
		src, how = iotest.DataErrReader(bytes.NewReader(v)), how+", EOF with the data"
	}
	r.note("SetReader(%s, %s%s)", key, describe(v), how)
	if err := r.c.SetReader([]byte(key), src, opts...); err != nil {
		r.failf("SetReader(%s): %v", key, err)
	}
	r.put(key, v, ttl)
	return true
}

// setOptions draws the options of a SetFile or SetReader: WithTTL or the
// default TTL. It returns the TTL the value gets and how to describe it.
func (r *modelRun) setOptions() ([]engine.SetOption, time.Duration, string) {
	if r.rng.IntN(2) == 0 {
		return nil, r.opts.DefaultTTL, ""
	}
	ttl := r.randTTL()
	return []engine.SetOption{engine.WithTTL(ttl)}, ttl, fmt.Sprintf(", WithTTL(%v)", ttl)
}

// batchWrite is one write of a batch, for the model.
type batchWrite struct {
	key   string
	value []byte // nil: a delete
	ttl   time.Duration
}

// randBatch fills b with up to eight writes, keys possibly repeated (the
// last wins), and returns them.
func (r *modelRun) randBatch(b *engine.Batch) []batchWrite {
	var writes []batchWrite
	for range r.rng.IntN(9) {
		w := batchWrite{key: r.randKey(), ttl: r.opts.DefaultTTL}
		switch n := r.rng.IntN(5); {
		case n < 2:
			b.Delete([]byte(w.key))
		case n < 4:
			w.value = r.newValue()
			b.Set([]byte(w.key), w.value)
		default:
			w.value, w.ttl = r.newValue(), r.randTTL()
			b.SetWithTTL([]byte(w.key), w.value, w.ttl)
		}
		writes = append(writes, w)
	}
	return writes
}

func (r *modelRun) opBatch() bool {
	var b engine.Batch
	writes := r.randBatch(&b)
	r.note("Write(batch %s)", describeBatch(writes))
	if err := r.c.Write(&b); err != nil {
		r.failf("Write(batch of %d): %v", len(writes), err)
	}
	for _, w := range writes {
		if w.value == nil {
			delete(r.model, w.key)
		} else {
			r.put(w.key, w.value, w.ttl)
		}
	}
	return true
}

// opInvalid makes a write that must fail and change nothing: a negative
// TTL, alone or in a batch among valid writes.
func (r *modelRun) opInvalid() bool {
	key, v := r.randKey(), r.newValue()
	if r.rng.IntN(2) == 0 {
		r.note("SetWithTTL(%s, %s, -1s), invalid", key, describe(v))
		if err := r.c.SetWithTTL([]byte(key), v, -time.Second); !errors.Is(err, engine.ErrInvalidTTL) {
			r.failf("SetWithTTL with a negative TTL: %v, want ErrInvalidTTL", err)
		}
		return true
	}
	var b engine.Batch
	writes := r.randBatch(&b)
	b.SetWithTTL([]byte(key), v, -time.Second)
	writes = append(writes, r.randBatch(&b)...)
	r.note("Write(batch %s and SetWithTTL(%s, -1s)), invalid", describeBatch(writes), key)
	if err := r.c.Write(&b); !errors.Is(err, engine.ErrInvalidTTL) {
		r.failf("Write of a batch with a negative TTL: %v, want ErrInvalidTTL", err)
	}
	return true
}

func (r *modelRun) opGet() bool {
	key := r.randKey()
	r.note("Get(%s)", key)
	r.checkKey(key)
	return false
}

func (r *modelRun) opOpen() bool {
	key := r.randKey()
	r.note("Open(%s)", key)
	r.checkHandle(key)
	return false
}

func (r *modelRun) opScan() bool {
	// A key cut anywhere: "", "k", "k-", "k-1" (itself a key) ...; or a
	// prefix no key has.
	prefix := "x"
	if r.rng.IntN(10) > 0 {
		key := r.randKey()
		prefix = key[:r.rng.IntN(len(key)+1)]
	}
	r.note("Scan(%q)", prefix)
	r.checkScan(prefix)
	return false
}

func (r *modelRun) opAdvance() bool {
	var d time.Duration
	switch n := r.rng.IntN(10); {
	case n < 5:
		d = time.Duration(r.rng.Int64N(int64(2 * time.Second)))
	case n < 9:
		d = time.Duration(r.rng.Int64N(int64(30 * time.Second)))
	default:
		d = time.Duration(r.rng.Int64N(int64(3 * time.Minute)))
	}
	r.note("advance clock %v", d)
	r.clock.Advance(d)
	return true
}

// opAdvanceToExpiry moves the clock to a value's expiry, or to just
// before it: the value must be gone at its expiry and there 1ns before.
func (r *modelRun) opAdvanceToExpiry() bool {
	now := r.clock.Now().UnixNano()
	var expiring []string
	for _, k := range r.keys {
		if mv, ok := r.model[k]; ok && mv.expiry > now {
			expiring = append(expiring, k)
		}
	}
	if len(expiring) == 0 {
		return r.opAdvance()
	}
	key := expiring[r.rng.IntN(len(expiring))]
	to, where := r.model[key].expiry, "at"
	if r.rng.IntN(2) == 0 {
		to, where = to-1, "1ns before"
	}
	r.note("advance clock %v, to %s %s's expiry", time.Duration(to-now), where, key)
	r.clock.Advance(time.Duration(to - now))
	return true
}

func (r *modelRun) opSync() bool {
	r.note("Sync")
	if err := r.c.Sync(); err != nil {
		r.failf("Sync: %v", err)
	}
	return false
}

func (r *modelRun) opCompact() bool {
	r.note("Compact")
	r.compact()
	return true
}

// opReopen reopens the directory with the same options; one time in three
// without hint files, so that Open rebuilds the index by scanning segments.
func (r *modelRun) opReopen() bool {
	if r.rng.IntN(3) > 0 {
		r.note("Close, Open")
		r.reopen(r.opts)
		return true
	}
	r.note("Close, remove hint files, Open")
	r.close()
	removeHints(r.t, r.dir)
	r.open(r.opts)
	return true
}

// opReopenOther reopens the directory with one option changed from the
// configuration's: any of these may differ between opens. A read-only open
// is only looked at, then the configuration's options come back.
func (r *modelRun) opReopenOther() bool {
	opts := r.cfg.opts
	var what string
	change := r.rng.IntN(8)
	if change == 4 && r.cfg.shared {
		change = 6 // two caches cannot both have the directory exclusively
	}
	switch change {
	case 0:
		opts.SegmentSize = []int64{4 << 10, 64 << 10, 1 << 20}[r.rng.IntN(3)]
		what = fmt.Sprintf("SegmentSize %d", opts.SegmentSize)
	case 1:
		opts.InlineLimit = []int{-1, 256, 1 << 30}[r.rng.IntN(3)]
		what = fmt.Sprintf("InlineLimit %d", opts.InlineLimit)
	case 2:
		opts.Sync = []engine.SyncPolicy{engine.SyncInterval, engine.SyncAlways, engine.SyncNever}[r.rng.IntN(3)]
		what = fmt.Sprintf("Sync %v", opts.Sync)
	case 3:
		opts.Compression = engine.CompressNone
		if r.cfg.opts.Compression == engine.CompressNone {
			opts.Compression = engine.CompressS2
		}
		what = fmt.Sprintf("Compression %d", opts.Compression)
	case 4:
		opts.Exclusive = !opts.Exclusive
		what = fmt.Sprintf("Exclusive %v", opts.Exclusive)
	case 5:
		opts.ManualCompaction = !opts.ManualCompaction
		what = fmt.Sprintf("ManualCompaction %v", opts.ManualCompaction)
	case 6:
		opts.DefaultTTL = []time.Duration{0, 20 * time.Second}[r.rng.IntN(2)]
		what = fmt.Sprintf("DefaultTTL %v", opts.DefaultTTL)
	default:
		r.note("Close, Open read-only, check, Close, Open")
		opts.ReadOnly, opts.Exclusive = true, false
		r.reopen(opts)
		r.checkAll()
		if err := r.c.Set([]byte(r.randKey()), nil); !errors.Is(err, engine.ErrReadOnly) {
			r.failf("Set on a read-only cache: %v, want ErrReadOnly", err)
		}
		r.reopen(r.cfg.opts)
		return true
	}
	r.note("Close, Open with %s", what)
	r.reopen(opts)
	return true
}

func (r *modelRun) open(opts engine.Options) {
	opts.Clock = r.clock.Now
	r.opts = opts
	n := 1
	if r.cfg.shared {
		n = 2
	}
	for range n {
		c, err := engine.Open(r.dir, opts)
		if err != nil {
			r.failf("Open: %v", err)
		}
		r.caches = append(r.caches, c)
	}
	r.use(0)
}

func (r *modelRun) close() {
	for i, c := range r.caches {
		if err := c.Close(); err != nil {
			r.failf("Close of cache %d: %v", i, err)
		}
		// Stats still answer once closed: a background eviction that
		// ended during Close counts.
		st := c.Stats()
		r.evictedClosed += st.Evicted
		if st.Corruptions != 0 {
			r.failf("cache %d found %d corruptions", i, st.Corruptions)
		}
	}
	r.caches, r.c = nil, nil
}

// use makes caches[i] the one operations and checks go to.
func (r *modelRun) use(i int) { r.cur, r.c = i, r.caches[i] }

func (r *modelRun) reopen(opts engine.Options) {
	r.close()
	r.open(opts)
}

func (r *modelRun) compact() {
	if err := r.c.Compact(); err != nil {
		r.failf("Compact: %v", err)
	}
}

// evictions is how many evictions Stats reported in this sequence.
func (r *modelRun) evictions() uint64 {
	n := r.evictedClosed
	for _, c := range r.caches {
		n += c.Stats().Evicted
	}
	return n
}

func (r *modelRun) randKey() string { return r.keys[r.rng.IntN(len(r.keys))] }

// randTTL returns 0 (never expire) one time in five, else up to 90s.
func (r *modelRun) randTTL() time.Duration {
	if r.rng.IntN(5) == 0 {
		return 0
	}
	return time.Second + time.Duration(r.rng.Int64N(int64(90*time.Second)))
}

// newValue makes a value unlike any other of the sequence (but for the
// shortest): empty, tiny, around the inline limit or well above it;
// compressible or not.
func (r *modelRun) newValue() []byte {
	ref := r.inlineRef
	var size int
	switch n := r.rng.IntN(100); {
	case n < 10:
		size = 0
	case n < 40:
		size = 1 + r.rng.IntN(32)
	case n < 65:
		size = max(0, ref-8+r.rng.IntN(17))
	case n < 85:
		size = ref + 1 + r.rng.IntN(4*ref)
	default:
		size = 33 + r.rng.IntN(ref)
	}
	r.made++
	v := fmt.Appendf(make([]byte, 0, size+24), "v%d;", r.made)
	if r.rng.IntN(2) == 0 {
		for len(v) < size {
			v = append(v, 'a'+byte(len(v)%26))
		}
	} else {
		for len(v) < size {
			v = fmt.Appendf(v, "%016x", r.rng.Uint64())
		}
	}
	return v[:size]
}

// put records a write in the model.
func (r *modelRun) put(key string, v []byte, ttl time.Duration) {
	mv := modelValue{value: v, evictions: r.evictionsAtOp}
	if ttl > 0 {
		mv.expiry = r.clock.Now().UnixNano() + int64(ttl)
	}
	r.model[key] = mv
}

// live returns key's value in the model, if it has one that has not
// expired and that the cache in use did not find evicted.
func (r *modelRun) live(key string) (modelValue, bool) {
	mv, ok := r.model[key]
	if !ok || (mv.expiry != 0 && r.clock.Now().UnixNano() >= mv.expiry) || mv.goneIn&(1<<r.cur) != 0 {
		return modelValue{}, false
	}
	return mv, true
}

// liveKeys returns the keys with prefix that have a value, sorted.
func (r *modelRun) liveKeys(prefix string) []string {
	var out []string
	for _, k := range r.keys {
		if _, ok := r.live(k); ok && strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// checkAll compares every key, Len and a full Scan with the model,
// through every cache.
func (r *modelRun) checkAll() {
	inUse := r.cur
	for i := range r.caches {
		r.use(i)
		for _, k := range r.keys {
			r.checkKey(k)
		}
		r.checkScan("")
		want := len(r.liveKeys(""))
		// Under eviction the model may still hold keys the cache lost
		// since the Scan; never fewer.
		if n := r.c.Len(); n != want && !(r.cfg.evicts && n < want) {
			r.failf("Len = %d, want %d", n, want)
		}
	}
	r.use(inUse)
	r.tally.fullChecks++
}

// checkKey compares Has and Get of key with the model.
func (r *modelRun) checkKey(key string) {
	r.tally.gets++
	want, ok := r.live(key)
	has, err := r.c.Has([]byte(key))
	switch {
	case err != nil:
		r.failf("Has(%s): %v", key, err)
	case has && !ok:
		r.failf("Has(%s) = true, want false", key)
	case !has && ok:
		r.excuseAbsent(key, "Has")
		ok = false
	}
	got, err := r.c.Get([]byte(key))
	switch {
	case err != nil && !errors.Is(err, engine.ErrNotFound):
		r.failf("Get(%s): %v", key, err)
	case err == nil && !ok:
		r.failf("Get(%s) = %s, want no value", key, describe(got))
	case err == nil && !bytes.Equal(got, want.value):
		r.failf("Get(%s) = %s, want %s", key, describe(got), describe(want.value))
	case err != nil && ok:
		r.excuseAbsent(key, "Get")
	}
}

// checkHandle compares key's value read through Open with the model.
func (r *modelRun) checkHandle(key string) {
	want, ok := r.live(key)
	h, err := r.c.Open([]byte(key))
	switch {
	case errors.Is(err, engine.ErrNotFound) && ok:
		r.excuseAbsent(key, "Open")
		return
	case errors.Is(err, engine.ErrNotFound):
		return
	case err != nil:
		r.failf("Open(%s): %v", key, err)
	}
	got, err := io.ReadAll(h)
	size := h.Size()
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		r.failf("Open(%s), read: %v", key, err)
	case !ok:
		r.failf("Open(%s) reads %s, want no value", key, describe(got))
	case !bytes.Equal(got, want.value):
		r.failf("Open(%s) reads %s, want %s", key, describe(got), describe(want.value))
	case size != int64(len(got)):
		r.failf("Open(%s): Size %d, read %d bytes", key, size, len(got))
	}
}

// checkScan compares Scan of prefix with the model's sorted keys.
func (r *modelRun) checkScan(prefix string) {
	var got []string
	err := r.c.Scan([]byte(prefix), func(k, v []byte) error {
		key := string(k)
		want, ok := r.live(key)
		switch {
		case !strings.HasPrefix(key, prefix):
			return fmt.Errorf("yielded %s, which lacks the prefix", key)
		case len(got) > 0 && key <= got[len(got)-1]:
			return fmt.Errorf("yielded %s after %s", key, got[len(got)-1])
		case !ok:
			return fmt.Errorf("yielded %s = %s, want no value", key, describe(v))
		case !bytes.Equal(v, want.value):
			return fmt.Errorf("yielded %s = %s, want %s", key, describe(v), describe(want.value))
		}
		got = append(got, key)
		return nil
	})
	if err != nil {
		r.failf("Scan(%q): %v", prefix, err)
	}
	for _, k := range r.liveKeys(prefix) {
		if _, found := slices.BinarySearch(got, k); !found {
			r.excuseAbsent(k, fmt.Sprintf("Scan(%q)", prefix))
		}
	}
}

// excuseAbsent accepts that key has no value although the model has one,
// if compaction evicted something since the value was written; the cache
// in use must then never return the value again. Otherwise the value was
// lost: the test fails.
func (r *modelRun) excuseAbsent(key, how string) {
	mv := r.model[key]
	if mv.goneIn == 0 && (!r.cfg.evicts || r.evictions() <= mv.evictions) {
		r.failf("%s(%s): no value, want %s", how, key, describe(mv.value))
	}
	mv.goneIn |= 1 << r.cur
	r.model[key] = mv
	r.tally.excused++
}

// note adds an operation to the history a failure report shows.
func (r *modelRun) note(format string, args ...any) {
	prefix := fmt.Sprintf("%4d: ", r.op)
	if r.cfg.shared {
		prefix += fmt.Sprintf("cache %d: ", r.cur)
	}
	r.history = append(r.history, prefix+fmt.Sprintf(format, args...))
	if len(r.history) > modelHistory {
		r.history = r.history[1:]
	}
}

// failf stops the test with what it takes to replay the failure.
func (r *modelRun) failf(format string, args ...any) {
	r.t.Helper()
	where := fmt.Sprintf("op %d", r.op)
	if r.op >= *modelOps {
		where = "after the last op"
	}
	if r.cfg.shared {
		where += fmt.Sprintf(", cache %d", r.cur)
	}
	r.t.Fatalf("config %s, sequence %d, %s (seed %d): %s\nlast operations, oldest first:\n%s\n"+
		"replay: go test -run 'TestModel/^%s$' -kennel.seed=%d -kennel.model-seqs=%d -kennel.model-ops=%d ./engine/",
		r.cfg.name, r.seq, where, r.seed, fmt.Sprintf(format, args...), strings.Join(r.history, "\n"),
		r.cfg.name, r.seed, r.seq+1, *modelOps)
}

// describe shows a value's length and start.
func describe(v []byte) string { return fmt.Sprintf("%d bytes %.24q", len(v), v) }

func describeBatch(writes []batchWrite) string {
	parts := make([]string, len(writes))
	for i, w := range writes {
		switch {
		case w.value == nil:
			parts[i] = "Delete(" + w.key + ")"
		default:
			parts[i] = fmt.Sprintf("Set(%s, %s, ttl %v)", w.key, describe(w.value), w.ttl)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestSidecarSweptBeforeEvictionPublished is a bug TestModel found: a
// compaction run that evicted a value kept in a sidecar file deleted the
// file (sweepSidecars, from the run's next step) before it published the
// run's new generation, at the end. Meanwhile another process's index
// still named the file, and its Get returned ErrCorrupt ("sidecar ... is
// missing") instead of the value or ErrNotFound. The files of values a run
// drops are now swept once it has published.
func TestSidecarSweptBeforeEvictionPublished(t *testing.T) {
	dir := t.TempDir()
	// Every value in a sidecar file, four times the budget.
	opts := engine.Options{SegmentSize: 4 << 10, CacheSize: 32 << 10, InlineLimit: 16, ManualCompaction: true, Sync: engine.SyncNever}
	compactor := openCache(t, dir, opts)
	reader := openCache(t, dir, opts)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%03d", i)
		mustSet(t, compactor, keys[i], value(keys[i], 0, 1<<10))
	}
	var readErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			for _, k := range keys {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := reader.Get([]byte(k)); err != nil && !errors.Is(err, engine.ErrNotFound) {
					readErr = err
					return
				}
			}
		}
	})
	if err := compactor.Compact(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("Get in another process while compaction evicted %d values: %v", compactor.Stats().Evicted, readErr)
	}
}
