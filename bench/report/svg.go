package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/kennel-cache/kennel/bench/workload"
)

// palette holds one colour per store, in registry order: Tableau 10, whose
// colours stay distinguishable for most colour-blind readers.
const palette = "#4e79a7 #f28e2b #e15759 #76b7b2 #59a14f #edc948 #b07aa1 #ff9da7 #9c755f #bab0ac"

// Chart geometry, in SVG user units (pixels).
const (
	svgPanelW   = 400 // one workload's panel
	svgPanelPad = 16  // between panels
	svgLabelW   = 70  // store names left of the bars
	svgValueW   = 70  // values right of the bars
	svgBarH     = 14
	svgBarGap   = 4
	svgTitleH   = 36 // panel title and subtitle
	svgColumns  = 3
	svgMargin   = 16
	svgLegendH  = 28
	svgHeaderH  = 44
)

// SVG draws the headline numbers as a grid of panels, one per workload
// metric, with one bar per store in the store's colour. Bars are normalised
// per panel so that the best store's bar is full length: value/best where
// higher is better, best/value where lower is better. The real value is
// printed beside each bar, in bold for the leader.
func (r *Report) SVG() string {
	var cols []column
	for _, c := range r.headline() {
		if r.anyValue(c) {
			cols = append(cols, c)
		}
	}
	stores := r.Stores
	panelH := svgTitleH + len(stores)*(svgBarH+svgBarGap) + svgPanelPad
	rows := (len(cols) + svgColumns - 1) / svgColumns
	width := 2*svgMargin + svgColumns*svgPanelW + (svgColumns-1)*svgPanelPad
	height := svgMargin + svgHeaderH + svgLegendH + rows*panelH + svgMargin

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="16" font-weight="bold">%s</text>`+"\n",
		svgMargin, svgMargin+16, esc("kennel vs peers: each panel scaled to its leader (longest bar = best)"))
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", svgMargin, svgMargin+34,
		esc(fmt.Sprintf("N = %d, median of %d run(s), %s. Value printed beside each bar; ↑ higher is better, ↓ lower is better.", r.Params.N, r.Params.Runs, r.Platform)))

	// Legend.
	x, y := svgMargin, svgMargin+svgHeaderH
	for i, st := range stores {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`, x, y, colour(i))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+16, y+10, esc(st.Name))
		x += 24 + 7*len(st.Name) + 12
	}

	for p, c := range cols {
		px := svgMargin + (p%svgColumns)*(svgPanelW+svgPanelPad)
		py := svgMargin + svgHeaderH + svgLegendH + (p/svgColumns)*panelH
		r.panel(&b, c, px, py)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// panel draws one workload metric's bars with its top-left corner at x, y.
func (r *Report) panel(b *strings.Builder, c column, x, y int) {
	d := workload.Describe(c.metric)
	arrow := "↓ lower is better"
	if d.HigherIsBetter {
		arrow = "↑ higher is better"
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", x, y+13, esc(c.long))
	fmt.Fprintf(b, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", x, y+27, esc(d.Unit+", "+arrow))

	values := make([]float64, len(r.Stores))
	have := make([]bool, len(r.Stores))
	best, worstPositive := math.NaN(), 0.0
	for i, st := range r.Stores {
		s, ok := r.find(st.Name, c.workload)
		v, found := s.Metrics[c.metric]
		if !ok || !found || s.Runs == 0 {
			continue
		}
		values[i], have[i] = v, true
		worstPositive = math.Max(worstPositive, math.Abs(v))
		if math.IsNaN(best) || (d.HigherIsBetter && v > best) || (!d.HigherIsBetter && v < best) {
			best = v
		}
	}
	// For lower-is-better metrics a value at or near zero (heap per key of a
	// store that keeps no index on the heap) would make best/value blow up:
	// values are floored at a thousandth of the largest one.
	floor := worstPositive / 1000
	barMax := float64(svgPanelW - svgLabelW - svgValueW)
	for i, st := range r.Stores {
		by := y + svgTitleH + i*(svgBarH+svgBarGap)
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, x+svgLabelW-6, by+svgBarH-3, esc(st.Name))
		if !have[i] {
			s, ok := r.find(st.Name, c.workload)
			fmt.Fprintf(b, `<text x="%d" y="%d" fill="#999">%s</text>`+"\n", x+svgLabelW, by+svgBarH-3, esc(cell(s, ok, c.metric)))
			continue
		}
		v := values[i]
		var score float64
		if d.HigherIsBetter {
			if best > 0 {
				score = math.Max(v, 0) / best
			}
		} else {
			score = math.Max(best, floor) / math.Max(v, floor)
		}
		w := math.Max(1, score*barMax)
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`,
			x+svgLabelW, by, w, svgBarH, colour(i), esc(fmt.Sprintf("%s %s: %s %s", st.Name, c.long, formatValue(c.metric, v), d.Unit)))
		weight := "normal"
		if v == best {
			weight = "bold"
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-weight="%s">%s</text>`+"\n", float64(x+svgLabelW)+w+4, by+svgBarH-3, weight, esc(formatValue(c.metric, v)))
	}
}

// anyValue reports whether some store has a number for c.
func (r *Report) anyValue(c column) bool {
	for _, s := range r.Summary {
		if _, ok := s.Metrics[c.metric]; ok && s.Workload == c.workload && s.Runs > 0 {
			return true
		}
	}
	return false
}

func colour(i int) string {
	cs := strings.Fields(palette)
	return cs[i%len(cs)]
}

// esc escapes s for SVG text and attribute values.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
