// Package report turns the results kbench gathered from its child processes
// into medians per store and workload, and writes them as a text table,
// JSON, Markdown and an SVG chart.
package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kennel-cache/kennel/bench/machine"
	"github.com/kennel-cache/kennel/bench/workload"
)

// Store describes one store as the report shows it.
type Store struct {
	Name    string `json:"name"`
	Module  string `json:"module,omitempty"`
	Version string `json:"version,omitempty"`
	Config  string `json:"config"`
	// Missing is set when the store could not be run at all.
	Missing string `json:"missing,omitempty"`
}

// Run is what one child process reported for one store.
type Run struct {
	Store   string            `json:"store"`
	Run     int               `json:"run"`
	Results []workload.Result `json:"results"`
	// Err is set when the child failed (crashed, timed out, exited non-zero).
	Err string `json:"error,omitempty"`
}

// Summary is the median over runs of one workload on one store.
type Summary struct {
	Store    string             `json:"store"`
	Workload string             `json:"workload"`
	Metrics  map[string]float64 `json:"metrics,omitempty"`
	// Runs is how many runs the medians are taken over.
	Runs    int    `json:"runs"`
	Skipped bool   `json:"skipped,omitempty"`
	Note    string `json:"note,omitempty"`
	Err     string `json:"error,omitempty"`
}

// Report is everything one kbench invocation found.
type Report struct {
	Started  time.Time       `json:"started"`
	Command  string          `json:"command"`
	Platform string          `json:"platform"`
	Params   Params          `json:"params"`
	Machine  *machine.Limits `json:"machine,omitempty"`
	Stores   []Store         `json:"stores"`
	Runs     []Run           `json:"runs"`
	Summary  []Summary       `json:"summary"`
}

// Params are the knobs the run used.
type Params struct {
	N          int      `json:"n"`
	Runs       int      `json:"runs"`
	Ops        int      `json:"ops"`
	ValueSize  int      `json:"value_size"`
	LargeMiB   int      `json:"large_mib"`
	ZipfS      float64  `json:"zipf_s"`
	ChurnRound int      `json:"churn_rounds"`
	ChurnMax   string   `json:"churn_max"`
	Workloads  []string `json:"workloads"`
}

// Summarize fills r.Summary with the median of every metric over the runs
// of each store and workload. Runs that failed a workload do not count
// towards its medians; their errors are kept.
func (r *Report) Summarize() {
	type key struct{ store, workload string }
	groups := map[key][]workload.Result{}
	var order []key
	for _, run := range r.Runs {
		for _, res := range run.Results {
			k := key{run.Store, res.Workload}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], res)
		}
	}
	r.Summary = r.Summary[:0]
	for _, k := range order {
		s := Summary{Store: k.store, Workload: k.workload, Metrics: map[string]float64{}}
		values := map[string][]float64{}
		var notes, errs []string
		for _, res := range groups[k] {
			if res.Note != "" {
				notes = appendNew(notes, res.Note)
			}
			if res.Err != "" {
				errs = appendNew(errs, res.Err)
				continue
			}
			if res.Skipped {
				s.Skipped = true
				continue
			}
			s.Runs++
			for m, v := range res.Metrics {
				values[m] = append(values[m], v)
			}
		}
		for m, vs := range values {
			s.Metrics[m] = median(vs)
		}
		s.Note = strings.Join(notes, "; ")
		s.Err = strings.Join(errs, "; ")
		r.Summary = append(r.Summary, s)
	}
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func median(vs []float64) float64 {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// find returns the summary of workload w on store s.
func (r *Report) find(s, w string) (Summary, bool) {
	for _, x := range r.Summary {
		if x.Store == s && x.Workload == w {
			return x, true
		}
	}
	return Summary{}, false
}

// WriteFiles writes results.json, RESULTS.md and chart.svg into dir.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{
		{"results.json", append(b, '\n')},
		{"RESULTS.md", []byte(r.Markdown("chart.svg"))},
		{"chart.svg", []byte(r.SVG())},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
