package engine_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/testseed"
)

func init() { childRoles["compact-loop"] = childCompactLoop }

// budgetOptions is a cache with a small budget, so that a test fills it many
// times over: 1 MiB, log segments of 64 KiB (the eviction policy's advice
// for the small queue at this budget), compacted segments of 128 KiB.
func budgetOptions() engine.Options {
	return engine.Options{SegmentSize: 128 << 10, CacheSize: 1 << 20, Sync: engine.SyncNever, Compression: engine.CompressNone}
}

// TestCompactionBudgetHeld overwrites a key space four times the budget
// while a sampler measures the directory: it never goes past the budget by
// more than a segment (the one compaction is copying into), and ends within
// it. Keys that are still there hold their latest value.
func TestCompactionBudgetHeld(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	opts := budgetOptions()
	c := openCache(t, dir, opts)

	var worst int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			worst = max(worst, dirSize(t, dir))
			time.Sleep(200 * time.Microsecond)
		}
	})
	latest := map[string]string{}
	const keys = 4000 // of ~1 KiB: four times the budget
	for n := range 40000 {
		k := fmt.Sprintf("key-%05d", rng.IntN(keys))
		v := value(k, n, 900+rng.IntN(200))
		mustSet(t, c, k, v)
		latest[k] = v
	}
	close(stop)
	wg.Wait()
	limit := opts.CacheSize + opts.SegmentSize
	if worst > limit {
		t.Errorf("directory reached %d bytes; budget %d plus a segment is %d", worst, opts.CacheSize, limit)
	}
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.DiskBytes > opts.CacheSize {
		t.Errorf("after Compact the directory holds %d bytes, over the budget %d", st.DiskBytes, opts.CacheSize)
	}
	if st.Evicted == 0 || st.Rewritten == 0 {
		t.Errorf("stats %+v: the workload should have made compaction evict", st)
	}
	t.Logf("largest directory %d bytes (budget %d); %d keys kept of %d; %+v", worst, opts.CacheSize, st.Keys, len(latest), st)
	checkPresentAreLatest(t, c, latest, nil)
	mustClose(t, c)
	c = openCache(t, dir, opts)
	checkPresentAreLatest(t, c, latest, nil)
}

// checkPresentAreLatest checks the promise a cache keeps under eviction:
// every key in latest is either gone or holds its latest value, and no key in
// deleted comes back.
func checkPresentAreLatest(tb testing.TB, c *engine.Cache, latest map[string]string, deleted map[string]bool) {
	tb.Helper()
	for k, want := range latest {
		got, err := c.Get([]byte(k))
		switch {
		case err == engine.ErrNotFound:
		case err != nil:
			tb.Fatalf("Get(%s): %v", k, err)
		case string(got) != want:
			tb.Fatalf("Get(%s) = %.40q…, an older value than the latest %.40q…", k, got, want)
		}
	}
	for k := range deleted {
		if got, err := c.Get([]byte(k)); err != engine.ErrNotFound {
			tb.Fatalf("deleted key %s came back: %.40q, %v", k, got, err)
		}
	}
}

func dirSize(tb testing.TB, dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Error(err)
		return 0
	}
	var n int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// TestCompactReclaimsDeadAndExpired: after overwrites, deletes and expiry,
