package sim

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
)

// TableConfig describes a comparison: for each skew, one trace replayed
// through LRU, S3-FIFO, kennel at each segment size and, optionally, OPT.
type TableConfig struct {
	Budget       int64     // cache bytes
	ValueSize    int64     // bytes of every value
	Keys         int       // distinct keys; zero means 10 × Budget/ValueSize
	Warmup       int       // requests before measuring
	Requests     int       // requests measured
	Seed         uint64    // trace seed
	Drift        int       // Workload.Drift: popularity moves a key every Drift requests; zero for none
	Skews        []float64 // Zipf exponents, one row each
	SegmentSizes []int64   // kennel segment sizes, one column each
	OPT          bool      // also replay Belady's MIN
	Parallel     int       // replays at once; zero means GOMAXPROCS
}

// DefaultTableConfig is the comparison the hitratio command prints: a 64 MiB
// budget of 4 KiB values, a working set ten times as large, and segments of
// 1, 2 and 4 MiB. 2M warm-up requests are some 50 turnovers of the cache;
// 20M measured requests put the standard error of a hit ratio near 0.01
// points, and all policies replay the same trace, so their differences are
// steadier still (seeds 1 and 2 agree on them within 0.02 points).
func DefaultTableConfig() TableConfig {
	return TableConfig{
		Budget:       64 << 20,
		ValueSize:    4 << 10,
		Warmup:       2_000_000,
		Requests:     20_000_000,
		Seed:         1,
		Skews:        []float64{0.8, 1.0, 1.2},
		SegmentSizes: []int64{1 << 20, 2 << 20, 4 << 20},
		OPT:          true,
	}
}

// Row holds the results for one skew, in column order: LRU, S3-FIFO (a key
// moves from small to main after one read), S3-FIFO m2 (after two, the
// default of the authors' libCacheSim), one kennel per segment size, then OPT
// if asked for.
type Row struct {
	Skew    float64
	Results []Result
}

// RunTable replays every trace through every policy.
func RunTable(cfg TableConfig) ([]Row, error) {
	if cfg.Budget <= 0 || cfg.ValueSize <= 0 {
		return nil, fmt.Errorf("budget %d and value size %d must be positive", cfg.Budget, cfg.ValueSize)
	}
	keys := cfg.Keys
	if keys == 0 {
		keys = int(10 * cfg.Budget / cfg.ValueSize)
	}
	par := cfg.Parallel
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	rows := make([]Row, len(cfg.Skews))
	cols := 3 + len(cfg.SegmentSizes)
	if cfg.OPT {
		cols++
	}
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, par)
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	for i, s := range cfg.Skews {
		t, err := NewTrace(Workload{
			Keys: keys, Skew: s, ValueSize: cfg.ValueSize,
			Warmup: cfg.Warmup, Requests: cfg.Requests, Seed: cfg.Seed, Drift: cfg.Drift,
		})
		if err != nil {
			return nil, err
		}
		rows[i] = Row{Skew: s, Results: make([]Result, cols)}
		res := rows[i].Results
		jobs := []func() (Result, error){
			func() (Result, error) { return LRU(t, cfg.Budget), nil },
			func() (Result, error) { return S3FIFO(t, cfg.Budget, 1), nil },
			func() (Result, error) { return S3FIFO(t, cfg.Budget, 2), nil },
		}
		for _, seg := range cfg.SegmentSizes {
			jobs = append(jobs, func() (Result, error) {
				return Kennel(t, KennelConfig{Budget: cfg.Budget, SegmentSize: seg})
			})
		}
		if cfg.OPT {
			jobs = append(jobs, func() (Result, error) { return OPT(t, cfg.Budget), nil })
		}
		for j, job := range jobs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r, err := job()
				if err != nil {
					fail(err)
				}
				res[j] = r
			}()
		}
	}
	wg.Wait()
	return rows, firstErr
}

// WriteMarkdown prints rows as a Markdown table of hit ratios in percent,
// followed by kennel's write amplification (bytes copied forward per byte
// written) for each segment size.
func WriteMarkdown(w io.Writer, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	var b strings.Builder
	head := []string{"s"}
	var wa []int // columns with a write amplification
	for j, r := range rows[0].Results {
		head = append(head, r.Policy)
		if strings.HasPrefix(r.Policy, "kennel") {
			wa = append(wa, j)
		}
	}
	for _, j := range wa {
		head = append(head, "WA "+strings.TrimPrefix(rows[0].Results[j].Policy, "kennel "))
	}
	line := func(cells []string) {
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	line(head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---:"
	}
	line(sep)
	for _, row := range rows {
		cells := []string{fmt.Sprintf("%.1f", row.Skew)}
		for _, r := range row.Results {
			cells = append(cells, fmt.Sprintf("%.2f", 100*r.HitRatio()))
		}
		for _, j := range wa {
			cells = append(cells, fmt.Sprintf("%.2f", row.Results[j].WriteAmp()))
		}
		line(cells)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
