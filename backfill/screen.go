package backfill

import (
	"fmt"
	"io"
	"sync"
)

// Screen is a terminal that the progress bars and the log share. The bars
// are redrawn in place by moving the cursor back up over them; a log line
// written in between would be drawn over, or leave bars behind. A line
// written through Logs instead erases the bars, goes where they were, and
// has them drawn again below it.
type Screen struct {
	mu  sync.Mutex
	out io.Writer // where the bars are drawn
	// bars is what was last drawn, lines how many lines it takes.
	bars  string
	lines int
}

// NewScreen returns a Screen drawing the bars on out.
func NewScreen(out io.Writer) *Screen { return &Screen{out: out} }

// Logs returns a writer for log lines bound for w (the same terminal,
// stderr say): each Write, a whole line as slog writes them, goes above
// the bars.
func (s *Screen) Logs(w io.Writer) io.Writer { return screenLog{s, w} }

type screenLog struct {
	s *Screen
	w io.Writer
}

func (l screenLog) Write(p []byte) (int, error) {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines > 0 {
		fmt.Fprintf(s.out, "\x1b[%dA\x1b[J", s.lines) // up to the first bar, erase to the end
	}
	n, err := l.w.Write(p)
	io.WriteString(s.out, s.bars)
	return n, err
}

// draw replaces the bars with bars, lines lines of text each ending in a
// newline.
func (s *Screen) draw(bars string, lines int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines > 0 {
		fmt.Fprintf(s.out, "\x1b[%dA", s.lines)
	}
	io.WriteString(s.out, bars)
	s.bars, s.lines = bars, lines
}
