package backfill

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestProgressDrawsBarsOnATerminalAndLinesElsewhere(t *testing.T) {
	stats := func() []*tableStats {
		a, b := newTableStats("patients", shownAsIs, false), newTableStats("photos", shownAsIs, false)
		a.estimate.Store(1000)
		a.active(time.Now().Add(-time.Second))
		a.read.Store(250)
		a.inserted.Store(240)
		a.addFailures([]failure{{key: []byte("7"), reason: "r"}})
		b.read.Store(10)
		b.inserted.Store(10)
		b.active(time.Now())
		b.done.Store(true)
		return []*tableStats{a, b}
	}

	t.Run("bars are redrawn in place", func(t *testing.T) {
		var out bytes.Buffer
		p := startProgress(&out, true, nil, stats())
		p.render(false)
		p.finish()
		s := out.String()
		for _, want := range []string{"patients [######··················]  25%  250 / ~1,000", "1 failed", "ETA", "photos   [########################] done  10 rows", "\x1b[2A"} {
			if !strings.Contains(s, want) {
				t.Errorf("output lacks %q:\n%q", want, s)
			}
		}
	})

	t.Run("plain lines say each table's state once it is done", func(t *testing.T) {
		var out bytes.Buffer
		p := startProgress(&out, false, nil, stats())
		p.render(false)
		p.finish()
		want := "backfill: patients copying: 250 read, 240 written, 0 already present, 1 failed\n" +
			"backfill: photos done: 10 read, 10 written, 0 already present\n" +
			"backfill: patients stopped: 250 read, 240 written, 0 already present, 1 failed\n"
		if out.String() != want {
			t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
		}
	})
}

func TestALogLineGoesAboveTheBarsNotBetweenThem(t *testing.T) {
	var term bytes.Buffer // the terminal: stdout and stderr alike
	screen := NewScreen(&term)
	a := newTableStats("patients", shownAsIs, false)
	a.estimate.Store(100)
	p := startProgress(&term, true, screen, []*tableStats{a})
	p.render(false)
	bars := term.String()
	term.Reset()
	io.WriteString(screen.Logs(&term), "level=WARN msg=\"backfill range taken over\"\n")
	// Up over the one bar, erase to the end, the line, then the bar again.
	want := "\x1b[1A\x1b[J" + "level=WARN msg=\"backfill range taken over\"\n" + bars
	if got := term.String(); got != want {
		t.Errorf("a log line while the bars show wrote\n%q\nwant\n%q", got, want)
	}
	term.Reset()
	p.render(false)
	if got := term.String(); !strings.HasPrefix(got, "\x1b[1A\x1b[2Kpatients") {
		t.Errorf("the next redraw starts %q; want it back up over the bar below the log line", got)
	}
	p.finish()
}

func TestPacerHoldsTheRate(t *testing.T) {
	p := newPacer(1000)
	start := time.Now()
	for range 6 {
		if err := p.take(t.Context(), 100); err != nil {
			t.Fatal(err)
		}
	}
	// The first 100 rows go at once, the next 500 at 1000 rows/s. The upper
	// bound only proves the pacer does not hold far longer (a loaded
	// machine's timers fire late, never early).
	if got := time.Since(start); got < 450*time.Millisecond || got > 5*time.Second {
		t.Errorf("600 rows at 1000 rows/s took %v, want about 0.5s", got)
	}
	if newPacer(0) != nil {
		t.Error("rate 0 should mean no pacer")
	}
}

// shownAsIs shows a key as its bytes.
func shownAsIs(key []byte) string { return string(key) }
