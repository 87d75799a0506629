package canonical

import (
	"errors"
	"strings"
	"testing"
)

func TestFold(t *testing.T) {
	for _, c := range []struct {
		in, want string
		err      error
	}{
		{in: "/records", want: "/records"},
		{in: "/Records/AB%C3%A9", want: "/records/ab%C3%A9"},
		{in: "/Z", want: "/z"},             // the last letter, alone
		{in: "/XYZ/aZ", want: "/xyz/az"},   // and after another capital
		{in: "/a%2Fb/A", want: "/a%2Fb/a"}, // hex digits stay upper case
		{in: "/records.", want: "/records"},
		{in: "/records.%20./4", want: "/records/4"},
		{in: "/a/...", want: "/a"},
		{in: "/v1.0/x", want: "/v1.0/x"},
		{in: "/%EF%BD%92ECORDS", want: "/records"},
		{in: "/x%EF%BC%8F..%EF%BC%8Frecords", want: "/records"},
		{in: "/%EF%BC%85", want: "/%25"},
		{in: "/%EF%BD%9F", want: "/%EF%BD%9F"},         // U+FF5F is no ASCII form
		{in: "/record%C5%BF", want: "/records"},        // ſ
		{in: "/%E2%84%AAeys", want: "/keys"},           // K, the Kelvin sign
		{in: "/%C4%B1tems/%C4%B0d", want: "/items/id"}, // ı, İ
		{in: "/caf%C3%A9", want: "/caf%C3%A9"},
		{in: "/%E6%97%A5%E6%9C%AC", want: "/%E6%97%A5%E6%9C%AC"},
		{in: "/a%C3%89b", want: "/a%C3%89b"}, // É is no ASCII letter in any case
		// Whatever else NFKC makes ASCII: ʳ, ⓡ, 𝐫 are r, ﬁ is fi, ‥ is ..,
		// ﹨ is \ and ﹔ is ;.
		{in: "/%CA%B3ecords/%E2%93%A1/%F0%9D%90%AB", want: "/records/r/r"},
		{in: "/%EF%AC%81les", want: "/files"},
		{in: "/x/%E2%80%A5/records", want: "/records"},
		// Rails' (.:format) and Spring's suffix pattern match: the last
		// segment up to its first dot; PHP front controllers (Laravel,
		// Symfony): leading scripts dropped while a path follows.
		{in: "/records.json", want: "/records"},
		{in: "/records/4.json", want: "/records/4"},
		{in: "/Records.JSON", want: "/records"},
		{in: "/records.tar.gz", want: "/records"},
		{in: "/records%20.json", want: "/records"},
		{in: "/x/%20.json", want: "/x"},
		{in: "/records.json.", want: "/records"},
		{in: "/records%EF%BC%8Ejson", want: "/records"}, // records．json
		{in: "/a/.env", want: "/a/.env"},
		{in: "/index.php/records", want: "/records"},
		{in: "/INDEX.PHP/records", want: "/records"},
		{in: "/index.php/app.php/records.json", want: "/records"},
		{in: "/index.php.", want: "/"},
		{in: "/index.php", want: "/"},
		// Index pages: Apache's and IIS's, ASP.NET MVC's default action.
		{in: "/records/index.php", want: "/records"},
		{in: "/records/Index", want: "/records"},
		{in: "/records/index/index.html", want: "/records"},
		{in: "/records/index.php/index", want: "/records"},
		{in: "/records/indexes", want: "/records/indexes"},
		{in: "/x/index.php/records", want: "/x/index.php/records"}, // a script at the root alone
		{in: "/%E2%80%A5", err: errFoldRefused},
		{in: "/records%EF%B9%A8", err: errFoldRefused},
		{in: "/records%EF%B9%94x", err: errFoldRefused},
		{in: "/records%EF%BC%BC", err: errFoldRefused},
		{in: "/%EF%BC%8E%EF%BC%8E", err: errFoldRefused},
	} {
		got, err := Fold(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Fold(%q) = %q, %v; want the refusal %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Fold(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestLooseEndsLeavesAPatternsParameters: a route pattern's folded form
// (config.Match.Folded) goes through LooseEnds too, where a parameter's
// braces hide dots and slashes, and a script named by a parameter is no
// script.
func TestLooseEndsLeavesAPatternsParameters(t *testing.T) {
	for in, want := range map[string]string{
		"/export.csv":           "/export",
		"/files/{name}.pdf":     "/files/{name}",
		"/a/{id:[0-9]{2}}.json": "/a/{id:[0-9]{2}}",
		"/{app}.php/records":    "/{app}.php/records",
		"/records/{id:[0-9.]+}": "/records/{id:[0-9.]+}",
		"/files/*":              "/files/*",
		"/records/index":        "/records",
		"/records/{index}":      "/records/{index}",
		"/":                     "/",
	} {
		if got := LooseEnds(in); got != want {
			t.Errorf("LooseEnds(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(10, func() { LooseEnds("/index.php/records.json") }); n != 0 {
		t.Errorf("LooseEnds allocates %v times, want none", n)
	}
}

// TestFoldingALongPathCostsFewAllocations: a request may carry a path of
// some 60 KB, every character of it one that folds (found by the red
// team: reading each through NFKC's allocating API cost 26,024
// allocations and 46 ms a request).
func TestFoldingALongPathCostsFewAllocations(t *testing.T) {
	p := "/R" + strings.Repeat("%EF%BD%92", 6500) // ｒ
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := Fold(p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 64 {
		t.Errorf("Fold of a %d-byte path: %v allocations, want at most 64", len(p), allocs)
	}
}
