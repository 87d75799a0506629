package shadow_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"strangler/config"
	"strangler/phi"
	"strangler/shadow"
)

// testKey makes hashes repeatable within a test run.
var testHasher = phi.NewHasher(&[phi.KeySize]byte{1, 2, 3})

func jsonResponse(status int, body string) shadow.Response {
	return shadow.Response{
		Status: status,
		Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		Body:   []byte(body),
	}
}

func newComparer(t testing.TB, c config.Compare) *shadow.Comparer {
	t.Helper()
	cmp, err := shadow.NewComparer(c, testHasher)
	if err != nil {
		t.Fatal(err)
	}
	return cmp
}

func paths(r shadow.Result) []string {
	var ps []string
	for _, d := range r.Diffs {
		ps = append(ps, d.Path)
	}
	return ps
}

func TestCompareJSON(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cfg            config.Compare
		primary, other string
		want           []string // differing paths; none means a match
	}{
		{name: "equal JSON in a different key order matches",
			primary: `{"id":1,"name":"Ann","address":{"city":"Oslo","zip":"0150"}}`,
			other:   `{"address":{"zip":"0150","city":"Oslo"},"name":"Ann","id":1}`},
		{name: "whitespace makes no difference",
			primary: `{"a":[1,2,{"b":null}]}`,
			other:   " {\n  \"a\" : [ 1 , 2 , { \"b\" : null } ]\n}\n"},
		{name: "1.0 and 1 are the same number",
			primary: `{"n":1.0}`, other: `{"n":1}`},
		{name: "1e2 and 100 are the same number",
			primary: `{"n":1e2}`, other: `{"n":100}`},
		{name: "0 and -0.0 are the same number",
			primary: `{"n":0}`, other: `{"n":-0.0}`},
		{name: "big integers compare exactly",
			primary: `{"n":9007199254740993}`, other: `{"n":9007199254740992}`,
			want: []string{"n"}},
		{name: "1 and \"1\" differ",
			primary: `{"n":1}`, other: `{"n":"1"}`, want: []string{"n"}},
		{name: "escapes in strings and keys make no difference",
			primary: `{"caf\u00e9":"\u0041nn"}`, other: `{"café":"Ann"}`},
		{name: "a real difference is reported at its exact path",
			primary: `{"items":[{"name":"a"},{"name":"b"},{"name":"c"}],"address":{"city":"Oslo"}}`,
			other:   `{"items":[{"name":"a"},{"name":"b"},{"name":"x"}],"address":{"city":"Bergen"}}`,
			want:    []string{"items[2].name", "address.city"}},
		{name: "duplicate keys pair up in order of appearance, whatever the order of the others",
			primary: `{"z":0,"x":1,"x":2}`, other: `{"x":2,"z":0,"x":1}`, want: []string{"x", "x"}},
		{name: "a duplicate key spelled with an escape pairs up in order of appearance too",
			primary: `{"a\u0062":1,"ab":2}`, other: `{"ab":2,"ab":1}`, want: []string{"ab", "ab"}},
		{name: "duplicate keys with the same values in order match",
			primary: `{"z":0,"x":1,"x":2}`, other: `{"x":1,"z":0,"x":2}`},
		{name: "a key only one side has is reported",
			primary: `{"a":1,"b":2}`, other: `{"a":1,"c":3}`, want: []string{"b", "c"}},
		{name: "a longer array is reported at the extra index",
			primary: `{"tags":["a","b"]}`, other: `{"tags":["a","b","c"]}`, want: []string{"tags[2]"}},
		{name: "an ignored top-level field that differs matches",
			cfg:     config.Compare{Ignore: []string{"updated_at"}},
			primary: `{"id":1,"updated_at":"2024-01-01"}`, other: `{"id":1,"updated_at":"2025-06-30"}`},
		{name: "an ignored field present on one side only matches",
			cfg:     config.Compare{Ignore: []string{"updated_at"}},
			primary: `{"id":1,"updated_at":"2024-01-01"}`, other: `{"id":1}`},
		{name: "an ignored field in every array element matches",
			cfg:     config.Compare{Ignore: []string{"items[*].etag"}},
			primary: `{"items":[{"id":1,"etag":"x"},{"id":2,"etag":"y"}]}`,
			other:   `{"items":[{"id":1,"etag":"p"},{"id":2,"etag":"q"}]}`},
		{name: "an ignored field does not hide a difference next to it",
			cfg:     config.Compare{Ignore: []string{"items[*].etag"}},
			primary: `{"items":[{"id":1,"etag":"x"},{"id":2,"etag":"y"}]}`,
			other:   `{"items":[{"id":1,"etag":"p"},{"id":3,"etag":"q"}]}`,
			want:    []string{"items[1].id"}},
		{name: "an index path ignores that element only",
			cfg:     config.Compare{Ignore: []string{"items[0].etag"}},
			primary: `{"items":[{"etag":"x"},{"etag":"y"}]}`,
			other:   `{"items":[{"etag":"p"},{"etag":"q"}]}`,
			want:    []string{"items[1].etag"}},
		{name: "a quoted key path ignores a key with a dot",
			cfg:     config.Compare{Ignore: []string{`meta["trace.id"]`}},
			primary: `{"meta":{"trace.id":"a"}}`, other: `{"meta":{"trace.id":"b"}}`},
		{name: "a root array path ignores in every element",
			cfg:     config.Compare{Ignore: []string{"[*].etag"}},
			primary: `[{"id":1,"etag":"a"}]`, other: `[{"id":1,"etag":"b"}]`},
		{name: "a permuted unordered array matches",
			cfg:     config.Compare{Unordered: []string{"tags"}},
			primary: `{"tags":["a","b","c","b"]}`, other: `{"tags":["b","c","b","a"]}`},
		{name: "an unordered array is a multiset, not a set",
			cfg:     config.Compare{Unordered: []string{"tags"}},
			primary: `{"tags":["a","b","b"]}`, other: `{"tags":["a","a","b"]}`,
			want: []string{"tags[1]"}},
		{name: "a permuted unordered array of objects matches",
			cfg:     config.Compare{Unordered: []string{"items"}},
			primary: `{"items":[{"id":1,"tags":["x","y"]},{"id":2,"tags":[]},{"id":3,"tags":["z"]}]}`,
			other:   `{"items":[{"tags":["z"],"id":3},{"id":1,"tags":["x","y"]},{"tags":[],"id":2.0}]}`},
		{name: "an unordered array with one element changed names the element's field",
			cfg:     config.Compare{Unordered: []string{"items"}},
			primary: `{"items":[{"id":1,"name":"a"},{"id":2,"name":"b"},{"id":3,"name":"c"}]}`,
			other:   `{"items":[{"id":3,"name":"c"},{"id":1,"name":"a"},{"id":2,"name":"B"}]}`,
			want:    []string{"items[1].name"}},
		{name: "unordered arrays nest and combine with ignore",
			cfg: config.Compare{
				Unordered: []string{"items", "items[*].tags"},
				Ignore:    []string{"items[*].etag"},
			},
			primary: `{"items":[{"id":1,"tags":["x","y"],"etag":"1"},{"id":2,"tags":["p","q"],"etag":"2"}]}`,
			other:   `{"items":[{"id":2,"tags":["q","p"],"etag":"3"},{"id":1,"tags":["y","x"],"etag":"4"}]}`},
		{name: "a large permuted unordered array matches",
			cfg:     config.Compare{Unordered: []string{"ids"}},
			primary: `{"ids":[` + seq(0, 200, false) + `]}`,
			other:   `{"ids":[` + seq(0, 200, true) + `]}`},
		{name: "a large object with its keys shuffled matches",
			primary: bigObject(100, false, -1, ""), other: bigObject(100, true, -1, "")},
		{name: "a large object reports the keys it lacks and the values that differ",
			primary: bigObject(100, false, -1, ""), other: bigObject(100, true, 7, "k42"),
			want: []string{"k7", "k42"}},
		{name: "a large object with escaped keys matches",
			primary: bigObject(100, false, -1, ""), other: strings.Replace(bigObject(100, true, -1, ""), `"k5"`, `"\u006b5"`, 1)},
		{name: "a root type change is reported at body",
			primary: `{"a":1}`, other: `[1]`, want: []string{"body"}},
		{name: "a top-level key named status is quoted",
			primary: `{"status":"ok"}`, other: `{"status":"failed"}`, want: []string{`["status"]`}},
		{name: "odd keys are quoted",
			primary: `{"a.b":{"x y":1}}`, other: `{"a.b":{"x y":2}}`, want: []string{`["a.b"]["x y"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmp := newComparer(t, tc.cfg)
			res := cmp.Compare(jsonResponse(200, tc.primary), jsonResponse(200, tc.other))
			got := paths(res)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got diffs at %q, want %q (%+v)", got, tc.want, res.Diffs)
			}
			wantOutcome := shadow.Match
			if len(tc.want) > 0 {
				wantOutcome = shadow.Mismatch
			}
			if res.Outcome != wantOutcome {
				t.Errorf("got outcome %v, want %v", res.Outcome, wantOutcome)
			}
		})
	}
}

// bigObject writes {"k0":0,…} with n keys, shuffled when asked, leaving out
// key skip and giving key changed another value.
func bigObject(n int, shuffled bool, skip int, changed string) string {
	keys := make([]int, n)
	for i := range keys {
		keys[i] = i
	}
	if shuffled {
		rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	}
	var parts []string
	for _, k := range keys {
		if k == skip {
			continue
		}
		v := strconv.Itoa(k)
		if "k"+v == changed {
			v = "-1"
		}
		parts = append(parts, fmt.Sprintf(`"k%d":%s`, k, v))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// seq lists the numbers from..to-1, backwards when reversed.
func seq(from, to int, reversed bool) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		n := i
		if reversed {
			n = to - 1 - (i - from)
		}
		if i > from {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// h is the placeholder of a value under the tests' hash key: quoted, as
// JSON, for a string.
func h(v string) string { return "{" + testHasher.Hash(v) + "}" }

func TestCompareShowsValuesOnlyAsHashesUnlessKept(t *testing.T) {
	p := jsonResponse(200, `{"a":{"x": [1, 2]}, "b": "s", "c": {"n": "Jane", "k": [true, null]}}`)
	o := jsonResponse(200, `{"a":{"x":[1,3]}}`)
	res := newComparer(t, config.Compare{}).Compare(p, o)
	want := []shadow.Diff{
		{Path: "a.x[1]", Primary: h("2"), Other: h("3")},
		{Path: "b", Primary: `"` + h("s") + `"`},
		{Path: "c", Primary: `{"n":"` + h("Jane") + `","k":[` + h("true") + `,` + h("null") + `]}`},
	}
	if !slices.Equal(res.Diffs, want) {
		t.Errorf("got %+v, want %+v", res.Diffs, want)
	}
	// Kept paths show their values, down to their fields, unless redacted.
	kept := newComparer(t, config.Compare{KeepValues: []string{"a.x", "c"}, Redact: []string{"c.n"}}).Compare(p, o)
	want = []shadow.Diff{
		{Path: "a.x[1]", Primary: "2", Other: "3"},
		{Path: "b", Primary: `"` + h("s") + `"`},
		{Path: "c", Primary: `{"n":"` + h("Jane") + `","k":[true,null]}`},
	}
	if !slices.Equal(kept.Diffs, want) {
		t.Errorf("with keep_values: got %+v, want %+v", kept.Diffs, want)
	}
}

func TestARedactedContainerIsHashedWhole(t *testing.T) {
	cmp := newComparer(t, config.Compare{Redact: []string{"patient"}, KeepValues: []string{"patient"}})
	res := cmp.Compare(jsonResponse(200, `{"patient":{"name":"Jane","city":"Oslo"}}`), jsonResponse(200, `{"patient":{"name":"Joan","city":"Oslo"}}`))
	want := []shadow.Diff{{Path: "patient.name", Primary: `"` + h("Jane") + `"`, Other: `"` + h("Joan") + `"`}}
	if !slices.Equal(res.Diffs, want) {
		t.Errorf("got %+v, want %+v", res.Diffs, want)
	}
	res = cmp.Compare(jsonResponse(200, `{"patient":{"name":"Jane"}}`), jsonResponse(200, `{}`))
	want = []shadow.Diff{{Path: "patient", Primary: h(`{"name":"Jane"}`)}}
	if !slices.Equal(res.Diffs, want) {
		t.Errorf("got %+v, want %+v", res.Diffs, want)
	}
}

func TestCompareStatusAndHeaders(t *testing.T) {
	cmp := newComparer(t, config.Compare{Headers: []string{"content-type", "x-version", "etag"}})
	p := jsonResponse(200, `{}`)
	p.Header.Set("X-Version", "1")
	p.Header.Set("Date", "Mon")
	o := jsonResponse(404, `{}`)
	o.Header.Set("X-Version", "2")
	o.Header.Set("Date", "Tue")
	o.Header.Set("Etag", `"abc"`)
	res := cmp.Compare(p, o)
	want := []shadow.Diff{
		{Path: "status", Primary: "200", Other: "404"},
		{Path: "header.X-Version", Primary: `"` + h("1") + `"`, Other: `"` + h("2") + `"`},
		{Path: "header.Etag", Other: `"` + h(`"abc"`) + `"`},
	}
	if !slices.Equal(res.Diffs, want) || res.Outcome != shadow.Mismatch {
		t.Errorf("got %v %+v, want mismatch %+v", res.Outcome, res.Diffs, want)
	}
	if res.PrimaryStatus != 200 || res.OtherStatus != 404 {
		t.Errorf("got statuses %d, %d, want 200, 404", res.PrimaryStatus, res.OtherStatus)
	}
	kept := newComparer(t, config.Compare{Headers: []string{"x-version", "authorization"}, KeepValues: []string{"header.x-version", "header.Authorization"}})
	p.Header.Set("Authorization", "Bearer s3cret")
	res = kept.Compare(p, o)
	want = []shadow.Diff{
		{Path: "status", Primary: "200", Other: "404"},
		{Path: "header.X-Version", Primary: `"1"`, Other: `"2"`},
		{Path: "header.Authorization", Primary: `"` + h("Bearer s3cret") + `"`},
	}
	if !slices.Equal(res.Diffs, want) {
		t.Errorf("with keep_values: got %+v, want %+v (a credential is never kept)", res.Diffs, want)
	}
	for _, name := range []string{"Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization"} {
		kept := newComparer(t, config.Compare{Headers: []string{name}, KeepValues: []string{"header." + name}})
		p, o := jsonResponse(200, `{}`), jsonResponse(200, `{}`)
		p.Header.Set(name, "s3cret")
		want := []shadow.Diff{{Path: "header." + name, Primary: `"` + h("s3cret") + `"`}}
		if res := kept.Compare(p, o); !slices.Equal(res.Diffs, want) {
			t.Errorf("%s in keep_values: got %+v, want %+v (a credential is never kept)", name, res.Diffs, want)
		}
	}
}

func TestCompareNonJSONBodiesByBytes(t *testing.T) {
	cmp := newComparer(t, config.Compare{})
	text := func(body string) shadow.Response {
		return shadow.Response{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: []byte(body)}
	}
	if res := cmp.Compare(text("<p>hi</p>"), text("<p>hi</p>")); res.Outcome != shadow.Match {
		t.Errorf("equal bytes: got %v %+v, want a match", res.Outcome, res.Diffs)
	}
	res := cmp.Compare(text("<p>hi</p>"), text("<p>ho</p>"))
	if res.Outcome != shadow.Mismatch || len(res.Diffs) != 1 || res.Diffs[0].Path != "body" {
		t.Fatalf("got %v %+v, want one mismatch at body", res.Outcome, res.Diffs)
	}
	if d := res.Diffs[0]; !strings.HasPrefix(d.Primary, `"9 bytes, {h:`) || d.Primary == d.Other || strings.Contains(d.Primary+d.Other, "hi") {
		t.Errorf("got %q and %q, want sizes and different hashes, not the content", d.Primary, d.Other)
	}
	// JSON bodies behind a non-JSON Content-Type are bytes too.
	p, o := jsonResponse(200, `{"a":1,"b":2}`), jsonResponse(200, `{"b":2,"a":1}`)
	o.Header.Set("Content-Type", "text/plain")
	if res := cmp.Compare(p, o); res.Outcome != shadow.Mismatch || paths(res)[0] != "body" {
		t.Errorf("got %v %q, want a mismatch at body", res.Outcome, paths(res))
	}
}

func TestCompareInvalidJSON(t *testing.T) {
	cmp := newComparer(t, config.Compare{})
	res := cmp.Compare(jsonResponse(200, `{"a":1}`), jsonResponse(200, `{"a":1`))
	if res.Outcome != shadow.Mismatch || !slices.Equal(paths(res), []string{"body"}) {
		t.Fatalf("got %v %q, want a mismatch at body", res.Outcome, paths(res))
	}
	if !strings.Contains(res.Diffs[0].Other, "invalid JSON") {
		t.Errorf("got other %q, want it to say invalid JSON", res.Diffs[0].Other)
	}
}

func TestCompareJSONTypes(t *testing.T) {
	cmp := newComparer(t, config.Compare{})
	p, o := jsonResponse(200, `{"a":1,"b":2}`), jsonResponse(200, `{"b":2,"a":1}`)
	o.Header.Set("Content-Type", "application/problem+json")
	if res := cmp.Compare(p, o); res.Outcome != shadow.Match {
		t.Errorf("got %v %+v, want +json to compare as JSON", res.Outcome, res.Diffs)
	}
}

func TestCompareTruncated(t *testing.T) {
	cmp := newComparer(t, config.Compare{})
	p, o := jsonResponse(200, `{"a":`), jsonResponse(200, `{"a":1}`)
	p.Truncated = true
	if res := cmp.Compare(p, o); res.Outcome != shadow.TooLarge || len(res.Diffs) != 0 {
		t.Errorf("got %v %+v, want too_large and no diffs", res.Outcome, res.Diffs)
	}
	o.Status = 500
	if res := cmp.Compare(p, o); res.Outcome != shadow.Mismatch || !slices.Equal(paths(res), []string{"status"}) {
		t.Errorf("got %v %q, want a status mismatch even with a body too large", res.Outcome, paths(res))
	}
}

func TestCompareGzip(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	cmp := newComparer(t, config.Compare{MaxBody: 64})
	p := jsonResponse(200, "")
	p.Body = gz(`{"a":1,"b":[1,2]}`)
	p.Header.Set("Content-Encoding", "gzip")
	o := jsonResponse(200, `{"b":[1,2],"a":1}`)
	if res := cmp.Compare(p, o); res.Outcome != shadow.Match {
		t.Errorf("got %v %+v, want a gzip body to compare decoded", res.Outcome, res.Diffs)
	}
	p.Body = gz(`{"a":"` + strings.Repeat("x", 100) + `"}`)
	if res := cmp.Compare(p, o); res.Outcome != shadow.TooLarge {
		t.Errorf("got %v %+v, want too_large when the body decodes past max_body", res.Outcome, res.Diffs)
	}
}

func TestCompareEqualBytesNeedNoDecoding(t *testing.T) {
	cmp := newComparer(t, config.Compare{})
	p, o := jsonResponse(200, "not gzip"), jsonResponse(200, "not gzip")
	p.Header.Set("Content-Encoding", "gzip")
	o.Header.Set("Content-Encoding", "gzip")
	if res := cmp.Compare(p, o); res.Outcome != shadow.Match {
		t.Errorf("got %v %+v, want equal bytes in the same coding to match", res.Outcome, res.Diffs)
	}
	// The same bytes sent without their coding are another answer: a
	// client would read the compressed bytes as the body.
	delete(o.Header, "Content-Encoding")
	if res := cmp.Compare(p, o); res.Outcome != shadow.Mismatch {
		t.Errorf("got %v %+v, want equal bytes in different codings to mismatch", res.Outcome, res.Diffs)
	}
	o.Header.Set("Content-Encoding", "gzip")
	o.Body = []byte("not gzip either")
	res := cmp.Compare(p, o)
	if res.Outcome != shadow.Mismatch || !strings.Contains(res.Diffs[0].Primary, "undecodable") {
		t.Errorf("got %v %+v, want a body mismatch saying the body is undecodable", res.Outcome, res.Diffs)
	}
}

func TestOutcomeLabels(t *testing.T) {
	for o, want := range map[shadow.Outcome]string{shadow.Match: "match", shadow.Mismatch: "mismatch", shadow.TooLarge: "too_large"} {
		if got := o.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestCompareCapsDiffs(t *testing.T) {
	cmp := newComparer(t, config.Compare{})
	res := cmp.Compare(jsonResponse(200, `[`+seq(0, 50, false)+`]`), jsonResponse(200, `[`+seq(0, 50, true)+`]`))
	if len(res.Diffs) != shadow.MaxDiffs || res.More != 50-shadow.MaxDiffs {
		t.Errorf("got %d diffs and %d more, want %d and %d", len(res.Diffs), res.More, shadow.MaxDiffs, 50-shadow.MaxDiffs)
	}
}

func TestNewComparerRefusesBadConfig(t *testing.T) {
	bad := 1.5
	_, err := shadow.NewComparer(config.Compare{Ignore: []string{"a..b"}, Sample: &bad}, testHasher)
	if err == nil || !strings.Contains(err.Error(), "compare.ignore[0]") || !strings.Contains(err.Error(), "compare.sample") {
		t.Errorf("got %v, want errors naming compare.ignore[0] and compare.sample", err)
	}
}
