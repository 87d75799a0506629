package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

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
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	// A field's path holds the file's keys (a column's name), which may
	// hold a newline: written as it is, it would break the line in two.
	return loc + ": " + human.Printable(e.Field, false) + ": " + e.Msg
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
			lines = append(lines, fmt.Sprintf("%s: and %d more errors", e.File, len(es)-maxShown))
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
