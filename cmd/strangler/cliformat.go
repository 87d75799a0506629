package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"strangler/domain"
)

// parseArgs parses a subcommand's flags wherever they stand among its
// positional arguments (`routes set NAME --mode modern` as well as
// `routes set --mode modern NAME`), which the flag package alone stops at,
// and returns the positional ones. After "--" everything is positional.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	var positional []string
	for {
		if err := parseFlags(fs, args, stderr); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// setUsage makes fs print synopsis, then its flags, then the note on the
// admin token.
func setUsage(fs *flag.FlagSet, synopsis string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: strangler %s\n\n", synopsis)
		fs.PrintDefaults()
		fmt.Fprintf(w, "\n%s", tokenHelp)
	}
}

// newTable returns a tabwriter for aligned columns; Flush it at the end.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// cell makes s safe for one table cell: no tabs or line breaks, which
// would break the columns (the API's texts come from backends' errors),
// and at most limit runes (none for 0).
func cell(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if r := []rune(s); limit > 0 && len(r) > limit {
		return string(r[:limit-1]) + "…"
	}
	return s
}

// fmtAge writes how long ago something was, coarsely: 42s, 12m, 3h12m,
// 2d3h.
func fmtAge(d time.Duration) string {
	if d < 0 {
		d = 0 // the facade's clock is ahead of this one
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// fmtRate writes a share from 0 to 1 as a percentage with three
// significant digits, so a gate's 0.1% stays readable: 0%, 0.05%, 12.3%.
func fmtRate(r float64) string {
	if r == 0 {
		return "0%"
	}
	return strconv.FormatFloat(r*100, 'g', 3, 64) + "%"
}

// fmtCount writes a count with thousands separators: 1,204.
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtMode writes a mode with its percent when it has one below 100:
// "fallback 25%", "modern".
func fmtMode(mode string, percent *float64) string {
	if domain.Mode(mode).TakesPercent() && percent != nil && *percent != 100 {
		return mode + " " + strconv.FormatFloat(*percent, 'f', -1, 64) + "%"
	}
	return mode
}

// fmtPercent writes a route's share to modern, "-" for modes without one.
func fmtPercent(mode string, percent *float64) string {
	if !domain.Mode(mode).TakesPercent() {
		return "-"
	}
	p := 100.0
	if percent != nil {
		p = *percent
	}
	return strconv.FormatFloat(p, 'f', -1, 64) + "%"
}

// fmtTime writes an instant in UTC to the second, with how long ago.
func fmtTime(t, now time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05Z") + " (" + fmtAge(now.Sub(t)) + " ago)"
}
