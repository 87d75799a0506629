package shadow

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"strangler/config"
	"strangler/phi"
)

// matchPairs are seeds for FuzzFastPathAgrees: pairs that are equal under
// the comparison's rules but not byte for byte, pairs that differ in one
// value, and bodies that are not JSON at all.
var matchPairs = [][2]string{
	{`{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`},
	{`[1, 1.0, 1e0, 10E-1, -0, 0, 12345678901234567890123]`, `[1.0,1,1,1,0,-0.0,12345678901234567890123]`},
	{`[12345678901234567890123]`, `[12345678901234567890124]`},
	{`[1e400]`, `[1e400]`}, {`[1e400]`, `[10e399]`}, {`[1e999999999999999999]`, `[1e999999999999999999 ]`},
	{`{"a":1,"a":2}`, `{"a":2,"a":1}`}, {`{"a":1,"a":2}`, `{"a":1,"a":2,"a":3}`},
	{`{"z":0,"x":1,"x":2}`, `{"x":2,"z":0,"x":1}`}, {`{"x":1,"x":2,"z":0}`, `{"z":0,"x":1,"x":2}`},
	{`{"a\u0062":1,"ab":2}`, `{"ab":2,"ab":1}`}, {`{"\u00e9":"\u00e9"}`, `{"é":"é"}`}, {`{"e":"\u00e9"}`, `{"e":"e\u0301"}`},
	{`["\ud83d\ude00","\ud800"]`, `["😀","\ufffd"]`}, {`{"a\/b":"\/"}`, `{"a/b":"/"}`},
	{`{"items":[{"id":1,"tags":["x","y"]},{"id":2,"tags":[]}]}`, `{"items":[{"tags":[],"id":2},{"tags":["y","x"],"id":1}]}`},
	{`{"items":[[1,2],[3]],"a":[[1],[1,2]]}`, `{"a":[[1,2],[1]],"items":[[3],[2,1]]}`},
	{`{"items":[{"id":1,"etag":"a"}],"updated_at":1}`, `{"updated_at":2,"items":[{"etag":"b","id":1}]}`},
	{`{"visits":{"v1":{"seen_at":1,"n":2}}}`, `{"visits":{"v1":{"n":2,"seen_at":3}}}`},
	{`{"a":[0,1,2]}`, `{"a":[0,9,2,7]}`}, {`{"a":[0,1]}`, `{"a":[0]}`},
	{`{"a":1}`, `{"a":1`}, {`{"a":[1,2]}`, `{"a":[1,2]`}, {`[1,2]`, `[1,2] x`}, {`[1,2]`, `[1,2,]`},
	{` { "a" : [ true , false , null ] } `, `{"a":[true,false,null]}`},
	{`{"a":true}`, `{"a":"true"}`}, {`{"a":null}`, `{}`}, {`[[[[]]]]`, `[[[[{}]]]]`},
	{`not json`, `not json `}, {``, `{}`}, {`"x"`, `"x"`},
	{`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18,"k19":19,"k20":20,"k21":21,"k22":22,"k23":23,"k24":24,"k25":25,"k26":26,"k27":27,"k28":28,"k29":29,"k30":30,"k31":31,"k32":32}`,
		`{"k32":32,"k31":31,"k30":30,"k29":29,"k28":28,"k27":27,"k26":26,"k25":25,"k24":24,"k23":23,"k22":22,"k21":21,"k20":20,"k19":19,"k18":18,"k17":17,"k16":16,"k15":15,"k14":14,"k13":13,"k12":12,"k11":11,"k10":10,"k9":9,"k8":8,"k7":7,"k6":6,"k5":5,"k4":4,"k3":3,"k2":2,"k1":1,"k0":0}`},
}

// matchRules are the compare sections FuzzFastPathAgrees compares under.
var matchRules = []config.Compare{
	{},
	{Ignore: []string{"updated_at", "items[*].etag", "visits{*}.seen_at", "a[1]", "a[3]"}},
	{Unordered: []string{"items", "a", "items[*].tags", "items[*]"}},
	{Ignore: []string{"items[*].etag", "a[*].x"}, Unordered: []string{"items", "a"}},
}

