package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"strangler/control"
	"strangler/domain"
	"strangler/internal/human"
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
// no other control character or bidirectional formatting character,
// which the terminal would act on (written as \u escapes: field names in
// shadow samples come from the data, operators' reasons from other
// operators; found by the red team), and at most limit runes (none for 0).
func cell(s string, limit int) string {
	s = human.Printable(strings.Join(strings.Fields(s), " "), false)
	if s == "" {
		return "-"
	}
	if r := []rune(s); limit > 0 && len(r) > limit {
		return string(r[:limit-1]) + "…"
	}
	return s
}

// fmtPercent writes a route's share to modern, "-" for modes without one.
func fmtPercent(mode string, percent *float64) string {
	if !domain.Mode(mode).TakesPercent() {
		return "-"
	}
	return control.PercentText(domain.FullPercent(percent))
}

// fmtTime writes an instant in UTC to the second, with how long ago or,
// for one still to come (a change request's expiry), how long until.
func fmtTime(t, now time.Time) string {
	if t.After(now) {
		return human.Time(t) + " (in " + human.Age(t.Sub(now)) + ")"
	}
	return human.Time(t) + " (" + human.Age(now.Sub(t)) + " ago)"
}

// toTerminal runs a command that shows the admin API's answers with its
// output going through human.PrintableWriter: what they show comes
// from less trusted hands than the operator's (field paths from
// backends' data, backends' errors, other operators' reasons and token
// names, a client's journaled request), tables, texts and --json alike.
func toTerminal(stdout io.Writer, command func(io.Writer) error) error {
	out := human.NewPrintableWriter(stdout)
	err := command(out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeJSONReport writes v, indented, to the file at path (a --report-json
// flag's), each character a terminal acts on as a \u escape: the report
// quotes legacy rows' keys and the databases' messages, encoding/json
// escapes only C0 controls, and --report-json /dev/stdout may be a
// terminal. The escapes are JSON's: the report means the same. A new file
// is readable by its owner alone: the report names rows' keys.
func writeJSONReport(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(human.Printable(string(b), true)+"\n"), 0o600); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