// Compact leaves the directory close to its live bytes, every live key
// readable, and no deleted or expired key back, also after reopening.
func TestCompactReclaimsDeadAndExpired(t *testing.T) {
	clock := newTestClock()
	opts := smallOptions()
	opts.Clock = clock.Now
	opts.ManualCompaction = true
	dir := t.TempDir()
	c := openCache(t, dir, opts)
	model, deleted := map[string]string{}, map[string]bool{}
	for round := range 4 {
		for i := range 300 {
			k := fmt.Sprintf("k%03d", i)
			v := value(k, round, 200)
			switch {
			case i%10 == 0 && round == 3:
				mustDelete(t, c, k)
				delete(model, k)
				deleted[k] = true
			case i%10 == 1 && round == 3:
				if err := c.SetWithTTL([]byte(k), []byte(v), time.Minute); err != nil {
					t.Fatal(err)
				}
				delete(model, k)
				deleted[k] = true // expired below
			default:
				mustSet(t, c, k, v)
				model[k] = v
			}
		}
	}
	clock.Advance(time.Hour)
	before := c.Stats()
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	after := c.Stats()
	t.Logf("before: disk %d live %d dead %d; after: disk %d live %d dead %d, rewritten %d, evicted %d",
		before.DiskBytes, before.LiveBytes, before.DeadBytes, after.DiskBytes, after.LiveBytes, after.DeadBytes, after.Rewritten, after.Evicted)
	if after.Evicted != 30 {
		t.Errorf("%d records dropped, want the 30 expired ones", after.Evicted)
	}
	if amp := float64(after.DiskBytes) / float64(after.LiveBytes); amp > 1.3 {
		t.Errorf("after Compact disk/live = %.2f (disk %d, live %d, dead %d)", amp, after.DiskBytes, after.LiveBytes, after.DeadBytes)
	}
	checkModel(t, c, model)
	checkPresentAreLatest(t, c, model, deleted)
	mustClose(t, c)
	c = openCache(t, dir, opts)
	checkModel(t, c, model)
	checkPresentAreLatest(t, c, model, deleted)
	if st := c.Stats(); st.LiveBytes != after.LiveBytes || st.Keys != len(model) {
		t.Errorf("after reopen: %d keys, %d live bytes; before close %d keys, %d live", st.Keys, st.LiveBytes, after.Keys, after.LiveBytes)
	}
	mustClose(t, c)

	// The compacted segments' hints agree with their segments: damaged, each
	// is ignored and its segment scanned, to the same index.
	hints := files(t, dir, ".hint")
	if len(hints) == 0 {
		t.Fatal("no hint files after compaction")
	}
	for _, name := range hints {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x40
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c = openCache(t, dir, opts)
	checkModel(t, c, model)
	checkPresentAreLatest(t, c, model, deleted)
	if st := c.Stats(); st.LiveBytes != after.LiveBytes || st.Corruptions != 0 {
		t.Errorf("with damaged hints: %d live bytes (want %d), %d corruptions", st.LiveBytes, after.LiveBytes, st.Corruptions)
	}
}

// TestCompactionNeverResurrects runs random writes, overwrites, deletes,
// reads, compactions under a tight budget and reopens against a model: a key
// may be evicted, but a key that is there holds its latest value, and a
// deleted key never returns, also across reopen (when the index is rebuilt
// from whatever compaction left on disk).
func TestCompactionNeverResurrects(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	opts := budgetOptions()
	opts.CacheSize = 256 << 10
	opts.SegmentSize = 64 << 10
	opts.ManualCompaction = rng.IntN(2) == 0
	c := openCache(t, dir, opts)
	latest, deleted := map[string]string{}, map[string]bool{}
	var rewritten uint64
	for n := range 20000 {
		k := fmt.Sprintf("k%03d", rng.IntN(400))
		switch r := rng.IntN(100); {
		case r < 55:
			v := value(k, n, 100+rng.IntN(900))
			mustSet(t, c, k, v)
			latest[k] = v
			delete(deleted, k)
		case r < 65:
			mustDelete(t, c, k)
			delete(latest, k)
			deleted[k] = true
		case r < 98:
			got, err := c.Get([]byte(k))
			if err == nil && string(got) != latest[k] {
				t.Fatalf("op %d: Get(%s) = %.30q…, not the latest value %.30q…", n, k, got, latest[k])
			}
			if err == nil && deleted[k] {
				t.Fatalf("op %d: deleted key %s came back", n, k)
			}
		case r < 99:
			if err := c.Compact(); err != nil {
				t.Fatal(err)
			}
		default:
			rewritten += c.Stats().Rewritten
			mustClose(t, c)
			c = openCache(t, dir, opts)
			checkPresentAreLatest(t, c, latest, deleted)
		}
	}
	if rewritten += c.Stats().Rewritten; rewritten == 0 {
		t.Error("no segment rewritten")
	}
	checkPresentAreLatest(t, c, latest, deleted)
}

// TestCompactionKeepsHotKeys: a small set of keys read all the time keeps
// being served while a scan of one-time keys five times the budget passes
// through, and the scan does not stay. The cache is used look-aside, as
// caches are: a miss of a hot key writes it again.
func TestCompactionKeepsHotKeys(t *testing.T) {
	dir := t.TempDir()
	opts := budgetOptions()
	c := openCache(t, dir, opts)
	const hot = 200 // 200 KiB, a fifth of the budget
	hotKey := func(i int) string { return fmt.Sprintf("hot-%03d", i) }
	hotValue := func(i int) string { return value(hotKey(i), 0, 1000) }
	const scan = 5000 // 5 MiB of keys written once and never read
	hits, reads := 0, 0
	for n := range scan {
		mustSet(t, c, fmt.Sprintf("scan-%05d", n), value("scan", n, 1000))
		if n%50 != 0 {
			continue
		}
		for i := range hot {
			got, err := c.Get([]byte(hotKey(i)))
			switch {
			case err == engine.ErrNotFound:
				mustSet(t, c, hotKey(i), hotValue(i))
			case err != nil:
				t.Fatal(err)
			case string(got) != hotValue(i):
				t.Fatalf("%s holds a wrong value", hotKey(i))
			}
			if n >= scan/2 {
				reads++
				if err == nil {
					hits++
				}
			}
		}
	}
	scanLeft := 0
	for n := range scan {
		if ok, _ := c.Has([]byte(fmt.Sprintf("scan-%05d", n))); ok {
			scanLeft++
		}
	}
	st := c.Stats()
	t.Logf("hot keys: %d hits of %d reads in the second half; scan keys kept %d/%d; %+v", hits, reads, scanLeft, scan, st)
	if hits < reads*95/100 {
		t.Errorf("hot keys hit %d of %d times while the scan passed", hits, reads)
	}
	if scanLeft > scan/4 {
		t.Errorf("%d of %d one-time keys are still cached", scanLeft, scan)
	}
}

// TestCompactionRacingWrites: writers overwrite keys while Compact runs in a
// loop; a write racing with the copy of its key is never lost, in the
// running cache or after reopen.
func TestCompactionRacingWrites(t *testing.T) {
	dir := t.TempDir()
	opts := smallOptions()
	opts.ManualCompaction = true
	c := openCache(t, dir, opts)
	const writers, keysPer, rounds = 4, 50, 40
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := c.Compact(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Go(func() {
			for r := range rounds {
				for i := range keysPer {
					k := fmt.Sprintf("w%d-%02d", w, i)
					mustSet(t, c, k, value(k, r, 150))
				}
			}
		})
	}
	writersWG.Wait()
	close(done)
	wg.Wait()
	model := map[string]string{}
	for w := range writers {
		for i := range keysPer {
			k := fmt.Sprintf("w%d-%02d", w, i)
			model[k] = value(k, rounds-1, 150)
		}
	}
	if st := c.Stats(); st.Rewritten == 0 {
		t.Fatalf("compaction rewrote nothing: %+v", st)
	}
	checkModel(t, c, model)
	mustClose(t, c)
	c = openCache(t, dir, opts)
	checkModel(t, c, model)
}

// childCompactLoop writes a known data set (some keys deleted, some
// overwritten), syncs and says so, then rewrites the same values and
// compacts over and over until it is killed. Whenever the kill lands, the
// directory holds exactly the data set.
func childCompactLoop(dir string) int {
	c, err := engine.Open(dir, compactLoopOptions(os.Getenv("KENNEL_COMPACT_EVICT") != ""))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	seed, _ := strconv.ParseUint(os.Getenv("KENNEL_COMPACT_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 3))
	model, deleted := compactLoopModel()
	for round := range 3 {
		for i := range compactLoopKeys {
			k := compactLoopKey(i)
			if err := c.Set([]byte(k), []byte(value(k, round, 300))); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	}
	for k := range deleted {
		if err := c.Delete([]byte(k)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	for k, v := range model {
		if err := c.Set([]byte(k), []byte(v)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := c.Sync(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("synced")
	for {
		for range 50 {
			k := compactLoopKey(rng.IntN(compactLoopKeys))
			var err error
			if deleted[k] {
				err = c.Delete([]byte(k))
			} else {
				err = c.Set([]byte(k), []byte(model[k]))
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		if err := c.Compact(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}

const compactLoopKeys = 400

// compactLoopOptions: compaction only when asked; with evict, a budget of
// half the data set, so that every Compact evicts.
func compactLoopOptions(evict bool) engine.Options {
	opts := smallOptions()
	opts.ManualCompaction = true
	if evict {
		opts.CacheSize = 64 << 10
	}
	return opts
}

func compactLoopKey(i int) string { return fmt.Sprintf("ck-%03d", i) }

func compactLoopModel() (map[string]string, map[string]bool) {
	model, deleted := map[string]string{}, map[string]bool{}
	for i := range compactLoopKeys {
		k := compactLoopKey(i)
		if i%7 == 0 {
			deleted[k] = true
		} else {
			model[k] = value(k, 99, 300)
		}
	}
	return model, deleted
}

// TestCompactionKilled kills a process at random moments while it compacts
// (SIGKILL: no deferred code runs), then reopens: every key holds its value,
// no deleted key is back, and another round of compaction succeeds. Every
// other cycle the budget is half the data set, so the kill lands in
// eviction: keys may then be gone, but those present hold their value.
func TestCompactionKilled(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 4))
	dir := t.TempDir()
	model, deleted := compactLoopModel()
	cycles := 12
	if testing.Short() {
		cycles = 4
	}
	for cycle := range cycles {
		evict := cycle%2 == 1
		env := []string{fmt.Sprintf("KENNEL_COMPACT_SEED=%d", seed+uint64(cycle))}
		if evict {
			env = append(env, "KENNEL_COMPACT_EVICT=1")
		}
		cmd, stdout, stderr := startChild(t, "compact-loop", dir, env...)
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "synced" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cycle %d: child said %q, %v; stderr: %s", cycle, line, err, stderr)
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		c := openCache(t, dir, compactLoopOptions(evict))
		if !evict {
			checkModel(t, c, model)
		}
		checkPresentAreLatest(t, c, model, deleted)
		if err := c.Compact(); err != nil {
			t.Fatalf("cycle %d: Compact after the kill: %v", cycle, err)
		}
		checkPresentAreLatest(t, c, model, deleted)
		if !evict {
			checkModel(t, c, model)
		}
		mustClose(t, c)
	}
}

// TestCompactSealsDeadLog: Compact also reclaims the dead records of the
// log's active segment, sealing it first; a log with nothing dead is left
// as it is.
func TestCompactSealsDeadLog(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, engine.Options{ManualCompaction: true})
	for i := range 50 {
		mustSet(t, c, "k", value("k", i, 200))
	}
	mustSet(t, c, "other", "x")
	before := c.Stats()
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	after := c.Stats()
	if after.DeadBytes != 0 || after.DiskBytes >= before.DiskBytes-40*200 {
		t.Fatalf("Compact of a log with 49 dead records: dead %d -> %d bytes, disk %d -> %d", before.DeadBytes, after.DeadBytes, before.DiskBytes, after.DiskBytes)
	}
	wantValue(t, c, "k", value("k", 49, 200))
	wantValue(t, c, "other", "x")
	segs := lastSegmentID(t, dir)
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	if got := lastSegmentID(t, dir); got != segs {
		t.Fatalf("Compact with nothing to reclaim rolled the log: last segment %d -> %d", segs, got)
	}
	mustClose(t, c)
	c = openCache(t, dir, engine.Options{ManualCompaction: true})
	wantValue(t, c, "k", value("k", 49, 200))
}
