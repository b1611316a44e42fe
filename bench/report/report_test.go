package report

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/bench/workload"
)

func TestSummarizeTakesMedians(t *testing.T) {
	r := &Report{
		Stores: []Store{{Name: "a"}, {Name: "b"}},
		Runs: []Run{
			{Store: "a", Run: 1, Results: []workload.Result{{Workload: "get-1g", Metrics: map[string]float64{"ops_per_sec": 10}}}},
			{Store: "a", Run: 2, Results: []workload.Result{{Workload: "get-1g", Metrics: map[string]float64{"ops_per_sec": 30}}}},
			{Store: "a", Run: 3, Results: []workload.Result{{Workload: "get-1g", Metrics: map[string]float64{"ops_per_sec": 20}}}},
			{Store: "b", Run: 1, Results: []workload.Result{{Workload: "get-1g", Err: "boom"}}},
			{Store: "b", Run: 2, Results: []workload.Result{{Workload: "get-1g", Metrics: map[string]float64{"ops_per_sec": 4}}}},
		},
	}
	r.Summarize()
	a, _ := r.find("a", "get-1g")
	if a.Runs != 3 || a.Metrics["ops_per_sec"] != 20 {
		t.Errorf("a: %+v", a)
	}
	b, _ := r.find("b", "get-1g")
	if b.Runs != 1 || b.Metrics["ops_per_sec"] != 4 || b.Err != "boom" {
		t.Errorf("b: %+v", b)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of an even count = %v", got)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		metric string
		v      float64
		want   string
	}{
		{"ops_per_sec", 1234567, "1.23M"},
		{"ops_per_sec", 56789, "56.8k"},
		{"ops_per_sec", 4321, "4321"},
		{"p99_us", 0.4567, "0.457"},
		{"space_amp", 1.234, "1.23"},
		{"disk_bytes", 3 << 20, "3.00 MiB"},
	} {
		if got := formatValue(c.metric, c.v); got != c.want {
			t.Errorf("formatValue(%s, %v) = %q, want %q", c.metric, c.v, got, c.want)
		}
	}
}

// TestSVGScalesToLeader checks the normalisation: for a higher-is-better
// metric the leader's bar is full length, for a lower-is-better one the
// smallest value leads, and a store with no value draws no bar.
func TestSVGScalesToLeader(t *testing.T) {
	r := &Report{
		Stores: []Store{{Name: "fast"}, {Name: "slow"}, {Name: "none"}},
		Summary: []Summary{
			{Store: "fast", Workload: "get-1g", Runs: 1, Metrics: map[string]float64{"ops_per_sec": 200}},
			{Store: "slow", Workload: "get-1g", Runs: 1, Metrics: map[string]float64{"ops_per_sec": 100}},
			{Store: "none", Workload: "get-1g", Skipped: true, Note: "n/a"},
			{Store: "fast", Workload: "churn", Runs: 1, Metrics: map[string]float64{"space_amp": 1}},
			{Store: "slow", Workload: "churn", Runs: 1, Metrics: map[string]float64{"space_amp": 4}},
		},
	}
	svg := r.SVG()
	full := float64(svgPanelW - svgLabelW - svgValueW)
	for _, want := range []string{
		widthAttr(full), widthAttr(full / 2), widthAttr(full / 4),
		`font-weight="bold">200<`, `font-weight="bold">1.00<`, ">skip<",
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if n := strings.Count(svg, "<rect "); n != 1+3+4 { // background, legend, bars
		t.Errorf("chart has %d rects, want 8", n)
	}
}

func widthAttr(w float64) string { return fmt.Sprintf(`width="%.1f"`, w) }
