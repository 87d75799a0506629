package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// These tests continue the red team's attacks (redteam_e2e_test.go) from
// its second round.

// TestTrailerFieldsReachTheBackendOrAreRefused: a client may send fields
// after a chunked body (a checksum, a signature), declared in a Trailer
// header or not. A route that streams the body passes them on; a route
// that journals or replays the body, which carries no trailer, refuses the
// request with 400 before any backend sees a byte; a shadow route serves
// it from its primary, trailer and all, and sends no copy.
//
// Found by the red team: every route dropped them silently. A pass-through
// backend got the declared names with no value; dual-write, shadow and
// fallback routes sent both backends the body alone.
func TestTrailerFieldsReachTheBackendOrAreRefused(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: create-record, match: "POST /records", mode: dual-write}
  - {name: sh, match: "/sh/*", mode: shadow, shadow_writes: true}
  - {name: fb, match: "/fb/*", mode: fallback, fallback_methods: [POST]}
  - {name: mod, match: "/mod/*", mode: modern}
`)
	const declared = "Trailer: X-Sum\r\n"
	for i, c := range []struct {
		target, declare string
		refused         bool
	}{
		{"/uploads", declared, false}, {"/uploads", "", false},
		{"/mod/a", declared, false}, {"/mod/a", "", false},
		{"/sh/a", declared, false}, {"/sh/a", "", false},
		{"/records", declared, true}, {"/records", "", true},
		{"/fb/a", declared, true}, {"/fb/a", "", true},
	} {
		id := fmt.Sprint("trailer", i)
		name := c.target + " declared"
		if c.declare == "" {
			name = c.target + " undeclared"
		}
		t.Run(name, func(t *testing.T) {
			resp, out := rawHTTP(t, r.public, id, "POST", c.target, "Transfer-Encoding: chunked\r\n"+c.declare, "2\r\n{}\r\n0\r\nX-Sum: abc\r\n\r\n")
			reached := append(legacy.received(t, id), modern.received(t, id)...)
			if c.refused {
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, "trailer") {
					t.Errorf("%d %s; want 400 naming the trailer fields", resp.StatusCode, out)
				}
				if len(reached) > 0 {
					t.Errorf("refused, yet a backend received the request without its trailer (%v)", reached[0].Trailer)
				}
				return
			}
			if resp.StatusCode >= 300 {
				t.Fatalf("%d %s; want the backend's answer", resp.StatusCode, out)
			}
			if len(reached) != 1 {
				t.Fatalf("%d backends received the request; want the one serving it, and no copy without the trailer", len(reached))
			}
			if got := reached[0].Trailer.Get("X-Sum"); got != "abc" || reached[0].Body != "{}" {
				t.Errorf("the backend received body %q, trailer X-Sum %q; want {} and abc", reached[0].Body, got)
			}
		})
	}
}

// TestALooseSpellingOfARouteIsRefused: many backends read a path more
// loosely than the facade's routes: without case (IIS, ASP.NET, a MySQL
// collation behind a PHP router), with fullwidth characters as ASCII
// (Unicode NFKC, Windows' best-fit mapping), without dots and spaces
// ending a segment (IIS, from Windows file names), decoding twice, or
// decoding overlong UTF-8 (%C0%AF as /). A spelling that reaches a
// declared route's resource that way but not through the routes went past
// it (a dual write reached legacy alone): it is refused with 400 naming
// the route, before any backend sees a byte. Spellings no route cares
// about, and parameters in any case, pass.
//
// Found by the red team: every one of these reached legacy alone, through
// the default route, 201.
func TestALooseSpellingOfARouteIsRefused(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: create-record, match: "POST /records", mode: dual-write}
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
  - {name: create-patient, match: "POST /api/CreatePatient", mode: dual-write}
  - {name: rest, match: "/*", mode: legacy}
`)
	for i, c := range []struct {
		method, target string
		names          string // in the refusal, "" when the request passes
	}{
		{"POST", "/Records", "create-record"},
		{"POST", "/RECORDS/", "create-record"},
		{"POST", "/records.", "create-record"},
		{"POST", "/records%2E%2e", "create-record"},
		{"POST", "/records%20", "create-record"},
		{"PUT", "/Records/4", "put-record"},
		{"PUT", "/records./4", "put-record"},
		{"POST", "/%EF%BD%92ecords", "create-record"},              // ｒecords
		{"POST", "/x%EF%BC%8F..%EF%BC%8Frecords", "create-record"}, // x／..／records
		{"POST", "/api/createpatient", "create-patient"},
		{"POST", "/records%EF%BC%BC", "fullwidth"}, // records＼
		{"POST", "/x%252F..%252Frecords", "double percent-encoding"},
		{"POST", "/x%C0%AF..%C0%AFrecords", "overlong"},
		{"POST", "/records", ""},
		{"POST", "/records/", ""},
		{"PUT", "/records/ABC", ""},
		{"GET", "/Records", ""},
		{"POST", "/api/CreatePatient", ""},
		{"POST", "/Other", ""},
		{"POST", "/v1.0/x", ""},
	} {
		id := fmt.Sprint("fold", i)
		resp, out := rawHTTP(t, r.public, id, c.method, c.target, "Content-Length: 2\r\n", "{}")
		n := len(legacy.received(t, id)) + len(modern.received(t, id))
		switch {
		case c.names == "" && resp.StatusCode >= 300:
			t.Errorf("%s %s: %d %s; want it served", c.method, c.target, resp.StatusCode, out)
		case c.names != "" && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, c.names)):
			t.Errorf("%s %s: %d %s; want 400 naming %s", c.method, c.target, resp.StatusCode, out, c.names)
		case c.names != "" && n > 0:
			t.Errorf("%s %s: refused, yet the backends received %d requests", c.method, c.target, n)
		}
	}
}
