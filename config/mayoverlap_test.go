package config

import "testing"

// MayOverlap errs towards yes: two patterns some path may match both are
// never said apart.
func TestMayOverlapSaysYesWhereAPathMayMatchBoth(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"PUT /items/{id}", "PUT /items/{key}", true},
		{"PUT /items/{id}", "/items/{id}", true},
		{"PUT /items/{id}", "POST /items/{id}", false},
		{"PUT /items/{id}", "PUT /items/{id:[0-9]+}", true},
		{"PUT /items/{id}", "PUT /items/v{n}.json", true},
		{"PUT /items/{id}", "/items/*", true},
		{"PUT /items/{id}", "/*", true},
		{"PUT /items/{id}", "PUT /orders/{id}", false},
		{"PUT /items/{id}", "PUT /items/{id}/notes", false},
		{"PUT /items/{id}", "PUT /items", false},
		{"PUT /items/{id}/notes", "/items/*", true},
		{"PUT /items/{id}", "/orders/*", false},
	} {
		var a, b Match
		if err := a.UnmarshalText([]byte(tc.a)); err != nil {
			t.Fatal(err)
		}
		if err := b.UnmarshalText([]byte(tc.b)); err != nil {
			t.Fatal(err)
		}
		if got := a.MayOverlap(b); got != tc.want {
			t.Errorf("%q may overlap %q: got %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := b.MayOverlap(a); got != tc.want {
			t.Errorf("%q may overlap %q: got %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}