// FuzzFastPathAgrees checks that the single pass over the other's body
// (matchDoc) decides as the trees do: a Comparer using it gives exactly
// the Result of one that always walks the trees, for any pair of bodies,
// content types and captures cut short, under every rule set; and its
// verdict on JSON bodies is the trees' verdict.
//
// The fuzzer's other body is taken as it is, or is the primary's written
// again in another form (members reversed, whitespace, escapes) and then
// maybe edited by one byte, so that most pairs are equal without being
// the same bytes: the case the single pass is there for.
func FuzzFastPathAgrees(f *testing.F) {
	for i, p := range matchPairs {
		f.Add([]byte(p[0]), []byte(p[1]), uint8(i), uint8(0), uint8(0))
		f.Add([]byte(p[0]), []byte(p[1]), uint8(i+1), uint8(0x10), uint8(1))
		f.Add([]byte(p[0]), []byte{}, uint8(i+2), uint8(0), uint8(2))
		f.Add([]byte(p[0]), []byte{3, '7'}, uint8(i+3), uint8(0), uint8(3))
	}
	f.Add([]byte(`{"a":1}`), []byte(`{"a":1}`), uint8(0), uint8(0x80), uint8(0))   // the other cut short
	f.Add([]byte(`{"a":1}`), []byte(`{"a":1.0}`), uint8(0), uint8(0x02), uint8(0)) // text/plain against JSON
	f.Add([]byte(`{"a":1}`), []byte(`{"a":1.0}`), uint8(0), uint8(0x11), uint8(0)) // +json both
	// An object too large for the single pass to pair its members.
	var large []string
	for k := range maxMatchedMembers + 1 {
		large = append(large, fmt.Sprintf(`"k%d":%d`, k, k))
	}
	f.Add([]byte("{"+strings.Join(large, ",")+"}"), []byte{}, uint8(0), uint8(0), uint8(1))
	f.Add([]byte(`{"a":{`+strings.Join(large, ",")+`}}`), []byte{5, '9'}, uint8(0), uint8(0), uint8(3))
	// An ignored value nested as deep as the parser takes, one level too
	// deep for the document it is in.
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	f.Add([]byte(`{"updated_at":1}`), []byte(`{"updated_at":`+deep+`}`), uint8(1), uint8(0), uint8(0))
	h := phi.NewHasher(&[phi.KeySize]byte{7})
	type pair struct{ fast, trees *Comparer }
	var cmps []pair
	for _, rules := range matchRules {
		fast, err := NewComparer(rules, h)
		if err != nil {
			f.Fatal(err)
		}
		trees, _ := NewComparer(rules, h)
		trees.treesOnly = true
		cmps = append(cmps, pair{fast, trees})
	}
	types := []string{"application/json", "application/problem+json; charset=utf-8", "text/plain", ""}
	header := func(k uint8) http.Header {
		if t := types[k%4]; t != "" {
			return http.Header{"Content-Type": {t}}
		}
		return http.Header{}
	}
	f.Fuzz(func(t *testing.T, a, b []byte, rules, kinds, mode uint8) {
		b = otherBody(a, b, mode)
		c := cmps[int(rules)%len(cmps)]
		p := Response{Status: 200, Header: header(kinds), Body: a, Truncated: kinds&0x40 != 0}
		o := Response{Status: 200, Header: header(kinds >> 4), Body: b, Truncated: kinds&0x80 != 0}
		got, want := c.fast.Compare(p, o), c.trees.Compare(p, o)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q against %q (%s, %s): the single pass gives %+v, the trees %+v",
				a, b, p.Header, o.Header, got, want)
		}

		w := c.fast.walker()
		defer c.fast.release(w)
		w.reset(c.fast.red, MaxDiffs, false)
		paths := c.fast.base.paths
		if w.a.parse(a) != nil {
			return
		}
		fast := w.matchDoc(b, paths)
		if trees := w.b.parse(b) == nil && w.same(0, 0, paths); fast != trees {
			t.Fatalf("%q against %q: the single pass says equal=%v, the trees equal=%v", a, b, fast, trees)
		}
	})
}

