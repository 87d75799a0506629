package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"strangler/edge/canonical"
)

// Match is a route's request pattern: an optional method and a path whose
// segments may be {param}, {param:regexp} or, last, the wildcard *.
type Match struct {
	// Method is the request method, or "" for every method. A GET pattern
	// also matches HEAD unless another route names HEAD for the same path.
	Method string
	// Path is the path pattern in chi syntax.
	Path string
}

// routableMethods are the methods a route can name: the RFC 9110 methods
// and PATCH, without CONNECT and TRACE, which the facade never lets
// through. Methods in allow_methods reach the routes that name no method.
var routableMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// UnmarshalText parses "METHOD /path" or "/path".
func (m *Match) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	method, path, hasMethod := strings.Cut(s, " ")
	if !hasMethod {
		method, path = "", s
	}
	path = strings.TrimSpace(path)
	if method == "CONNECT" || method == "TRACE" {
		return fmt.Errorf("invalid match %q: %s is never let through", s, method)
	}
	if hasMethod && !slices.Contains(routableMethods, method) {
		return fmt.Errorf("invalid match %q: unsupported method %q; want one of %s (a method from allow_methods reaches the routes that name none)", s, method, strings.Join(routableMethods, ", "))
	}
	if err := checkPattern(path); err != nil {
		return fmt.Errorf("invalid match %q: %w", s, err)
	}
	*m = Match{Method: method, Path: path}
	return nil
}

// MarshalText writes the match the way it is parsed.
func (m Match) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

func (m Match) String() string {
	if m.Method == "" {
		return m.Path
	}
	return m.Method + " " + m.Path
}

// Shape is the pattern with parameter names dropped: two patterns with the
// same shape match exactly the same paths.
func (m Match) Shape() string {
	var b strings.Builder
	for _, seg := range splitParams(m.Path) {
		if seg.param {
			b.WriteString("{:" + seg.regexp + "}")
		} else {
			b.WriteString(seg.text)
		}
	}
	return b.String()
}

// Folded is the pattern with its literal text folded as
// canonical.FoldLiteral folds a path, its parameters as written, and its
// ends read as canonical.LooseEnds reads a path's: so that a route for
// GET /export.csv beside one for GET /export serves its own spelling.
func (m Match) Folded() Match {
	var b strings.Builder
	for _, seg := range splitParams(m.Path) {
		if seg.param {
			b.WriteString(seg.raw)
		} else {
			b.WriteString(canonical.FoldLiteral(seg.text))
		}
	}
	return Match{Method: m.Method, Path: canonical.LooseEnds(b.String())}
}

// Params are the names of the pattern's parameters, in order.
func (m Match) Params() []string {
	var names []string
	for _, p := range splitParams(m.Path) {
		if p.param {
			names = append(names, p.text)
		}
	}
	return names
}

// Template is the pattern as an OpenAPI path template, /patients/{id},
// and its parameters, each with the regexp it must match ("" for any
// segment). A trailing * becomes the parameter {path}, matching the rest.
func (m Match) Template() (string, []Param) {
	var b strings.Builder
	var params []Param
	for _, seg := range splitParams(m.Path) {
		switch {
		case seg.param:
			b.WriteString("{" + seg.text + "}")
			params = append(params, Param{Name: seg.text, Regexp: seg.regexp})
		case strings.HasSuffix(seg.text, "*"):
			b.WriteString(strings.TrimSuffix(seg.text, "*") + "{path}")
			params = append(params, Param{Name: "path", Regexp: ".*"})
		default:
			b.WriteString(seg.text)
		}
	}
	return b.String(), params
}

// Param is a path parameter of a pattern.
type Param struct {
	Name, Regexp string
}

// Overlaps reports whether some request matches both patterns with the same
// method: same shape and a method in common.
func (m Match) Overlaps(o Match) bool {
	sameMethod := m.Method == o.Method || m.Method == "" || o.Method == ""
	return sameMethod && m.Shape() == o.Shape()
}

// MayOverlap reports whether some request may match both patterns with a
// method in common, erring towards yes: a parameter may match any
// segment, whatever its regexp and whatever literal text shares its
// segment, and a trailing * any rest of the path.
func (m Match) MayOverlap(o Match) bool {
	sameMethod := m.Method == o.Method || m.Method == "" || o.Method == ""
	return sameMethod && segmentsMayOverlap(looseSegments(m.Folded().Path), looseSegments(o.Folded().Path))
}

// anySegment stands for a segment holding a parameter in looseSegments.
const anySegment = "\x00"

// looseSegments splits a pattern into its segments, each holding a
// parameter as anySegment; a trailing wildcard stays "*".
func looseSegments(p string) []string {
	var b strings.Builder
	for _, seg := range splitParams(p) {
		if seg.param {
			b.WriteString(anySegment)
		} else {
			b.WriteString(seg.text)
		}
	}
	segs := strings.Split(b.String(), "/")
	for i, s := range segs {
		if strings.Contains(s, anySegment) {
			segs[i] = anySegment
		}
	}
	return segs
}

