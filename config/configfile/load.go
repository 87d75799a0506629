// Package configfile reads strangler's YAML configuration file into a
// config.Config: placeholders expanded, every field decoded at its line,
// then completed and validated by package config. It is the only package
// that links the YAML parser, so that what the request path imports for
// the parsed types (package config) does not.
package configfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"strangler/config"
	"strangler/internal/filecap"
	"strangler/internal/mysqldsn"
	"strangler/internal/pgdsn"
)

// Env is how configuration reads the outside world: the environment for
// ${VAR} and the file system for the file and its ${file:…}. Tests pass
// their own.
type Env struct {
	Getenv func(string) string
	// ReadFile reads a file of at most limit bytes, and refuses one that
	// is larger or is no regular file (filecap.Read).
	ReadFile func(path string, limit int64) ([]byte, error)
	// Now is the clock an admin token's expires is checked against (an
	// expired one is a warning); nil is time.Now.
	Now func() time.Time
}

// Load reads, expands, decodes and validates the file at path. A non-nil
// error is either an I/O error or config.Errors naming every problem
// found.
func Load(path string, env Env) (*config.Config, error) {
	data, err := env.ReadFile(path, filecap.Limit)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, env)
}

// Parse is Load for a file already read; name is used in error messages and
// to resolve relative ${file:…} paths.
func Parse(name string, data []byte, env Env) (*config.Config, error) {
	if wide(data) {
		return nil, config.Errors{{File: name, Line: 1, Column: 1,
			Msg: "the file is UTF-16 without a byte order mark, or UTF-32: save it as UTF-8"}}
	}
	if line, ok := overItems(data); ok {
		return nil, config.Errors{{File: name, Line: line, Column: 1,
			Msg: fmt.Sprintf("more than %d places where a value starts (lines, commas, brackets, list dashes) by this line: a configuration holds at most %d values, about 20 a route", maxItems, maxValues)}}
	}
	if line, column, ok := strayByteOrderMark(data); ok {
		return nil, config.Errors{{File: name, Line: line, Column: column,
			Msg: "a byte order mark, U+FEFF, past the start of the file (a tool added one to a file that had one, or two files were joined): remove it; YAML reads the file around it wrongly"}}
	}
	root, err := oneDocument(name, data)
	if err != nil {
		return nil, config.Errors{*err}
	}
	d := &decoder{
		file:   name,
		expand: &expander{getenv: env.Getenv, readFile: env.ReadFile, dir: filepath.Dir(name)},
		pos:    map[string]config.Position{},
		failed: map[string]bool{},
	}
	cfg := &config.Config{File: name}
	if len(root.Content) == 0 {
		d.errorf(nil, "", "the file is empty; see the README for a starting point")
		return nil, d.errs
	}
	d.decode(root.Content[0], reflect.ValueOf(cfg).Elem(), "")
	if d.values > maxValues {
		// Decoding stopped part way: what validation would say of the
		// rest is noise.
		return nil, d.errs
	}
	now := env.Now
	if now == nil {
		now = time.Now
	}
	cfg, cerr := config.Complete(cfg, config.Decoded{
		File: name, Errs: d.errs, Pos: d.pos, Failed: d.failed, Files: d.expand.files,
		Getenv: env.Getenv, MySQLDriverDSN: mysqldsn.DriverDSN, CheckPostgres: pgdsn.Check, Now: now,
	})
	if errs := (config.Errors)(nil); errors.As(cerr, &errs) {
		return nil, d.hide(errs)
	}
	if cerr != nil {
		return nil, cerr
	}
	cfg.Warnings, cfg.Unsafe = d.hide(cfg.Warnings), d.hide(cfg.Unsafe)
	return cfg, nil
}

// Print renders the effective configuration, defaults included, as YAML
// with secrets and URL passwords redacted.
func Print(c *config.Config) ([]byte, error) { return yaml.Marshal(c) }

// oneDocument parses data as the one YAML document a configuration file
// is. A second document after "---" is an error: the parser would read
// the first and drop the rest, settings and all, without a word.
func oneDocument(name string, data []byte) (yaml.Node, *config.Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root, next yaml.Node
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		e := syntaxError(name, data, err)
		return root, &e
	}
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		e := syntaxError(name, data, err)
		return root, &e
	case len(next.Content) == 1 && next.Content[0].Tag == "!!null" && next.Content[0].Value == "":
		// A lone "---" at the end holds nothing to lose.
	default:
		return root, &config.Error{File: name, Line: next.Line, Column: next.Column,
			Msg: "a second YAML document (after ---): a configuration file is one document; remove the --- or move the rest into another file"}
	}
	return root, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError places a YAML syntax error; yaml.v3 reports them as
