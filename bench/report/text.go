package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kennel-cache/kennel/bench/workload"
)

// WriteTable writes the summary as an aligned text table, one row per
// store and one column per headline number, followed by the errors and
// skips that left cells empty.
func (r *Report) WriteTable(w io.Writer) error {
	cols := r.headline()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "store\t")
	for _, c := range cols {
		fmt.Fprintf(tw, "%s\t", c.short)
	}
	fmt.Fprintln(tw)
	fmt.Fprint(tw, "\t")
	for _, c := range cols {
		fmt.Fprintf(tw, "%s\t", unitOf(c.metric))
	}
	fmt.Fprintln(tw)
	for _, st := range r.Stores {
		fmt.Fprintf(tw, "%s\t", st.Name)
		for _, c := range cols {
			s, ok := r.find(st.Name, c.workload)
			fmt.Fprintf(tw, "%s\t", cell(s, ok, c.metric))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range r.problems() {
		fmt.Fprintln(w, line)
	}
	return nil
}

func unitOf(m string) string {
	d := workload.Describe(m)
	if d.HigherIsBetter {
		return d.Unit + " ↑"
	}
	return d.Unit + " ↓"
}

// problems lists, one line each, the stores that could not run and the
// workloads that failed or were skipped.
func (r *Report) problems() []string {
	var lines []string
	for _, st := range r.Stores {
		if st.Missing != "" {
			lines = append(lines, fmt.Sprintf("%s: %s", st.Name, st.Missing))
		}
	}
	for _, run := range r.Runs {
		if run.Err != "" {
			lines = appendNew(lines, fmt.Sprintf("%s run %d: %s", run.Store, run.Run, oneLine(run.Err)))
		}
	}
	// Skips are grouped: most are "store has no X", shared by many stores.
	type skip struct{ workload, why string }
	var order []skip
	skipped := map[skip][]string{}
	for _, s := range r.Summary {
		switch {
		case s.Err != "":
			lines = append(lines, fmt.Sprintf("%s %s: error: %s", s.Store, s.Workload, oneLine(s.Err)))
		case s.Skipped && s.Runs == 0:
			k := skip{s.Workload, s.Note}
			if _, ok := skipped[k]; !ok {
				order = append(order, k)
			}
			skipped[k] = append(skipped[k], s.Store)
		}
	}
	for _, k := range order {
		lines = append(lines, fmt.Sprintf("%s skipped for %s: %s", k.workload, strings.Join(skipped[k], ", "), k.why))
	}
	return lines
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}
