package domain_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"

	"strangler/domain"
)

// FuzzFieldPathFind checks id_field extraction against documents
// encoding/json writes: a scalar put at a path in a document is what
// Find returns for that path, as text (a string as it is, a number in its
// canonical spelling, a boolean as true or false); an object, an array, null or a
// [*] step is not found. Find on any input never panics and finds nothing
// in what is not JSON.
func FuzzFieldPathFind(f *testing.F) {
	for _, seed := range [][3]string{
		{"id", `"42"`, `{}`},
		{"data.id", `42`, `{"data":{"id":1}}`},
		{"items[0].id", `"a\u00e9\n"`, `[1,2]`},
		{`meta["trace.id"]`, `true`, `not json`},
		{"[2]", `-1.5e+10`, `[0,1]`},
		{"a.b.c", `{"x":1}`, `{"a":{"b":{"c":{"x":1}}}}`},
		{"a[*].id", `"x"`, `{"a":[{"id":"x"}]}`},
		{`[""]`, `null`, `{"":null}`},
		{"id", `"<&>"`, `{"id":"x","id":"y"}`},
	} {
		f.Add(seed[0], seed[1], []byte(seed[2]))
	}
	f.Fuzz(func(t *testing.T, path, literal string, doc []byte) {
		p, err := domain.ParseFieldPath(path)
		if err != nil {
			return
		}
		if got, ok := p.Find(doc); ok && !json.Valid(doc) {
			t.Fatalf("Find(%s) found %q in %q, which is not JSON", path, got, doc)
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(literal)))
		dec.UseNumber()
		var value any
		if dec.Decode(&value) != nil || dec.More() {
			return
		}
		want, found := "", true
		switch v := value.(type) {
		case string:
			if !utf8.ValidString(v) {
				return // encoding/json would not write it as it is
			}
			want = v
		case json.Number:
			want = string(domain.ParseNumber([]byte(v)).AppendCanonical(nil, []byte(v)))
		case bool:
			want = strconv.FormatBool(v)
		default:
			found = false
		}
		built, ok := place(p, value)
		if !ok {
			return
		}
		for _, step := range p {
			if step.Kind == domain.StepAny {
				want, found = "", false
			}
		}
		b, err := json.Marshal(built)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.Find(b)
		if ok != found || got != want {
			t.Fatalf("Find(%s) in %s = %q, %v; want %q, %v", path, b, got, ok, want, found)
		}
	})
}

// place returns a document holding value at p, with other members and
// elements around it; false when p's indices are too large to build.
func place(p domain.FieldPath, value any) (any, bool) {
	if len(p) == 0 {
		return value, true
	}
	child, ok := place(p[1:], value)
	if !ok {
		return nil, false
	}
	switch s := p[0]; s.Kind {
	case domain.StepKey:
		obj := map[string]any{s.Key: child}
		if s.Key != "other" {
			obj["other"] = "x"
		}
		return obj, true
	case domain.StepIndex:
		if s.Index > 1000 {
			return nil, false
		}
		arr := make([]any, s.Index+2)
		arr[s.Index] = child
		return arr, true
	default: // [*]
		return []any{child, child}, true
	}
}
