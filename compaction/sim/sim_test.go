package sim

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/compaction"
)

func newTrace(tb testing.TB, w Workload) *Trace {
	tb.Helper()
	t, err := NewTrace(w)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// The alias tables reproduce the Zipf probabilities: each rank's count over
// a million draws is within five standard deviations of its expectation.
func TestZipfDistribution(t *testing.T) {
	const n, draws = 50, 1_000_000
	for _, s := range []float64{0, 0.8, 1.0, 1.2} {
		z, err := NewZipf(n, s)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		count := make([]int, n)
		for range draws {
			count[z.Draw(r)]++
		}
		for k := range n {
			p := zipfProb(n, s, k)
			mean, sd := draws*p, math.Sqrt(draws*p*(1-p))
			if math.Abs(float64(count[k])-mean) > 5*sd {
				t.Errorf("s=%v rank %d: %d draws, want %.0f ± %.0f", s, k, count[k], mean, 5*sd)
			}
		}
	}
}

func TestZipfRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		n int
		s float64
	}{{0, 1}, {10, -1}, {10, math.NaN()}, {10, math.Inf(1)}} {
		if _, err := NewZipf(c.n, c.s); err == nil {
			t.Errorf("NewZipf(%d, %v) accepted", c.n, c.s)
		}
	}
}

func TestTraceDeterministic(t *testing.T) {
	w := Workload{Keys: 1000, Skew: 1, ValueSize: 1, Warmup: 10, Requests: 10_000, Seed: 7}
	a, b := newTrace(t, w), newTrace(t, w)
	if !slices.Equal(a.Req, b.Req) {
		t.Error("same workload, different traces")
	}
	w.Seed = 8
	if c := newTrace(t, w); slices.Equal(a.Req, c.Req) {
		t.Error("different seeds, same trace")
	}
	w.Drift = 100
	d := newTrace(t, w)
	if max := slices.Max(d.Req); max < 100 {
		t.Errorf("drifting trace never left the first keys (max %d)", max)
	}
}

// bruteLRU decides each request by its stack distance: a hit if the key was
// requested before and fewer than slots distinct keys came in between.
func bruteLRU(req []uint32, slots int) (hits []bool) {
	hits = make([]bool, len(req))
	for i, k := range req {
		seen := map[uint32]bool{}
		for j := i - 1; j >= 0; j-- {
			if req[j] == k {
				hits[i] = len(seen) < slots
				break
			}
			seen[req[j]] = true
		}
	}
	return hits
}

func TestLRUMatchesStackDistance(t *testing.T) {
	for _, c := range []struct {
		keys, slots int
		skew        float64
	}{{50, 1, 1}, {50, 7, 0.8}, {200, 17, 1.0}, {200, 64, 1.2}, {30, 30, 1}} {
		tr := newTrace(t, Workload{Keys: c.keys, Skew: c.skew, ValueSize: 3, Warmup: 500, Requests: 4000, Seed: 3})
		want := int64(0)
		for i, hit := range bruteLRU(tr.Req, c.slots) {
			if hit && i >= tr.Warmup {
				want++
			}
		}
		// A budget a little over slots values fits slots values.
		got := LRU(tr, int64(3*c.slots+2))
		if got.Hits != want || got.Requests != int64(tr.Requests) {
			t.Errorf("%+v: LRU hits %d of %d, stack distance says %d", c, got.Hits, got.Requests, want)
		}
	}
}

// bruteOPT is Belady's MIN by rescanning the future at every eviction.
func bruteOPT(req []uint32, slots, warmup int) (hits int64) {
	cache := map[uint32]bool{}
	nextUse := func(k uint32, from int) int {
		for j := from; j < len(req); j++ {
			if req[j] == k {
				return j
			}
		}
		return math.MaxInt
	}
	for i, k := range req {
		if cache[k] {
			if i >= warmup {
				hits++
			}
			continue
		}
		if len(cache) < slots {
			cache[k] = true
			continue
		}
		victim, far := k, nextUse(k, i+1)
		for c := range cache {
			if n := nextUse(c, i+1); n > far || (n == far && c < victim) {
				victim, far = c, n
			}
		}
		if victim != k {
			delete(cache, victim)
			cache[k] = true
		}
	}
	return hits
}

