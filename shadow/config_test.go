package shadow_test

import (
	"slices"
	"strings"
	"testing"

	"strangler/config"
	"strangler/domain"
)

// The compare section and its path syntax live in package config; they are
// tested here, where they are used.

func TestFieldPathSyntax(t *testing.T) {
	key := func(k string) domain.PathStep { return domain.PathStep{Kind: domain.StepKey, Key: k} }
	index := func(i int) domain.PathStep { return domain.PathStep{Kind: domain.StepIndex, Index: i} }
	anyIndex := domain.PathStep{Kind: domain.StepAny}
	for _, tc := range []struct {
		in    string
		want  domain.FieldPath
		canon string // how String writes it; "" means as in
	}{
		{in: "updated_at", want: domain.FieldPath{key("updated_at")}},
		{in: "meta.trace.id", want: domain.FieldPath{key("meta"), key("trace"), key("id")}},
		{in: "items[*].etag", want: domain.FieldPath{key("items"), anyIndex, key("etag")}},
		{in: "items[3]", want: domain.FieldPath{key("items"), index(3)}},
		{in: "[*].id", want: domain.FieldPath{anyIndex, key("id")}},
		{in: "matrix[*][0]", want: domain.FieldPath{key("matrix"), anyIndex, index(0)}},
		{in: `meta["trace.id"]`, want: domain.FieldPath{key("meta"), key("trace.id")}},
		{in: `["a]\"b"].c`, want: domain.FieldPath{key(`a]"b`), key("c")}},
		{in: `[""]`, want: domain.FieldPath{key("")}},
		{in: `a["b"]`, want: domain.FieldPath{key("a"), key("b")}, canon: "a.b"},
		{in: "naïve-ключ", want: domain.FieldPath{key("naïve-ключ")}},
	} {
		got, err := domain.ParseFieldPath(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseFieldPath(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
			continue
		}
		canon := tc.canon
		if canon == "" {
			canon = tc.in
		}
		if s := got.String(); s != canon {
			t.Errorf("String() of %q = %q, want %q", tc.in, s, canon)
		}
	}
}

func TestFieldPathErrors(t *testing.T) {
	for _, in := range []string{"", ".a", "a.", "a..b", "a[", "a[x]", "a[-1]", "a[*]b", `a["b]`, `a["b"`, "a b", `a"b`, "a]", "[+1]"} {
		if p, err := domain.ParseFieldPath(in); err == nil {
			t.Errorf("ParseFieldPath(%q) = %v, want an error", in, p)
		}
	}
}

func FuzzFieldPath(f *testing.F) {
	for _, s := range []string{"a.b", "items[*].etag", `m["x.y"][2]`, `[""]`, "[0]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := domain.ParseFieldPath(s)
		if err != nil {
			return
		}
		again, err := domain.ParseFieldPath(p.String())
		if err != nil || !slices.Equal(again, p) {
			t.Fatalf("%q parses as %v, written %q, which parses as %v, %v", s, p, p.String(), again, err)
		}
	})
}

func TestCompareValidate(t *testing.T) {
	bad, good := 1.5, 0.0
	for _, tc := range []struct {
		name string
		c    config.Compare
		want []string // fields of the errors
	}{
		{"an empty section is valid", config.Compare{}, nil},
		{"a full section is valid", config.Compare{
			Headers: []string{"content-type", "X-Version"}, Ignore: []string{"a", "b[*].c"},
			Unordered: []string{"items"}, Redact: []string{"name", "X-Api-Key"}, Sample: &good, MaxInflight: 1, MaxBody: 1,
		}, nil},
		{"every problem is named", config.Compare{
			Headers: []string{"ok", "not ok"}, Ignore: []string{"a..b"}, Unordered: []string{"x["},
			Redact: []string{""}, Sample: &bad, MaxInflight: -1,
		}, []string{"headers[1]", "ignore[0]", "unordered[0]", "redact[0]", "sample", "max_inflight"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range tc.c.Validate() {
				got = append(got, e.Field)
				if e.Msg == "" || strings.HasPrefix(e.Msg, " ") {
					t.Errorf("error for %s has message %q", e.Field, e.Msg)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got errors for %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCompareEffective(t *testing.T) {
	e := config.Compare{}.Effective()
	if *e.Sample != 1 || e.MaxInflight != 64 || e.MaxBody != 1<<20 {
		t.Errorf("got sample %v, max_inflight %d, max_body %d, want 1, 64, 1MiB", *e.Sample, e.MaxInflight, e.MaxBody)
	}
	half := 0.5
	if e := (config.Compare{Sample: &half, MaxInflight: 3}).Effective(); *e.Sample != 0.5 || e.MaxInflight != 3 {
		t.Errorf("Effective overrode set values: %v, %d", *e.Sample, e.MaxInflight)
	}
}
