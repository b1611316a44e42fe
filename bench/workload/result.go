package workload

import (
	"math"
	"sort"
	"time"
)

// Result is what one run of one workload measured.
type Result struct {
	// Workload is the workload's name, e.g. "get-2g".
	Workload string `json:"workload"`
	// Metrics holds the measurements by metric name (see Metrics).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Note says why the workload was skipped or anything a reader of the
	// numbers should know.
	Note string `json:"note,omitempty"`
	// Skipped is set when the store lacks what the workload needs.
	Skipped bool `json:"skipped,omitempty"`
	// Err is set when the workload failed; Metrics then holds what was
	// measured before the failure, if anything.
	Err string `json:"error,omitempty"`
}

func newResult(name string) Result {
	return Result{Workload: name, Metrics: map[string]float64{}}
}

func skipped(name, why string) Result {
	return Result{Workload: name, Skipped: true, Note: why}
}

func (r *Result) fail(err error) Result {
	r.Err = err.Error()
	return *r
}

// Metric names. Latencies are in microseconds, rates per second, sizes in
// bytes; MB is 10^6 bytes, as dd reports it.
const (
	OpsPerSec       = "ops_per_sec"
	P50us           = "p50_us"
	P99us           = "p99_us"
	P999us          = "p999_us"
	Seconds         = "seconds"
	OpenMs          = "open_ms"
	HeapBytesPerKey = "heap_bytes_per_key"
	WriteMBps       = "write_mb_s"
	ReadMBps        = "read_mb_s"
	SpaceAmp        = "space_amp"
	SpaceAmpOpen    = "space_amp_open"
	DiskBytes       = "disk_bytes"
	DiskBytesOpen   = "disk_bytes_open"
	DiskBytesBefore = "disk_bytes_before_compact"
	LiveBytes       = "live_bytes"
	CompactSeconds  = "compact_s"
	CloseMs         = "close_ms"
	Rounds          = "rounds"
)

// Metric describes one metric for reports.
type Metric struct {
	Name  string
	Unit  string
	Label string
	// HigherIsBetter tells which way a chart should point.
	HigherIsBetter bool
}

// Describe returns what is known about the metric named name.
func Describe(name string) Metric {
	switch name {
	case OpsPerSec:
		return Metric{name, "ops/s", "throughput", true}
	case P50us:
		return Metric{name, "µs", "p50 latency", false}
	case P99us:
		return Metric{name, "µs", "p99 latency", false}
	case P999us:
		return Metric{name, "µs", "p99.9 latency", false}
	case Seconds:
		return Metric{name, "s", "elapsed", false}
	case OpenMs:
		return Metric{name, "ms", "open + first get", false}
	case HeapBytesPerKey:
		return Metric{name, "B/key", "heap after open", false}
	case WriteMBps:
		return Metric{name, "MB/s", "write", true}
	case ReadMBps:
		return Metric{name, "MB/s", "read", true}
	case SpaceAmp:
		return Metric{name, "×", "disk / live, closed", false}
	case SpaceAmpOpen:
		return Metric{name, "×", "disk / live, open", false}
	case DiskBytes:
		return Metric{name, "B", "disk, closed", false}
	case DiskBytesOpen:
		return Metric{name, "B", "disk, open", false}
	case DiskBytesBefore:
		return Metric{name, "B", "disk before compaction", false}
	case LiveBytes:
		return Metric{name, "B", "live data", false}
	case CompactSeconds:
		return Metric{name, "s", "compaction time", false}
	case Rounds:
		return Metric{name, "", "overwrite rounds done", true}
	case CloseMs:
		return Metric{name, "ms", "close", false}
	}
	return Metric{Name: name, Label: name}
}

// sampleEvery is how many operations pass between two timed ones.
const sampleEvery = 16

// latencies collects sampled operation times, in nanoseconds.
type latencies []int64

func (l *latencies) add(d time.Duration) { *l = append(*l, int64(d)) }

// fill records the 50th, 99th and 99.9th percentiles into r, in µs.
func (l latencies) fill(r *Result) {
	if len(l) == 0 {
		return
	}
	s := append([]int64(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	pct := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i]) / 1e3
	}
	r.Metrics[P50us] = pct(0.50)
	r.Metrics[P99us] = pct(0.99)
	r.Metrics[P999us] = pct(0.999)
}

// rate records ops/s and elapsed seconds into r.
func rate(r *Result, ops int, d time.Duration) {
	r.Metrics[Seconds] = d.Seconds()
	if d > 0 {
		r.Metrics[OpsPerSec] = float64(ops) / d.Seconds()
	}
}
