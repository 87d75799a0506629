package shadow

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"unicode/utf8"

	"strangler/config"
	"strangler/domain"
	"strangler/phi"
)

var jsonSeeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0.0e+00`, `1E2`, `"a\u00e9\ud83d\ude00\n"`,
	`{"a":[1,2,{"b":null,"c":"\"q\""}],"d":{"e":1.5e-3}}`,
	` [ 1 , [ ] , { } ] `, `{"a":1,"a":2}`, `"\ud800"`, `[01]`, `[1.]`, `{"a" 1}`, `[1,]`, "\"\x01\"",
	`123456789012345678901234567890`, `1e999999999999999999`,
}

// FuzzParse checks the parser accepts exactly what encoding/json accepts,
// and that a document compares equal to itself and to encoding/json's
// re-encoding of it (keys sorted, strings re-escaped).
func FuzzParse(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	cmp, err := NewComparer(config.Compare{}, phi.RandomHasher())
	if err != nil {
		f.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var tr tree
		err := tr.parse(data)
		if valid := json.Valid(data); valid != (err == nil) {
			t.Fatalf("json.Valid says %v, parse says %v", valid, err)
		}
		if err != nil {
			return
		}
		self := cmp.Compare(Response{Status: 200, Header: h, Body: data}, Response{Status: 200, Header: h, Body: bytes.Clone(data)})
		if self.Outcome != Match {
			t.Fatalf("a document differs from itself: %+v", self.Diffs)
		}
		if !utf8.Valid(data) || hasDuplicateKeys(&tr) {
			return // encoding/json would change the document
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		res := cmp.Compare(Response{Status: 200, Header: h, Body: data}, Response{Status: 200, Header: h, Body: again})
		if res.Outcome != Match {
			t.Fatalf("%s and its re-encoding %s differ: %+v", data, again, res.Diffs)
		}
	})
}

func hasDuplicateKeys(t *tree) bool {
	var buf []byte
	for i := range t.nodes {
		n := &t.nodes[i]
		if n.kind != kindObject {
			continue
		}
		seen := map[string]bool{}
		for c, k := int32(i)+1, 0; k < int(n.count); c, k = t.nodes[c].next, k+1 {
			buf = appendUnescaped(buf[:0], t.key(c))
			if seen[string(buf)] {
				return true
			}
			seen[string(buf)] = true
		}
	}
	return false
}

// TestParseSeesEverySpecialByteInLongStrings puts each byte that ends a
// run of plain string bytes (a quote, a backslash, a control byte) at
// every offset of strings long enough to be scanned eight bytes at a
// time, after plain bytes of every kind, and checks that the parser finds
// it: where the string ends, or that the document is invalid.
func TestParseSeesEverySpecialByteInLongStrings(t *testing.T) {
	var tr tree
	for _, plain := range []byte{'a', ' ', '!', '#', '[', ']', 0x7f, 0x80, 0xff} {
		for _, special := range []byte{'"', '\\', 0x00, 0x01, 0x1f} {
			for at := range 24 {
				text := bytes.Repeat([]byte{plain}, 24)
				text[at] = special
				doc := []byte(`["` + string(text) + `",1]`)
				err := tr.parse(doc)
				if valid := json.Valid(doc); valid != (err == nil) {
					t.Fatalf("%q: json.Valid says %v, parse says %v", doc, valid, err)
				}
				if err == nil && !bytes.Equal(tr.value(1), doc[1:len(doc)-3]) {
					t.Fatalf("%q: got the string %q, want %q", doc, tr.value(1), doc[1:len(doc)-3])
				}
			}
		}
	}
}

func TestParseTooDeep(t *testing.T) {
	deep := bytes.Repeat([]byte("["), maxDepth+1)
	var tr tree
	if err := tr.parse(deep); err != errTooDeep {
		t.Errorf("got %v, want %v", err, errTooDeep)
	}
}

func TestNumbersEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1", "1.0", true}, {"1e2", "100", true}, {"100", "1E+2", true}, {"0.001", "1e-3", true},
		{"-0", "0", true}, {"0e5", "0.000", true}, {"12.50", "1.25e1", true}, {"-1.5", "-15e-1", true},
		{"1", "-1", false}, {"1", "10", false}, {"0.1", "0.01", false}, {"123", "132", false},
		{"9007199254740993", "9007199254740992", false},
		{"1e1000000000000000000000", "1e1000000000000000000000", true},
		{"1e1000000000000000000000", "1e1000000000000000000001", false},
	} {
		if got := domain.NumbersEqual([]byte(tc.a), []byte(tc.b)); got != tc.want {
			t.Errorf("NumbersEqual(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if tc.want && hashNumber([]byte(tc.a)) != hashNumber([]byte(tc.b)) {
			t.Errorf("%s and %s are equal but hash differently", tc.a, tc.b)
		}
	}
}

// BenchmarkParse compares the parser with json.Valid, which only checks.
func BenchmarkParse(b *testing.B) {
	doc := []byte(`{"page":1,"per_page":6,"total":600,"items":[{"id":1000,"first_name":"Patient","last_name":"Number0","born":"1970-01-01","address":{"street":"Karl Johans gate 1","city":"Oslo"},"active":true},{"id":1001,"first_name":"Patient","last_name":"Number1","born":"1970-01-01","address":{"street":"Karl Johans gate 1","city":"Oslo"},"active":true},{"id":1002,"first_name":"Patient","last_name":"Number2","born":"1970-01-01","address":{"street":"Karl Johans gate 1","city":"Oslo"},"active":true},{"id":1003,"first_name":"Patient","last_name":"Number3","born":"1970-01-01","address":{"street":"Karl Johans gate 1","city":"Oslo"},"active":true},{"id":1004,"first_name":"Patient","last_name":"Number4","born":"1970-01-01","address":{"street":"Karl Johans gate 1","city":"Oslo"},"active":true},{"id":1005,"first_name":"Patient","last_name":"Number5","born":"1970-01-01","address":{"street":"Karl Johans gate 1","city":"Oslo"},"active":true}]}`)
	b.Run("tree", func(b *testing.B) {
		var t tree
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			t.parse(doc)
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			json.Valid(doc)
		}
	})
}

// FuzzCompareSymmetric checks, under ignore and unordered rules, that
// whether two documents match does not depend on which is the primary,
// and that nothing panics on any pair.
func FuzzCompareSymmetric(f *testing.F) {
	f.Add([]byte(`{"items":[1,2,{"x":1}]}`), []byte(`{"items":[{"x":2},2,1.0]}`))
	f.Add([]byte(`[[1,2],[3]]`), []byte(`[[3],[2,1]]`))
	f.Add([]byte(`{"a":{"x":1,"y":[1,1,2]}}`), []byte(`{"a":{"y":[2,1,1],"x":3}}`))
	cmp, err := NewComparer(config.Compare{
		Ignore:    []string{"x", "items[*].x", "[*].x", "a.x"},
		Unordered: []string{"items", "[*]", "[0]", "a.y"},
	}, phi.RandomHasher())
	if err != nil {
		f.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ra, rb := Response{Status: 200, Header: h, Body: a}, Response{Status: 200, Header: h, Body: b}
		ab, ba := cmp.Compare(ra, rb), cmp.Compare(rb, ra)
		if ab.Outcome != ba.Outcome {
			t.Fatalf("a vs b: %v %+v; b vs a: %v %+v", ab.Outcome, ab.Diffs, ba.Outcome, ba.Diffs)
		}
		if (ab.Outcome == Mismatch) != (len(ab.Diffs) > 0) {
			t.Fatalf("outcome %v with diffs %+v", ab.Outcome, ab.Diffs)
		}
	})
}
