package backfill

import (
	"fmt"
	"io"
	"strings"
	"time"

	"strangler/internal/human"
)

// progress shows a run's progress: bars redrawn in place on a terminal,
// a plain line per table now and then otherwise (logs, CI).
type progress struct {
	w        io.Writer
	terminal bool
	tables   []*tableStats
	stop     chan struct{}
	done     chan struct{}
	// screen draws the bars on a terminal, shared with the log.
	screen *Screen
	// said remembers which finished tables have had their last line.
	said map[string]bool
}

// Intervals between redraws and between plain lines.
const (
	barInterval  = 250 * time.Millisecond
	lineInterval = 10 * time.Second
)

func startProgress(w io.Writer, terminal bool, screen *Screen, tables []*tableStats) *progress {
	if terminal && screen == nil {
		screen = NewScreen(w)
	}
	p := &progress{w: w, terminal: terminal, screen: screen, tables: tables,
		stop: make(chan struct{}), done: make(chan struct{}), said: map[string]bool{}}
	if w == nil {
		close(p.done)
		return p
	}
	interval := lineInterval
	if terminal {
		interval = barInterval
	}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				p.render(false)
			case <-p.stop:
				p.render(true)
				return
			}
		}
	}()
	return p
}

// finish draws the final state and stops.
func (p *progress) finish() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.stop)
	<-p.done
}

func (p *progress) render(final bool) {
	if !p.terminal {
		for _, t := range p.tables {
			finished := t.done.Load()
			if p.said[t.name] || !finished && t.read.Load() == 0 {
				continue
			}
			state := "copying"
			if finished {
				state, p.said[t.name] = "done", true
			} else if final {
				state = "stopped"
			}
			fmt.Fprintf(p.w, "backfill: %s %s: %s\n", t.name, state, counts(t))
		}
		return
	}
	var b strings.Builder
	width := 0
	for _, t := range p.tables {
		width = max(width, len(t.name))
	}
	for _, t := range p.tables {
		fmt.Fprintf(&b, "\x1b[2K%-*s %s\n", width, t.name, bar(t, t.elapsed(time.Now())))
	}
	p.screen.draw(b.String(), len(p.tables))
}

func counts(t *tableStats) string {
	s := ""
	if c := t.compared.Load(); c > 0 {
		s = human.Count(c) + " compared, "
	}
	s += fmt.Sprintf("%s read, %s written, %s already present", human.Count(t.read.Load()),
		human.Count(t.inserted.Load()+t.updated.Load()), human.Count(t.present.Load()))
	if f := t.failed.Load(); f > 0 {
		s += fmt.Sprintf(", %s failed", human.Count(f))
	}
	return s
}

const barWidth = 24

// bar draws one table's line: a bar when the row count is known. Rows
// compared count as handled, as rows read do.
func bar(t *tableStats, elapsed time.Duration) string {
	read := t.read.Load() + t.compared.Load()
	rate := float64(0)
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(read) / s
	}
	status := fmt.Sprintf("%s rows/s", human.Count(int64(rate)))
	if f := t.failed.Load(); f > 0 {
		status += fmt.Sprintf("  %s failed", human.Count(f))
	}
	if t.done.Load() {
		return fmt.Sprintf("[%s] done  %s rows  %s", strings.Repeat("#", barWidth), human.Count(read), status)
	}
	estimate := t.estimate.Load()
	if estimate <= 0 {
		return fmt.Sprintf("%s rows  %s", human.Count(read), status)
	}
	frac := min(float64(read)/float64(estimate), 1)
	fill := int(frac * barWidth)
	eta := ""
	if rate > 0 && read < estimate {
		eta = "  ETA " + time.Duration(float64(estimate-read)/rate*float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s%s] %3.0f%%  %s / ~%s  %s%s", strings.Repeat("#", fill), strings.Repeat("·", barWidth-fill),
		frac*100, human.Count(read), human.Count(estimate), status, eta)
}
