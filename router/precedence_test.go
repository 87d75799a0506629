package router

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Routes whose patterns differ may still both match a request; `config
// check` refuses only those that match exactly the same requests. The
// README states which wins, and this is that statement: literal text
// before a parameter, a parameter with a regexp before one without, any
// parameter before the wildcard; of two regexp parameters in the same
// place that both match, the route listed first, whatever the other
// one's regexp.
func TestTheMostSpecificRouteWins(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusOK, "legacy"))
	for _, tc := range []struct {
		first, second string
		path, want    string
	}{
		{"GET /a/{id}", "GET /a/new", "/a/new", "second"},
		{"GET /a/{id}", "GET /a/{id:[0-9]+}", "/a/7", "second"},
		{"GET /a/{id:[0-9]+}", "GET /a/{id}", "/a/x", "second"},
		{"GET /a/*", "GET /a/{id}", "/a/7", "second"},
		{"GET /a/*", "GET /a/{id}", "/a/7/b", "first"},
		{"GET /a/{id}", "GET /a/{id}.json", "/a/7.json", "second"},
		{"GET /a/{id:[0-9]+}", "GET /a/{id:[0-9]*}", "/a/7", "first"},
		{"GET /a/{id:[0-9]*}", "GET /a/{id:[0-9]+}", "/a/7", "first"},
		{"GET /a/{id:x|y}", "GET /a/{id:x}", "/a/x", "first"},
	} {
		routes := fmt.Sprintf("  - { name: first, match: %q, mode: legacy }\n  - { name: second, match: %q, mode: legacy }\n", tc.first, tc.second)
		f := newFacade(t, legacy.URL, legacy.URL, "", routes)
		if resp, _ := f.get(t, tc.path); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", tc.path, resp.StatusCode)
		}
		got := []string{}
		for _, name := range []string{"first", "second"} {
			if f.metric(t, "strangler_requests_total", map[string]string{"route": name, "backend": "legacy", "code": "200"}) == 1 {
				got = append(got, name)
			}
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s and %s: %s went to %s, want %s (%s)", tc.first, tc.second, tc.path, strings.Join(got, ", "), tc.want, map[string]string{"first": tc.first, "second": tc.second}[tc.want])
		}
	}
}