// otherBody is the other's body for FuzzFastPathAgrees: b as it is (mode
// 0), or a written again (otherwise) with its members in reverse order,
// with spaces (mode 2) and escaped (mode 3), then the byte at b[0] set to
// b[1] when b has two bytes.
func otherBody(a, b []byte, mode uint8) []byte {
	if mode%4 == 0 {
		return b
	}
	var t tree
	if t.parse(a) != nil {
		return b
	}
	out := rewrite(nil, &t, 0, mode%4)
	if len(b) >= 2 && len(out) > 0 {
		out[int(b[0])%len(out)] = b[1]
	}
	return out
}

// rewrite writes node i of t with object members in reverse order, and
// spaces between tokens (style 2) or every key and string escaped
// (style 3).
func rewrite(dst []byte, t *tree, i int32, style uint8) []byte {
	n := &t.nodes[i]
	sep := ""
	if style == 2 {
		sep = " "
	}
	switch n.kind {
	case kindString:
		return rewriteString(dst, t.str(i), style)
	case kindObject, kindArray:
		var kids []int32
		for c, k := i+1, int32(0); k < n.count; c, k = t.nodes[c].next, k+1 {
			kids = append(kids, c)
		}
		open, close := "[", "]"
		if n.kind == kindObject {
			open, close = "{", "}"
			for l, r := 0, len(kids)-1; l < r; l, r = l+1, r-1 {
				kids[l], kids[r] = kids[r], kids[l]
			}
		}
		dst = append(dst, open+sep...)
		for k, c := range kids {
			if k > 0 {
				dst = append(dst, sep+","+sep...)
			}
			if n.kind == kindObject {
				dst = rewriteString(dst, t.key(c), style)
				dst = append(dst, sep+":"+sep...)
			}
			dst = rewrite(dst, t, c, style)
		}
		return append(dst, sep+close...)
	}
	return append(dst, t.value(i)...)
}

// rewriteString writes the string whose escaped content is s, as it was
// or, in style 3, every rune of it as a \u escape.
func rewriteString(dst, s []byte, style uint8) []byte {
	if style != 3 {
		return append(append(append(dst, '"'), s...), '"')
	}
	var b strings.Builder
	for _, r := range string(appendUnescaped(nil, s)) {
		if r > 0xffff {
			r1, r2 := r>>10-0x40+0xd800, r&0x3ff+0xdc00
			b.WriteString(hexEscape(r1) + hexEscape(r2))
			continue
		}
		b.WriteString(hexEscape(r))
	}
	return append(append(append(dst, '"'), b.String()...), '"')
}

func hexEscape(r rune) string {
	const digits = "0123456789abcdef"
	return string([]byte{'\\', 'u', digits[r>>12&0xf], digits[r>>8&0xf], digits[r>>4&0xf], digits[r&0xf]})
}

// TestTheSinglePassIsTriedNowAndThenWhileAnswersKeepDiffering: a route
// whose answers all differ (a field modern adds) pays for the single pass
// in one comparison out of passEvery once passAfter differed in a row,
// and an equal answer makes it tried every time again.
func TestTheSinglePassIsTriedNowAndThenWhileAnswersKeepDiffering(t *testing.T) {
	c, err := NewComparer(config.Compare{}, phi.NewHasher(&[phi.KeySize]byte{7}))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	p := Response{Status: 200, Header: h, Body: []byte(`{"id":1,"name":"Ann"}`)}
	differs := Response{Status: 200, Header: h, Body: []byte(`{"name":"Ann","id":1,"added":true}`)}
	equal := Response{Status: 200, Header: h, Body: []byte(`{"name":"Ann","id":1}`)}
	tried := 0
	for range passAfter + 4*passEvery {
		if c.tryPass() {
			tried++
		}
		if c.Compare(p, differs).Outcome != Mismatch {
			t.Fatal("want a mismatch")
		}
	}
	if want := passAfter + 4; tried != want {
		t.Errorf("the pass was tried in %d of %d differing comparisons, want %d", tried, passAfter+4*passEvery, want)
	}
	if c.Compare(p, equal).Outcome != Match {
		t.Fatal("want a match")
	}
	for range passAfter {
		if !c.tryPass() {
			t.Fatal("after an equal answer the pass is not tried")
		}
		c.Compare(p, equal)
	}
}