func TestOPTMatchesBruteForce(t *testing.T) {
	for _, slots := range []int{1, 5, 20} {
		tr := newTrace(t, Workload{Keys: 60, Skew: 0.9, ValueSize: 1, Warmup: 100, Requests: 1500, Seed: 5})
		if got, want := OPT(tr, int64(slots)).Hits, bruteOPT(tr.Req, slots, tr.Warmup); got != want {
			t.Errorf("%d slots: OPT hits %d, brute force %d", slots, got, want)
		}
	}
}

// A small cache that replays fast: 4 MiB of 4 KiB values, ten times as many
// keys, 64 KiB segments (the same 1:64 ratio of segment to budget as 1 MiB
// segments at 64 MiB).
func smallWorkload(skew float64) Workload {
	return Workload{Keys: 10240, Skew: skew, ValueSize: 4 << 10, Warmup: 200_000, Requests: 1_000_000, Seed: 1}
}

const (
	smallBudget  = 4 << 20
	smallSegment = 64 << 10
)

// The aim of the policy: never below LRU, and at least S3-FIFO's hit ratio.
func TestKennelBeatsLRU(t *testing.T) {
	for _, skew := range []float64{0.8, 1.0, 1.2} {
		tr := newTrace(t, smallWorkload(skew))
		lru := LRU(tr, smallBudget)
		s3 := S3FIFO(tr, smallBudget, 1)
		opt := OPT(tr, smallBudget)
		k, err := Kennel(tr, KennelConfig{Budget: smallBudget, SegmentSize: smallSegment})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("s=%v: %v; %v; %v; %v", skew, lru, s3, k, opt)
		if k.HitRatio() < lru.HitRatio() {
			t.Errorf("s=%v: kennel %.2f %% below LRU %.2f %%", skew, 100*k.HitRatio(), 100*lru.HitRatio())
		}
		if k.HitRatio() < s3.HitRatio() {
			t.Errorf("s=%v: kennel %.2f %% below S3-FIFO %.2f %%", skew, 100*k.HitRatio(), 100*s3.HitRatio())
		}
		if opt.HitRatio() < k.HitRatio() || opt.HitRatio() < s3.HitRatio() {
			t.Errorf("s=%v: OPT %.2f %% is not the best", skew, 100*opt.HitRatio())
		}
		if wa := k.WriteAmp(); wa <= 0 || wa > 2 {
			t.Errorf("s=%v: write amplification %.2f", skew, wa)
		}
	}
}

// One-hit wonders do not push the hot keys out of S3-FIFO or kennel, while
// they do out of LRU: a hot set of 400 values, read in turn, with two new
// keys between each two reads, so that 1199 other keys come between two
// reads of a hot key and LRU, which holds 1024, always misses.
func TestScanResistance(t *testing.T) {
	const (
		hot      = 400
		scan     = 2
		requests = 600_000
	)
	req := make([]uint32, 0, requests)
	next := uint32(hot)
	for i := 0; len(req) < requests; i++ {
		req = append(req, uint32(i%hot))
		for range scan {
			req = append(req, next)
			next++
		}
	}
	tr := &Trace{Workload: Workload{Keys: int(next), ValueSize: 4 << 10, Warmup: 100_000, Requests: len(req) - 100_000}, Req: req}
	hotShare := 1.0 / (1 + scan)
	lru := LRU(tr, smallBudget)
	s3 := S3FIFO(tr, smallBudget, 1)
	k, err := Kennel(tr, KennelConfig{Budget: smallBudget, SegmentSize: smallSegment})
	if err != nil {
		t.Fatal(err)
	}
	if lru.HitRatio() > 0.01 {
		t.Errorf("LRU kept the hot keys: %v", lru)
	}
	for _, r := range []Result{s3, k} {
		if r.HitRatio() < 0.99*hotShare {
			t.Errorf("%v, want all %.0f %% hot requests to hit", r, 100*hotShare)
		}
	}
}

