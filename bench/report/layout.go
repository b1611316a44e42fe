package report

import (
	"sort"
	"strings"

	"github.com/kennel-cache/kennel/bench/workload"
)

// section says how a workload is shown: its title, what it measures, the
// metrics of its detail table and the headline numbers that go into the
// summary table and the chart.
type section struct {
	title    string
	about    string
	metrics  []string
	headline []column
}

// column is one headline number: a metric of a workload, with a short label
// for tables and a longer one for the chart.
type column struct {
	workload, metric string
	short, long      string
}

var latencyCols = []string{workload.OpsPerSec, workload.P50us, workload.P99us, workload.P999us}

// sectionFor returns how workload w is shown; workloads the report does not
// know get a plain section with every metric they reported.
func sectionFor(w string, metrics map[string]bool) section {
	one := func(short, long string) []column {
		return []column{{w, workload.OpsPerSec, short, long}}
	}
	switch {
	case w == "load":
		return section{"Load", "Set N records (16-byte keys, small values) from one goroutine into an empty store.",
			append(append([]string{}, latencyCols...), workload.WriteMBps), one("load", "load: Set, 1 goroutine")}
	case strings.HasPrefix(w, "get-"):
		g := strings.TrimSuffix(strings.TrimPrefix(w, "get-"), "g")
		return section{"Get, " + plural(g, "goroutine"), "Get of uniformly random present keys; every value is checked.",
			latencyCols, one("get"+g, "Get present key, "+plural(g, "goroutine"))}
	case w == "absent":
		return section{"Get of absent keys", "Get of keys that were never written, from one goroutine.",
			latencyCols, one("absent", "Get absent key, 1 goroutine")}
	case w == "mixed":
		return section{"Mixed 90/10", "90% Get / 10% Set on Zipf-distributed keys from 2 goroutines.",
			latencyCols, one("mixed", "mixed 90/10 Zipf, 2 goroutines")}
	case w == "getorcreate":
		return section{"GetOrCreate, hit path", "GetOrCreate of present keys (create must not run), from one goroutine.",
			latencyCols, one("goc", "GetOrCreate hit, 1 goroutine")}
	case w == "reopen":
		return section{"Reopen", "Close, then Open + first Get (index rebuild); Go heap held after open (HeapAlloc after GC, minus the baseline before open) per key. Memory outside the Go heap (mmap, C) is not counted.",
			[]string{workload.OpenMs, workload.CloseMs, workload.HeapBytesPerKey},
			[]column{
				{w, workload.OpenMs, "open", "reopen: Open + first Get"},
				{w, workload.HeapBytesPerKey, "heap/key", "Go heap per key after open"},
			}}
	case w == "churn":
		return section{"Churn", "Overwrite every record again (-churn-rounds times, within -churn-max), run the store's own compaction/merge/GC, then disk bytes (allocated, as du counts) / live bytes (N × (key + value)).",
			[]string{workload.OpsPerSec, workload.Rounds, workload.CompactSeconds, workload.DiskBytesBefore, workload.DiskBytesOpen, workload.DiskBytes, workload.LiveBytes, workload.SpaceAmpOpen, workload.SpaceAmp},
			[]column{{w, workload.SpaceAmp, "space", "disk / live after churn + compaction"}}}
	case strings.HasPrefix(w, "large-"):
		size := strings.TrimPrefix(w, "large-")
		return section{"Large values, " + size, "Write then read back values of this size in a fresh store (reads mostly from the page cache).",
			[]string{workload.WriteMBps, workload.ReadMBps},
			[]column{
				{w, workload.WriteMBps, size + " w", size + " values: write"},
				{w, workload.ReadMBps, size + " r", size + " values: read"},
			}}
	case strings.HasPrefix(w, "multiproc-"):
		p := strings.TrimPrefix(w, "multiproc-")
		return section{p + " processes on one directory", "Each process runs 90% Get / 10% Set on Zipf keys from one goroutine; combined throughput.",
			latencyCols, one("mp"+p, p+" processes, mixed 90/10")}
	}
	var ms []string
	for m := range metrics {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	var hl []column
	for _, m := range ms {
		hl = append(hl, column{w, m, w + " " + m, w + " " + workload.Describe(m).Label})
	}
	return section{title: w, metrics: ms, headline: hl}
}

func plural(n, noun string) string {
	if n == "1" {
		return n + " " + noun
	}
	return n + " " + noun + "s"
}

// workloadRank orders workloads in reports the way kbench runs them.
func workloadRank(w string) int {
	prefixes := []string{"load", "get-", "absent", "mixed", "getorcreate", "reopen", "churn", "multiproc-", "large-"}
	for i, p := range prefixes {
		if w == p || strings.HasPrefix(w, p) && strings.HasSuffix(p, "-") {
			return i
		}
	}
	return len(prefixes)
}

// workloads returns the workloads present in the summary, in report order.
func (r *Report) workloads() []string {
	seen := map[string]bool{}
	var ws []string
	for _, s := range r.Summary {
		if !seen[s.Workload] {
			seen[s.Workload] = true
			ws = append(ws, s.Workload)
		}
	}
	sort.SliceStable(ws, func(i, j int) bool {
		ri, rj := workloadRank(ws[i]), workloadRank(ws[j])
		if ri != rj {
			return ri < rj
		}
		return naturalLess(ws[i], ws[j])
	})
	return ws
}

// naturalLess orders "large-1MiB" before "large-64MiB" and "get-2g" before
// "get-10g": by the first number in the name, then by name.
func naturalLess(a, b string) bool {
	na, nb := firstNumber(a), firstNumber(b)
	if na != nb {
		return na < nb
	}
	return a < b
}

func firstNumber(s string) int {
	n, seen := 0, false
	for _, c := range s {
		if c >= '0' && c <= '9' {
			n = n*10 + int(c-'0')
			seen = true
		} else if seen {
			break
		}
	}
	return n
}

// metricsOf returns every metric any store reported for workload w.
func (r *Report) metricsOf(w string) map[string]bool {
	ms := map[string]bool{}
	for _, s := range r.Summary {
		if s.Workload == w {
			for m := range s.Metrics {
				ms[m] = true
			}
		}
	}
	return ms
}

// headline returns the summary columns, in report order.
func (r *Report) headline() []column {
	var cols []column
	for _, w := range r.workloads() {
		cols = append(cols, sectionFor(w, r.metricsOf(w)).headline...)
	}
	return cols
}
