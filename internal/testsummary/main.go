// Command testsummary reads `go test -json` on stdin and writes what a
// plain `go test` would (each package's result, the output of failed
// tests, build errors), then how many tests were skipped and why: a run
// without the databases or tools it needs must say so, not pass quietly.
// It exits 1 when a test, a package or a build failed.
//
//	go test -json ./... | go run ./internal/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

func main() {
	failed, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

// summary gathers a run's results as its events arrive.
type summary struct {
	out    io.Writer
	failed bool
	// output holds each running test's lines until it ends: a failed
	// test's are printed, a skipped test's give the reason.
	output map[string][]string
	// skipped maps a reason to the tests skipped for it.
	skipped map[string][]string
}

func summarize(in io.Reader, out io.Writer) (failed bool, err error) {
	s := &summary{out: out, output: map[string][]string{}, skipped: map[string][]string{}}
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			// Not an event: something go test printed itself.
			fmt.Fprintln(out, sc.Text())
			continue
		}
		s.take(e)
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	s.report()
	return s.failed, nil
}

func (s *summary) take(e event) {
	key := e.Package + " " + e.Test
	switch {
	case e.Action == "build-output":
		fmt.Fprint(s.out, e.Output)
	case e.Action == "build-fail":
		s.failed = true
	case e.Test == "":
		// A package's own lines: its result, a panic, a timeout.
		if e.Action == "output" && e.Output != "PASS\n" && !strings.HasPrefix(e.Output, "=== ") {
			fmt.Fprint(s.out, e.Output)
		}
		if e.Action == "fail" {
			s.failed = true
			s.printUnended(e.Package)
		}
	case e.Action == "output":
		s.output[key] = append(s.output[key], e.Output)
	case e.Action == "fail":
		s.failed = true
		for _, line := range s.output[key] {
			if !strings.HasPrefix(line, "=== ") {
				fmt.Fprint(s.out, line)
			}
		}
		delete(s.output, key)
	case e.Action == "skip":
		reason := skipReason(s.output[key])
		s.skipped[reason] = append(s.skipped[reason], shortPackage(e.Package)+"."+e.Test)
		delete(s.output, key)
	case e.Action == "pass":
		delete(s.output, key)
	}
}

// printUnended prints the output of pkg's tests that never ended. When a
// package times out or panics, go test -json puts the panic and the
// goroutines under the test that was running, and that test gets no fail
// event of its own: without this, a timed-out package would fail with
// nothing said about where it was.
func (s *summary) printUnended(pkg string) {
	var keys []string
	for key := range s.output {
		if strings.HasPrefix(key, pkg+" ") {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		fmt.Fprintf(s.out, "--- %s.%s did not end:\n", shortPackage(pkg), strings.TrimPrefix(key, pkg+" "))
		for _, line := range s.output[key] {
			fmt.Fprint(s.out, line)
		}
		delete(s.output, key)
	}
}

// location is the file:line prefix testing puts on a logged line.
var location = regexp.MustCompile(`^\s*[\w.-]+\.go:\d+: `)

// skipReason is what a skipped test logged before its --- SKIP line,
// without file and line, so that the tests skipped for one reason group.
func skipReason(lines []string) string {
	var reason []string
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "=== ") || strings.HasPrefix(line, "--- SKIP") {
			continue
		}
		reason = append(reason, location.ReplaceAllString(line, ""))
	}
	if len(reason) == 0 {
		return "(no reason given)"
	}
	r := strings.Join(reason, " ")
	if len(r) > 300 {
		r = r[:300] + "…"
	}
	return r
}

func shortPackage(p string) string { return strings.TrimPrefix(p, "strangler/") }

// report prints the skipped tests grouped by reason, the most common
// reason first, naming a few tests of each.
func (s *summary) report() {
	total := 0
	for _, tests := range s.skipped {
		total += len(tests)
	}
	if total == 0 {
		fmt.Fprintln(s.out, "no test was skipped")
		return
	}
	fmt.Fprintf(s.out, "%d tests were skipped:\n", total)
	reasons := make([]string, 0, len(s.skipped))
	for r := range s.skipped {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b string) int {
		if n := len(s.skipped[b]) - len(s.skipped[a]); n != 0 {
			return n
		}
		return strings.Compare(a, b)
	})
	for _, r := range reasons {
		tests := s.skipped[r]
		slices.Sort(tests)
		shown := tests[:min(len(tests), 3)]
		more := ""
		if len(tests) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(tests)-len(shown))
		}
		fmt.Fprintf(s.out, "  %d: %s\n      (%s%s)\n", len(tests), r, strings.Join(shown, ", "), more)
	}
}