// kennel's model of the engine stays inside the budget, and its byte counts
// agree with the policy's.
func TestKennelKeepsBudget(t *testing.T) {
	tr := newTrace(t, Workload{Keys: 5000, Skew: 1, ValueSize: 1000, Requests: 200_000, Seed: 2})
	const budget = 200_000
	c, err := newKennel(tr.Keys, KennelConfig{Budget: budget, SegmentSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range tr.Req {
		c.access(key, tr.ValueSize)
		if c.total > budget {
			t.Fatalf("request %d: %d bytes over budget %d", i, c.total, budget)
		}
	}
	st := c.pol.Stats()
	if got := st.Bytes[compaction.Small] + st.Bytes[compaction.Main]; got != c.total {
		t.Errorf("policy counts %d bytes, engine %d", got, c.total)
	}
	var cached int
	for _, s := range c.loc {
		if s != nil {
			cached++
		}
	}
	if got := st.Records[compaction.Small] + st.Records[compaction.Main]; got != cached {
		t.Errorf("policy counts %d live records, index %d", got, cached)
	}
	if c.total < budget-2*10_000 {
		t.Errorf("only %d of %d bytes used", c.total, budget)
	}
	if st.GhostHits == 0 {
		t.Error("no ghost hits: writes admitted to Main were not modelled")
	}
}

func TestKennelConfig(t *testing.T) {
	for _, cfg := range []KennelConfig{
		{Budget: 1 << 20},
		{Budget: 0, SegmentSize: 1 << 10},
		{Budget: 1 << 20, SegmentSize: 1 << 10, Policy: compaction.Config{SmallFraction: 2}},
	} {
		if _, err := newKennel(10, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestTable(t *testing.T) {
	cfg := TableConfig{
		Budget: 1 << 20, ValueSize: 4 << 10, Warmup: 10_000, Requests: 50_000, Seed: 1,
		Skews: []float64{0.8, 1.2}, SegmentSizes: []int64{16 << 10, 64 << 10}, OPT: true,
	}
	rows, err := RunTable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteMarkdown(&out, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	wantHead := "| s | LRU | S3-FIFO | S3-FIFO m2 | kennel 16 KiB | kennel 64 KiB | OPT | WA 16 KiB | WA 64 KiB |"
	if len(lines) != 4 || lines[0] != wantHead || !strings.HasPrefix(lines[2], "| 0.8 | ") {
		t.Fatalf("table:\n%s", out.String())
	}
	again, err := RunTable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out2 bytes.Buffer
	WriteMarkdown(&out2, again)
	if out.String() != out2.String() {
		t.Errorf("same config, different tables:\n%s\n%s", out.String(), out2.String())
	}
	if _, err := RunTable(TableConfig{Budget: 0, ValueSize: 1}); err == nil {
		t.Error("zero budget accepted")
	}
}

func TestSizeString(t *testing.T) {
	for n, want := range map[int64]string{1 << 20: "1 MiB", 3 << 30: "3 GiB", 1536: "1536 B", 64 << 10: "64 KiB", 0: "0 B"} {
		if got := sizeString(n); got != want {
			t.Errorf("sizeString(%d) = %q, want %q", n, got, want)
		}
	}
}

func BenchmarkKennel(b *testing.B) {
	tr := newTrace(b, Workload{Keys: 163840, Skew: 1, ValueSize: 4 << 10, Requests: b.N + 1, Seed: 1})
	b.ResetTimer()
	if _, err := Kennel(tr, KennelConfig{Budget: 64 << 20, SegmentSize: 1 << 20}); err != nil {
		b.Fatal(err)
	}
}

// zipfProb returns the probability of rank k among n, for tests.
func zipfProb(n int, s float64, k int) float64 {
	var sum float64
	for i := 1; i <= n; i++ {
		sum += math.Pow(float64(i), -s)
	}
	return math.Pow(float64(k+1), -s) / sum
}
