package shadow

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzParseValues checks the comparison's JSON parser against
// encoding/json value by value: for every document both accept, the tree
// read back (strings unescaped, numbers as written, the last of
// duplicate keys) is the value encoding/json decodes.
func FuzzParseValues(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"a\u0000b":"\u0000","\ud83d\ude00":"\udc00\ud800x","k":[{"k":{}}],"k":1}`,
		`["\"\\\/\b\f\n\r\t", "\u00e9", "é", -0, 1e-7, 123456789012345678901234567890e-30]`,
		`{"":""}`, `[[[[]]],{}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var tr tree
		if tr.parse(data) != nil || !utf8.Valid(data) {
			return // invalid UTF-8 encoding/json replaces, the comparison keeps
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("the parser takes %q, encoding/json refuses it: %v", data, err)
		}
		if got := tr.toValue(0); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s reads as %#v, encoding/json as %#v", data, got, want)
		}
	})
}

// toValue is node i as encoding/json would decode it with UseNumber.
func (t *tree) toValue(i int32) any {
	n := &t.nodes[i]
	switch n.kind {
	case kindNull:
		return nil
	case kindTrue:
		return true
	case kindFalse:
		return false
	case kindNumber:
		return json.Number(t.value(i))
	case kindString:
		return string(appendUnescaped(nil, t.str(i)))
	case kindObject:
		m := map[string]any{}
		for c, k := i+1, int32(0); k < n.count; c, k = t.nodes[c].next, k+1 {
			m[string(appendUnescaped(nil, t.key(c)))] = t.toValue(c)
		}
		return m
	}
	a := []any{}
	for c, k := i+1, int32(0); k < n.count; c, k = t.nodes[c].next, k+1 {
		a = append(a, t.toValue(c))
	}
	return a
}
