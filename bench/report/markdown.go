package report

import (
	"fmt"
	"strings"

	"github.com/kennel-cache/kennel/bench/workload"
)

// Markdown returns the report as a Markdown page that shows chart (a path
// relative to the page) at the top.
func (r *Report) Markdown(chart string) string {
	var b strings.Builder
	p := r.Params
	fmt.Fprintf(&b, "# kennel benchmarks\n\n")
	fmt.Fprintf(&b, "Made by `%s` on %s, %s. ", r.Command, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Platform)
	fmt.Fprintf(&b, "N = %d records of %d-byte keys and %d-byte values; %d operations per read workload; ",
		p.N, workload.KeySize, p.ValueSize, p.Ops)
	fmt.Fprintf(&b, "every number is the median of %d run(s), each store in a fresh process. ", p.Runs)
	fmt.Fprintf(&b, "Latencies are sampled (every 16th operation is timed). ")
	fmt.Fprintf(&b, "MB = 10⁶ bytes.\n\n")

	if m := r.Machine; m != nil {
		fmt.Fprintf(&b, "## Machine limits\n\n| measure | value |\n| --- | --- |\n")
		fmt.Fprintf(&b, "| CPUs | %d |\n", m.CPUs)
		if m.DiskWriteMBps > 0 {
			fmt.Fprintf(&b, "| sequential write, dd bs=1M conv=fdatasync | %s MB/s |\n", sig(m.DiskWriteMBps))
		}
		if m.DiskReadMBps > 0 {
			fmt.Fprintf(&b, "| sequential read, dd bs=1M, from %s | %s MB/s |\n", m.DiskReadFrom, sig(m.DiskReadMBps))
		}
		if m.FsyncRounds > 0 {
			fmt.Fprintf(&b, "| 4 KiB write + fdatasync, median (p99) of %d | %s µs (%s µs) |\n", m.FsyncRounds, sig(m.FsyncP50us), sig(m.FsyncP99us))
		}
		if m.MemCopyGBps > 0 {
			fmt.Fprintf(&b, "| memory copy, Go copy() between two %d MiB buffers | %s GB/s |\n", m.MemCopyMiB, sig(m.MemCopyGBps))
		}
		for _, n := range m.Notes {
			fmt.Fprintf(&b, "\nNote: %s\n", n)
		}
		b.WriteString("\n")
	}

	cols := r.headline()
	fmt.Fprintf(&b, "## Summary\n\n![results, normalised per workload](%s)\n\n", chart)
	b.WriteString("Arrows: ↑ higher is better, ↓ lower is better.\n\n| store |")
	for _, c := range cols {
		fmt.Fprintf(&b, " %s (%s) |", c.short, unitOf(c.metric))
	}
	b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(cols)) + "\n")
	for _, st := range r.Stores {
		fmt.Fprintf(&b, "| %s |", st.Name)
		for _, c := range cols {
			s, ok := r.find(st.Name, c.workload)
			fmt.Fprintf(&b, " %s |", cell(s, ok, c.metric))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nColumns: ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "**%s** %s", c.short, c.long)
	}
	b.WriteString(".\n")

	b.WriteString("\n## Stores\n\n| store | module | version | configuration |\n| --- | --- | --- | --- |\n")
	for _, st := range r.Stores {
		cfg := st.Config
		if st.Missing != "" {
			cfg = "**not run: " + st.Missing + "** " + cfg
		}
		mod := st.Module
		if mod == "" {
			mod = "(this module)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", st.Name, mod, st.Version, mdEscape(cfg))
	}

	for _, w := range r.workloads() {
		sec := sectionFor(w, r.metricsOf(w))
		fmt.Fprintf(&b, "\n## %s (`%s`)\n\n%s\n\n| store |", sec.title, w, sec.about)
		for _, m := range sec.metrics {
			fmt.Fprintf(&b, " %s |", header(m))
		}
		b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(sec.metrics)) + "\n")
		var left []string // stores without numbers here, and why
		for _, st := range r.Stores {
			s, ok := r.find(st.Name, w)
			if !ok {
				continue
			}
			if s.Runs == 0 {
				why := s.Note
				if s.Err != "" {
					why = "error: " + oneLine(s.Err)
				}
				left = append(left, fmt.Sprintf("%s (%s)", st.Name, why))
				continue
			}
			fmt.Fprintf(&b, "| %s |", st.Name)
			for _, m := range sec.metrics {
				fmt.Fprintf(&b, " %s |", cell(s, ok, m))
			}
			b.WriteString("\n")
		}
		if len(left) > 0 {
			fmt.Fprintf(&b, "\nNot run: %s.\n", mdEscape(strings.Join(left, "; ")))
		}
		first := true
		for _, st := range r.Stores {
			if s, ok := r.find(st.Name, w); ok && s.Note != "" && !s.Skipped && s.Err == "" {
				if first {
					b.WriteString("\n")
					first = false
				}
				fmt.Fprintf(&b, "- %s: %s\n", st.Name, mdEscape(s.Note))
			}
		}
	}

	if lines := r.problems(); len(lines) > 0 {
		b.WriteString("\n## Errors and skips\n\n")
		for _, l := range lines {
			fmt.Fprintf(&b, "- %s\n", mdEscape(l))
		}
	}
	return b.String()
}

// mdEscape keeps s inside one table cell or list item.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