// "yaml: line N: …", except those of its reader (a control character,
// invalid UTF-8), which say no line: they are placed by finding the
// character, and those on the first line.
func syntaxError(name string, data []byte, err error) config.Error {
	e := config.Error{File: name, Msg: err.Error()}
	if m := yamlLine.FindStringSubmatch(e.Msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Column, e.Msg = 1, m[2]
		if slices.Contains(parserProblems, e.Msg) {
			e.Line++
		}
		e.Column, e.Field = surrogateField(data, e.Line)
		if column, ok := tabAt(data, e.Line); ok && e.Msg == "found character that cannot start any token" {
			e.Column, e.Msg = column, "a tab, where YAML takes spaces only: indent with spaces"
		}
	} else if m := unknownAnchor.FindStringSubmatch(e.Msg); m != nil {
		e.Line, e.Column = aliasAt(data, m[1])
		e.Msg = strings.TrimPrefix(m[0], "yaml: ") + "; an alias (*" + m[1] + ") stands for an anchor (&" + m[1] + ") written before it"
	} else if line, column, ok := unreadable(data); ok {
		e.Line, e.Column, e.Msg = line, column, strings.TrimPrefix(e.Msg, "yaml: ")
	} else {
		// yaml.v3 leaves the line out when it is the first (its count
		// starts at 0 and 0 means none).
		e.Line, e.Column, e.Msg = 1, 1, strings.TrimPrefix(e.Msg, "yaml: ")
	}
	return e
}

// parserProblems are the errors of yaml.v3's parser (its scanner's are
// the others). It counts their line from 0 (the line of the mapping or
// list they are in, or else of the token they found), those of its
// scanner from 1: "modern: { url: ${X} }" on line 4 came as line 3.
var parserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected key",
	"did not find expected node content",
	"found undefined tag handle",
	"found incompatible YAML document",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
}

// unknownAnchor is yaml.v3's error for an alias to no anchor before it,
// which says no line.
var unknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)

// aliasAt is the line and column of the first alias to name in data, or
// 1, 1 when none is found.
func aliasAt(data []byte, name string) (line, column int) {
	alias := []byte("*" + name)
	for i := 0; ; {
		at := bytes.Index(data[i:], alias)
		if at < 0 {
			return 1, 1
		}
		at += i
		end := at + len(alias)
		if end == len(data) || bytes.IndexByte([]byte(" \t\r\n,]}"), data[end]) >= 0 {
			before := data[:at]
			line = bytes.Count(before, []byte("\n")) + 1
			return line, utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
		}
		i = end
	}
}

// tabAt is the column of a tab in the indentation of line of data (after
// spaces and a list's - only). It is what YAML calls "a character that
// cannot start any token" there: unseen in most editors, the message
// alone leaves the reader looking for a character that is not there.
func tabAt(data []byte, line int) (column int, ok bool) {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return 0, false
	}
	l := lines[line-1]
	i := bytes.IndexByte(l, '\t')
	if i < 0 || len(bytes.Trim(l[:i], " -")) > 0 {
		return 0, false
	}
	return i + 1, true
}

// surrogate is an escape of a UTF-16 surrogate, which YAML refuses in a
// double-quoted string ("found invalid Unicode character escape code"):
// JSON writes a character beyond U+FFFF as a pair of them.
var surrogate = regexp.MustCompile(`\\(u|U0000)[dD][89a-fA-F][0-9a-fA-F]{2}`)

// surrogateField places a syntax error at line that is a surrogate
// escape: its column there, and the field whose value holds it, found by
// parsing data again with every such escape made U+FFFD (of the same
// length, so every position stays). Column 1 and no field otherwise.
func surrogateField(data []byte, line int) (column int, field string) {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return 1, ""
	}
	at := surrogate.FindIndex(lines[line-1])
	if at == nil {
		return 1, ""
	}
	column = utf8.RuneCount(lines[line-1][:at[0]]) + 1
	repaired := surrogate.ReplaceAllFunc(data, func(esc []byte) []byte {
		return append(esc[:len(esc)-4:len(esc)-4], "FFFD"...)
	})
	var root yaml.Node
	if yaml.Unmarshal(repaired, &root) != nil {
		return column, ""
	}
	return column, fieldAt(&root, "", line, column)
}

