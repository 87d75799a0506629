package config

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"strangler/internal/human"
)

// Error is one problem with a configuration file, placed at the line and
// field it concerns.
type Error struct {
	File   string
	Line   int
	Column int
	// Field is the path of the field, like routes[2].mode.
	Field string
	Msg   string
}

func (e Error) Error() string {
	// The file's name, a field's path (a column's name) and a message
	// (a ${file:…} path it quotes) hold what the file wrote, escapes
	// such as "\e[2J\n" included: written as they are, they would act on
	// the terminal showing them, or break the line in two.
	loc := human.Printable(e.File, false)
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", loc, e.Line, e.Column)
	}
	msg := human.Printable(shortenQuoted(e.Msg), false)
	if e.Field == "" {
		return loc + ": " + msg
	}
	return loc + ": " + human.Printable(e.Field, false) + ": " + msg
}

// maxQuoted bounds a value as a message quotes it: a value of a few MiB
// (one long line of the file) quoted whole is a message of a few MiB, on
// a terminal, in a CI log, or in one line of the reload log, which log
// shippers cut or drop. Its start and end, and the line and column, place
// it.
const maxQuoted = 120

// quoted is a value as %q writes it.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// shortenQuoted cuts the middle out of each value msg quotes that is
// longer than maxQuoted, and says how long it was.
func shortenQuoted(msg string) string {
	if len(msg) <= maxQuoted {
		return msg
	}
	return quoted.ReplaceAllStringFunc(msg, func(q string) string {
		if len(q) <= maxQuoted {
			return q
		}
		head, tail := maxQuoted*2/3, len(q)-maxQuoted/3
		for !utf8.RuneStart(q[head]) {
			head--
		}
		for !utf8.RuneStart(q[tail]) {
			tail++
		}
		return fmt.Sprintf("%s…%s (%s quoted, shortened)", q[:head], q[tail:], human.Bytes(int64(len(q))))
	})
}

// Errors is every problem found in one file, in file order.
type Errors []Error

// maxShown bounds the errors Error lists: a file of a few MiB can hold
// hundreds of thousands (the same key on every line), which would fill a
// terminal, and the reload log line, with the same words.
const maxShown = 100

// Error lists the errors one a line, the first maxShown of them, then how
// many more there are.
func (es Errors) Error() string {
	lines := make([]string, 0, min(len(es), maxShown+1))
	for i, e := range es {
		if i == maxShown {
			lines = append(lines, fmt.Sprintf("%s: and %d more errors", human.Printable(e.File, false), len(es)-maxShown))
			break
		}
		lines = append(lines, e.Error())
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sorted() Errors {
	slices.SortStableFunc(es, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return es
}
