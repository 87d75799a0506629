package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// KeptHeader reports whether a keep_values entry names a response header
// (header.Name) rather than a JSON field, and which.
func KeptHeader(entry string) (string, bool) { return strings.CutPrefix(entry, "header.") }

// FieldPath is a parsed field path: the steps from the root of a JSON
// document to the values it names.
type FieldPath []PathStep

// Find returns the scalar at p in a JSON document as text: a string as it
// is, a number in its canonical spelling (AppendCanonical: 1, 1.0 and 1e0
// are all "1", as NumbersEqual finds them equal), a boolean as true or
// false. It reports false
// when the document is not JSON, p is not there, p has a [*] step, or the
// value there is an object, an array or null.
func (p FieldPath) Find(doc []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return "", false
	}
	for _, step := range p {
		switch step.Kind {
		case StepKey:
			obj, ok := v.(map[string]any)
			if !ok {
				return "", false
			}
			v = obj[step.Key]
		case StepIndex:
			arr, ok := v.([]any)
			if !ok || step.Index >= len(arr) {
				return "", false
			}
			v = arr[step.Index]
		default:
			return "", false
		}
	}
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return string(ParseNumber([]byte(v)).AppendCanonical(nil, []byte(v))), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// PathStep is one step of a FieldPath.
type PathStep struct {
	Kind StepKind
	// Key is the object key of a StepKey step.
	Key string
	// Index is the array index of a StepIndex step.
	Index int
}

// StepKind says what a PathStep selects.
type StepKind uint8

// The kinds of path steps.
const (
	// StepKey selects the value of an object key: .name or ["a.b"].
	StepKey StepKind = iota
	// StepIndex selects one array element: [3].
	StepIndex
	// StepAny selects every array element: [*].
	StepAny
	// StepAnyKey selects every member of an object: {*}. It is how a
	// path that leaves the process writes a key that is data (a record
	// number keying a map), and how compare paths name such maps.
	StepAnyKey
)

// anyKey is how a StepAnyKey step is written.
const anyKey = "{*}"

// maxPathIndex keeps [n] within any real array and within int on every
// platform.
const maxPathIndex = 1 << 30

// ParseFieldPath parses a field path like items[*].etag, [0].id,
// meta["trace.id"] or visits{*}.date.
func ParseFieldPath(s string) (FieldPath, error) {
	if s == "" {
		return nil, errors.New("empty field path")
	}
	bad := func(format string, args ...any) (FieldPath, error) {
		return nil, fmt.Errorf("invalid field path %q: %s", s, fmt.Sprintf(format, args...))
	}
	var path FieldPath
	for i := 0; i < len(s); {
		switch {
		case s[i] == '[':
			step, n, err := parseBracket(s[i:])
			if err != nil {
				return bad("%v", err)
			}
			path = append(path, step)
			i += n
		case strings.HasPrefix(s[i:], anyKey):
			path = append(path, PathStep{Kind: StepAnyKey})
			i += len(anyKey)
		case i > 0 && s[i] != '.':
			return bad("want . or [ after %q", s[:i])
		default:
			if i > 0 {
				i++ // the dot
			}
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' && !strings.HasPrefix(s[j:], anyKey) {
				j++
			}
			key := s[i:j]
			if key == "" {
				return bad("empty key at offset %d; quote an empty or odd key as [\"…\"]", i)
			}
			if !isPlainKey(key) {
				return bad("key %q needs quoting as [%s]", key, strconv.Quote(key))
			}
			path = append(path, PathStep{Kind: StepKey, Key: key})
			i = j
		}
	}
	return path, nil
}

// parseBracket parses one [*], [n] or ["key"] at the start of s and
// returns how many bytes it took.
func parseBracket(s string) (PathStep, int, error) {
	end := strings.IndexByte(s, ']')
	if len(s) > 1 && s[1] == '"' {
		// A quoted key may itself hold a ]: find the closing quote first.
		q := 2
		for q < len(s) && s[q] != '"' {
			if s[q] == '\\' {
				q++
			}
			q++
		}
		if q+1 >= len(s) || s[q+1] != ']' {
			return PathStep{}, 0, errors.New(`want "] after a quoted key`)
		}
		var key string
		if err := json.Unmarshal([]byte(s[1:q+1]), &key); err != nil {
			return PathStep{}, 0, fmt.Errorf("bad quoted key %s", s[1:q+1])
		}
		return PathStep{Kind: StepKey, Key: key}, q + 2, nil
	}
	if end < 0 {
		return PathStep{}, 0, errors.New("unclosed [")
	}
	inner := s[1:end]
	if inner == "*" {
		return PathStep{Kind: StepAny}, end + 1, nil
	}
	n, err := strconv.Atoi(inner)
	if err != nil || n < 0 || n > maxPathIndex || inner[0] == '+' {
		return PathStep{}, 0, fmt.Errorf("want [*], [n] or [\"key\"], got [%s]", inner)
	}
	return PathStep{Kind: StepIndex, Index: n}, end + 1, nil
}

// isPlainKey reports whether key can be written without quotes in a path.
func isPlainKey(key string) bool {
	if key == "" || !utf8.ValidString(key) {
		return false
	}
	for _, r := range key {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`.[]"\`, r) {
			return false
		}
	}
	return !strings.Contains(key, anyKey)
}

// String writes the path the way ParseFieldPath reads it.
func (p FieldPath) String() string {
	var b strings.Builder
	for i, step := range p {
		switch step.Kind {
		case StepAny:
			b.WriteString("[*]")
		case StepAnyKey:
			b.WriteString(anyKey)
		case StepIndex:
			b.WriteString("[" + strconv.Itoa(step.Index) + "]")
		default:
			if !isPlainKey(step.Key) {
				q, _ := json.Marshal(step.Key)
				b.WriteString("[" + string(q) + "]")
				continue
			}
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(step.Key)
		}
	}
	return b.String()
}