// segmentsMayOverlap reports whether some path may match both patterns'
// looseSegments.
func segmentsMayOverlap(a, b []string) bool {
	for i := 0; ; i++ {
		switch {
		case i == len(a) && i == len(b):
			return true
		case i == len(a)-1 && a[i] == "*", i == len(b)-1 && b[i] == "*":
			return true
		case i >= len(a) || i >= len(b):
			return false
		case a[i] != b[i] && a[i] != anySegment && b[i] != anySegment:
			return false
		}
	}
}

type patternPart struct {
	text   string // literal text, or the param name when param is set
	param  bool
	regexp string
	raw    string // the part as written, braces included
}

// splitParams splits a pattern already accepted by checkPattern into
// literal text and {params}.
func splitParams(p string) []patternPart {
	var parts []patternPart
	for p != "" {
		i := strings.IndexByte(p, '{')
		if i < 0 {
			parts = append(parts, patternPart{text: p})
			break
		}
		if i > 0 {
			parts = append(parts, patternPart{text: p[:i]})
		}
		end := closingBrace(p, i)
		name, re, _ := strings.Cut(p[i+1:end], ":")
		parts = append(parts, patternPart{text: name, param: true, regexp: re, raw: p[i : end+1]})
		p = p[end+1:]
	}
	return parts
}

// closingBrace returns the index of the brace closing the one at open,
// counting nested braces inside a regexp such as {id:[0-9]{3}}, or -1.
func closingBrace(p string, open int) int {
	depth := 0
	for i := open; i < len(p); i++ {
		switch p[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// checkPattern enforces the path syntax the router (chi) accepts, so that a
// pattern that passes `config check` can never be refused at serve time.
func checkPattern(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path must start with /")
	}
	if strings.ContainsAny(p, "?# \t") {
		return fmt.Errorf("path may not contain a query, fragment or space")
	}
	seen := map[string]bool{}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*':
			if i != len(p)-1 || p[i-1] != '/' {
				return fmt.Errorf("the wildcard * may only end the path, as /*")
			}
		case '}':
			return fmt.Errorf("unmatched } in path")
		case '{':
			end := closingBrace(p, i)
			if end < 0 {
				return fmt.Errorf("unclosed { in path")
			}
			name, re, hasRe := strings.Cut(p[i+1:end], ":")
			if !IsParamName(name) {
				return fmt.Errorf("invalid parameter name %q; use letters, digits and _", name)
			}
			if seen[name] {
				return fmt.Errorf("parameter {%s} appears twice", name)
			}
			seen[name] = true
			if hasRe {
				if re == "" || strings.ContainsRune(re, '/') {
					return fmt.Errorf("parameter {%s} has an empty regexp or one with /", name)
				}
				if _, err := regexp.Compile(re); err != nil {
					return fmt.Errorf("parameter {%s}: %w", name, err)
				}
			}
			if end+1 < len(p) && p[end+1] == '{' {
				return fmt.Errorf("parameters {%s} and the next one need text between them", name)
			}
			i = end
		}
	}
	return checkCanonical(p)
}

// IsParamName reports whether s can name a route parameter or, in a
// ${VAR} placeholder, an environment variable: a letter or _, then
// letters, digits and _.
func IsParamName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// checkCanonical refuses literal text that no request could match: requests
// are routed on their canonical path (edge/canonical), so a pattern must be
// written in that form too, and without a trailing slash, which routing
// ignores.
func checkCanonical(p string) error {
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		return fmt.Errorf("a trailing slash does not change the route: write %s", strings.TrimSuffix(p, "/"))
	}
	// Parameters stand in as placeholders canonicalization keeps as they
	// are, so that the canonical spelling can be offered with them back.
	var literal strings.Builder
	var params []string
	for _, part := range splitParams(p) {
		if part.param {
			fmt.Fprintf(&literal, "~~%d~~", len(params))
			params = append(params, part.raw)
		} else {
			literal.WriteString(part.text)
		}
	}
	c, err := canonical.Canonicalize(literal.String())
	switch {
	case err != nil:
		return fmt.Errorf("no request can match it: %w", err)
	case c.EncodedSlash:
		return fmt.Errorf("%%2F cannot be matched literally; allow_encoded_slash lets it through inside parameters")
	case c.Escaped == literal.String():
		return nil
	}
	want := c.Escaped
	for i, param := range params {
		if strings.Count(want, fmt.Sprintf("~~%d~~", i)) != 1 {
			return fmt.Errorf("requests are routed on their canonical path, which no request matching this can have")
		}
		want = strings.Replace(want, fmt.Sprintf("~~%d~~", i), param, 1)
	}
	return fmt.Errorf("requests are routed on their canonical path: write %s", want)
}
