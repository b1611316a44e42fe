package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/kennel-cache/kennel/bench/workload"
)

// formatValue formats v as metric m is best read: bytes in IEC units,
// ratios with two decimals, everything else to three significant digits with
// k/M/G suffixes.
func formatValue(m string, v float64) string {
	switch workload.Describe(m).Unit {
	case "B":
		return formatBytes(v)
	case "×":
		return fmt.Sprintf("%.2f", v)
	}
	return formatSI(v)
}

func formatSI(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return sig(v/1e9) + "G"
	case a >= 1e6:
		return sig(v/1e6) + "M"
	case a >= 1e4:
		return sig(v/1e3) + "k"
	}
	return sig(v)
}

// sig formats v with three significant digits and no exponent.
func sig(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

func formatBytes(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1<<30:
		return sig(v/(1<<30)) + " GiB"
	case a >= 1<<20:
		return sig(v/(1<<20)) + " MiB"
	case a >= 1<<10:
		return sig(v/(1<<10)) + " KiB"
	}
	return sig(v) + " B"
}

// header returns a column header for metric m: its label and unit.
func header(m string) string {
	d := workload.Describe(m)
	if d.Unit == "" {
		return d.Label
	}
	return d.Label + " (" + d.Unit + ")"
}

// cell formats metric m of summary s for a table.
func cell(s Summary, ok bool, m string) string {
	switch {
	case !ok:
		return "—"
	case s.Err != "" && s.Runs == 0:
		return "error"
	case s.Skipped && s.Runs == 0:
		return "skip"
	}
	v, have := s.Metrics[m]
	if !have {
		return "—"
	}
	return formatValue(m, v)
}
