// Package human writes numbers, shares, rates, sizes and durations the
// way the CLI, the status page, the backfill's progress bar and its
// report show them to people. One place, so that the same count reads the
// same everywhere (1,204 rows; 12.3%; 3h12m ago).
package human

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ActsOnTerminal reports a control character (C0 with newline and tab,
// DEL, C1: ESC starts the sequences that retitle, clear or reprogram a
// terminal, U+009B is ESC [) or a bidirectional formatting character
// (U+202E shows the text after it reversed): what free text shown to
// people, on a terminal or a page, may not carry.
func ActsOnTerminal(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// Printable returns s with each character that ActsOnTerminal written
// as a \u escape (\u001b), keeping newlines and tabs when lines is set
// (a multi-line text: a request body, a JSON answer): text from backends,
// clients and other operators shown on a terminal shows what it says and
// does nothing. Invalid UTF-8 is written as \ufffd. The escapes are
// JSON's, so valid JSON stays valid and means the same.
func Printable(s string, lines bool) string {
	acts := func(r rune) bool {
		return ActsOnTerminal(r) && !(lines && (r == '\n' || r == '\t'))
	}
	if strings.IndexFunc(s, acts) < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if acts(r) || r == utf8.RuneError {
			fmt.Fprintf(&b, "\\u%04x", r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// PrintableWriter writes what it is given through Printable (newlines
// and tabs kept), holding back a character cut between two writes until
// its end arrives: for output that shows text from less trusted hands
// on a terminal. Close writes what is held back.
type PrintableWriter struct {
	w io.Writer
	// held is the start of a character the last Write cut off.
	held []byte
}

// NewPrintableWriter returns a PrintableWriter writing to w.
func NewPrintableWriter(w io.Writer) *PrintableWriter { return &PrintableWriter{w: w} }

func (p *PrintableWriter) Write(b []byte) (int, error) {
	buf := append(p.held, b...)
	cut := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	p.held = append([]byte(nil), buf[cut:]...)
	if _, err := io.WriteString(p.w, Printable(string(buf[:cut]), true)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close writes a character cut off at the end, escaped.
func (p *PrintableWriter) Close() error {
	held := p.held
	p.held = nil
	_, err := io.WriteString(p.w, Printable(string(held), true))
	return err
}

const day = 24 * time.Hour

// Count writes n with thousands separators: 1,204; -12,345.
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	digits := strings.TrimPrefix(s, "-")
	var b strings.Builder
	b.WriteString(s[:len(s)-len(digits)])
	for i := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(digits[i])
	}
	return b.String()
}

// Share writes a share from 0 to 1 as a percentage with up to three
// significant digits, so that a gate's 0.1% stays readable: 0%, 0.05%,
// 12.3%, 100%.
func Share(r float64) string {
	return strconv.FormatFloat(r*100, 'g', 3, 64) + "%"
}

// PerSecond writes a rate per second with two decimals below 10, one
// below 100 and none above: 0, 0.25, 42.5, 1204.
func PerSecond(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// Bytes writes a size in the largest binary unit it reaches, to one
// decimal: 512 B, 1.5 KiB, 12.0 MiB, 2.3 GiB.
func Bytes(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	if n < 1<<10 && n > -1<<10 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	unit := ""
	for _, u := range units {
		if math.Abs(v) < 1<<10 {
			break
		}
		v /= 1 << 10
		unit = u
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
}

// Duration writes a duration exactly, the way the configuration and the
// API parse it, without zero units: 30m, 1h30m, 2d, 90s, 1.5s.
func Duration(d time.Duration) string {
	if d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Age writes how long something took or how long ago it was, coarsely,
// in its two largest units: 42s, 12m, 3h12m, 2d3h. A negative duration
// (a clock ahead of this one) is 0s.
func Age(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < day:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/day), int(d%day/time.Hour))
}

// Days writes a number of days rounded up to the hour: 7h, 2d, 2d 5h.
func Days(d float64) string {
	h := int(math.Ceil(d * 24))
	switch {
	case h < 24:
		return fmt.Sprintf("%dh", h)
	case h%24 == 0:
		return fmt.Sprintf("%dd", h/24)
	}
	return fmt.Sprintf("%dd %dh", h/24, h%24)
}

// Time writes an instant in UTC to the second: 2026-03-31 08:00:05 UTC.
func Time(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// Minute writes an instant in UTC to the minute, where seconds would be
// noise (an expiry an hour or a day away): 2026-03-31 08:00 UTC.
func Minute(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