// fieldAt is the path (routes[2].name, as decoding names fields) of the
// value in n that starts last on line before column, or "".
func fieldAt(n *yaml.Node, path string, line, column int) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if f := fieldAt(c, path, line, column); f != "" {
				return f
			}
		}
	case yaml.SequenceNode:
		for i, c := range slices.Backward(n.Content) {
			if f := fieldAt(c, fmt.Sprintf("%s[%d]", path, i), line, column); f != "" {
				return f
			}
		}
	case yaml.MappingNode:
		for i := len(n.Content) - 2; i >= 0; i -= 2 {
			key, val := n.Content[i], n.Content[i+1]
			sub := key.Value
			if path != "" {
				sub = path + "." + key.Value
			}
			if f := fieldAt(val, sub, line, column); f != "" {
				return f
			}
			if key.Line == line && key.Column <= column {
				// The escape is in the key itself, or between it and a
				// value on another line.
				return sub
			}
		}
	case yaml.ScalarNode:
		if n.Line == line && n.Column <= column {
			return path
		}
	}
	return ""
}

// unreadable finds the first character YAML's reader refuses in UTF-8
// data: invalid UTF-8, or a character outside YAML 1.2's c-printable
// (a control character other than tab, line feed and carriage return).
// A UTF-16 file is not searched.
func unreadable(data []byte) (line, column int, ok bool) {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return 0, 0, false
	}
	line, column = 1, 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size <= 1 || !printable(r) {
			return line, column, true
		}
		if r == '\n' {
			line, column = line+1, 1
		} else {
			column++
		}
		data = data[size:]
	}
	return 0, 0, false
}

// wide reports whether data is text in UTF-32, or in UTF-16 without a
// byte order mark: yaml.v3 reads neither, and refuses the first NUL byte
// as "control characters are not allowed", where an editor shows none.
// (UTF-16 with its byte order mark, as Windows tools save it, is read.)
func wide(data []byte) bool {
	head := data[:min(len(data), 4)]
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE, 0, 0}), bytes.HasPrefix(head, []byte{0, 0, 0xFE, 0xFF}):
		return true
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return false
	}
	return bytes.IndexByte(head, 0) >= 0
}

// maxItems bounds the places a value may start in a file (commas, [
// and {, list dashes "- " and "? ", and a line holding none of them
// unless blank or a comment), counted before YAML reads it. yaml.v3 builds a node
// for every value before decoding counts them (maxValues), some 200 to
// 500 bytes each: 4 MiB of "a," took 500 MB and 2 s, of keys in braces
// 700 MB and 8 s, of "- - - …" or "[[[…]]]" 400 MB, in a running facade
// on a reload. Each value starts at one such place, so a file within
// maxValues is well within.
const maxItems = 2 * maxValues

// overItems reports the line by which data holds more than maxItems
// places a value may start.
func overItems(data []byte) (line int, over bool) {
	items := 0
	for line = 1; len(data) > 0; line++ {
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		marks := bytes.Count(l, []byte("- ")) + bytes.Count(l, []byte("? "))
		for _, c := range l {
			if c == ',' || c == '[' || c == '{' {
				marks++
			}
		}
		if t := bytes.TrimSpace(l); marks == 0 && len(t) > 0 && t[0] != '#' {
			marks = 1 // a line of its own: key: value
		}
		if items += marks; items > maxItems {
			return line, true
		}
	}
	return 0, false
}

// strayByteOrderMark finds a byte order mark in UTF-8 data other than one
// as its first character. yaml.v3 parses a second one right after the
// first without an error, and wrongly: it drops the first character of
// every line that starts at column 1, so a list's - vanish and its items
// become one mapping. Elsewhere it would be part of a key or a value.
func strayByteOrderMark(data []byte) (line, column int, ok bool) {
	const bom = "\uFEFF"
	rest := bytes.TrimPrefix(data, []byte(bom))
	i := bytes.Index(rest, []byte(bom))
	if i < 0 {
		return 0, 0, false
	}
	before := rest[:i]
	line = bytes.Count(before, []byte("\n")) + 1
	if nl := bytes.LastIndexByte(before, '\n'); nl >= 0 {
		before = before[nl+1:]
	} else if len(rest) < len(data) {
		column = 1 // the first one
	}
	return line, column + utf8.RuneCount(before) + 1, true
}

// printable is YAML 1.2's c-printable, as yaml.v3's reader checks it.
func printable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7E || r == 0x85 ||
		r >= 0xA0 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
