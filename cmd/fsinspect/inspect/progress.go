package inspect

import (
	"fmt"
	"io"
	"strings"
	"time"
)

const (
	// progressDelay is how long work runs before a bar appears, so that a
	// small directory, checked in a blink, never flashes one.
	progressDelay = 500 * time.Millisecond
	// progressInterval bounds the redraw rate: smooth to the eye, and a
	// negligible cost to the work being measured.
	progressInterval = 100 * time.Millisecond
	// progressWidth is the bar's width in characters.
	progressWidth = 30
)

// progress draws a one-line bar on a terminal, redrawn in place:
//
//	verify  42% [============>                 ] 12.0 MiB / 28.5 MiB
//
// A nil *progress draws nothing, which is what newProgress returns when
// stderr is not a terminal, so callers need not check.
type progress struct {
	w           io.Writer
	label       string
	total       int64
	now         func() time.Time
	start, last time.Time
	drawn       bool
}

func newProgress(e *env, label string, total int64) *progress {
	if !e.terminal || total <= 0 {
		return nil
	}
	return &progress{w: e.stderr, label: label, total: total, now: e.now, start: e.now()}
}

// set records that done bytes of the total are through, redrawing the bar
// when it is due.
func (p *progress) set(done int64) {
	if p == nil {
		return
	}
	t := p.now()
	if t.Sub(p.start) < progressDelay || (p.drawn && t.Sub(p.last) < progressInterval) {
		return
	}
	p.last = t
	done = min(max(done, 0), p.total)
	filled := int(progressWidth * done / p.total)
	bar := strings.Repeat("=", filled)
	if filled < progressWidth {
		bar += ">" + strings.Repeat(" ", progressWidth-filled-1)
	}
	// \r returns to the line's start; \x1b[K erases what a longer previous
	// line left after the cursor.
	fmt.Fprintf(p.w, "\r%s %3d%% [%s] %s / %s\x1b[K", p.label, 100*done/p.total, bar, formatSize(done), formatSize(p.total))
	p.drawn = true
}

// finish erases the bar, leaving the line for what follows.
func (p *progress) finish() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
}
