package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests continue the red team's attacks (redteam_e2e_test.go to
// redteam3_e2e_test.go) from its fourth round.

// TestAMethodOverrideIsReadAsBackendsReadIt: a backend that lets a POST
// stand for another method reads the override more loosely than the
// facade did, and so reached a dual-write route's resource past it
// (found by the red team, each one 201 from legacy alone):
//   - with the path read loosely too: POST /Records/4 with
//     X-HTTP-Method-Override: PUT is PUT /records/4 to a backend without
//     case (IIS, ASP.NET) that honours the header;
//   - a list: Express's method-override takes the first of "PUT, POST";
//   - a query pair after ";": Go's parser dropped a=1;_method=PUT whole,
//     where Rack 2 and older Python split it in two;
//   - in a JSON body: Laravel reads a JSON object's _method as a form's;
//   - in a compressed body: Express's body parsers undo gzip before
//     method-override reads the field, which the facade does not look into.
//
// Each is refused (400, or 415 for a compressed body) naming why, before
// any backend sees a byte; what no other route serves passes with its body
// whole.
func TestAMethodOverrideIsReadAsBackendsReadIt(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
  - {name: delete-record, match: "DELETE /records/{id}", mode: dual-write}
  - {name: read-record, match: "GET /records/{id}", mode: fallback}
`)
	const js = "Content-Type: application/json\r\n"
	const form = "Content-Type: application/x-www-form-urlencoded\r\n"
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.String()
	}
	for i, c := range []struct {
		target, header, body string
		status               int // 201: served
		says                 string
	}{
		{"/Records/4", "X-HTTP-Method-Override: PUT\r\n", "{}", 400, "put-record"},
		{"/records./4", "X-HTTP-Method-Override: DELETE\r\n", "{}", 400, "delete-record"},
		{"/RECORDS/4?_method=PUT", "", "{}", 400, "put-record"},
		{"/Records/4", form, "_method=PUT", 400, "put-record"},
		{"/records/4", "X-HTTP-Method-Override: PUT, POST\r\n", "{}", 400, "put-record"},
		{"/records/4", "X-HTTP-Method-Override: PUT,\r\n", "{}", 400, "put-record"},
		{"/records/4?_method=delete,post", "", "{}", 400, "delete-record"},
		{"/records/4?a=1;_method=PUT", "", "{}", 400, "put-record"},
		{"/records/4", js, `{"_method":"PUT"}`, 400, "put-record"},
		{"/records/4", "Content-Type: application/vnd.api+json; charset=utf-8\r\n", `{"name":"Ada","_method":"delete"}`, 400, "delete-record"},
		{"/records/4", js, `{"\u005fmethod":"PUT"}`, 400, "put-record"},
		{"/records/4", js, `{"_method":"PUT"`, 400, "JSON body does not parse"},
		{"/records/4", form + "Content-Encoding: gzip\r\n", gz("_method=PUT"), 415, "Content-Encoding"},
		{"/records/4", js + "Content-Encoding: gzip\r\n", gz(`{"_method":"PUT"}`), 415, "Content-Encoding"},
		// Passes: no _method, another route's path, or no other route there.
		{"/records/4", js, `{"name":"Ada","nested":{"_method":"PUT"}}`, 201, ""},
		{"/records/4", js + "Content-Encoding: identity\r\n", `{"name":"Ada"}`, 201, ""},
		{"/records/4", js, `{"_method":"POST"}`, 201, ""},
		{"/notes/4", js + "Content-Encoding: gzip\r\n", gz(`{"_method":"PUT"}`), 201, ""},
		{"/Notes/4", "X-HTTP-Method-Override: PUT\r\n", "{}", 201, ""},
		{"/records/4", "Content-Type: text/plain\r\n", `{"_method":"PUT"}`, 201, ""},
	} {
		id := fmt.Sprint("override4-", i)
		resp, out := rawHTTP(t, r.public, id, "POST", c.target, c.header+"Content-Length: "+strconv.Itoa(len(c.body))+"\r\n", c.body)
		reached := append(legacy.received(t, id), modern.received(t, id)...)
		switch {
		case resp.StatusCode != c.status:
			t.Errorf("POST %s %q %q: %d %s; want %d", c.target, c.header, c.body, resp.StatusCode, out, c.status)
		case c.status >= 400 && !strings.Contains(out, c.says):
			t.Errorf("POST %s %q %q: %s; want it to say %q", c.target, c.header, c.body, out, c.says)
		case c.status >= 400 && len(reached) > 0:
			t.Errorf("POST %s %q %q: refused, yet a backend received it", c.target, c.header, c.body)
		case c.status < 400 && (len(reached) != 1 || reached[0].Body != c.body):
			t.Errorf("POST %s %q %q: the backends received %v; want the body whole, once", c.target, c.header, c.body, reached)
		}
	}
}

// TestAFragmentIsRefused: a fragment is no part of a request-target
// (RFC 9112 section 3.2), and its readings differ. PUT /records/4#/../5
// was forwarded as a write to /records/5 (the facade read "#" as data and
// removed the dot segments after it), while a URI parser reads it as
// /records/4 (found by the red team). It is refused with 400, as Envoy
// does, before any backend sees a byte; %23 is data and passes.
func TestAFragmentIsRefused(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
`)
	for i, c := range []struct {
		target string
		status int
	}{
		{"/records/4#/../5", 400},
		{"/records/4#", 400},
		{"/records/4?a=1#b", 400},
		{"http://facade/records/4#x", 400},
		{"/records/4%23x", 200},
	} {
		id := fmt.Sprint("fragment", i)
		resp, out := rawHTTP(t, r.public, id, "PUT", c.target, "Content-Length: 2\r\n", "{}")
		reached := append(legacy.received(t, id), modern.received(t, id)...)
		switch {
		case resp.StatusCode != c.status:
			t.Errorf("PUT %s: %d %s; want %d", c.target, resp.StatusCode, out, c.status)
		case c.status == http.StatusBadRequest && (!strings.Contains(out, "fragment") || len(reached) > 0):
			t.Errorf("PUT %s: %s, and %d backends received it; want a JSON error naming the fragment, and none", c.target, out, len(reached))
		}
	}
}

// TestTrailerFieldsABackendMustNotReadThereAreDropped: trailer fields
// after a chunked body reach the backend on a route that streams it (or
// shadows it), but they went on as the client sent them, past what the
// facade drops from the header: X-Forwarded-For, X-Real-IP,
// X-Strangler-Primary-Status and X_User reached the backend as trailer
// fields, and so did Host, Authorization and a method override, which a
// backend merging trailer fields into the header reads as the request's
// (found by the red team). A Content-Length or Transfer-Encoding trailer
// field made Go's transport fail the request on a shadow route, a 502
// counted against the backend. The backend gets only the fields that may
// be trailer fields, and the client the backend's answer.
func TestTrailerFieldsABackendMustNotReadThereAreDropped(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: sh, match: "/sh/*", mode: shadow, shadow_writes: true}
  - {name: mod, match: "/mod/*", mode: modern}
`)
	const trailer = "X-Sum: abc\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Strangler-Primary-Status: 200\r\n" +
		"X_User: admin\r\nHost: evil.example\r\nAuthorization: Bearer stolen\r\nX-HTTP-Method-Override: PUT\r\n" +
		"Content-Length: 0\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\nTrailer: X-Sum\r\nIf-Match: *\r\n"
	for i, target := range []string{"/uploads", "/sh/a", "/mod/a"} {
		id := fmt.Sprint("trailer4-", i)
		resp, out := rawHTTP(t, r.public, id, "POST", target, "Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n"+trailer+"\r\n")
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("POST %s: %d %s; want the backend's 201", target, resp.StatusCode, out)
			continue
		}
		reached := append(legacy.received(t, id), modern.received(t, id)...)
		if len(reached) == 0 {
			t.Errorf("POST %s: no backend received it", target)
		}
		for _, got := range reached {
			if len(got.Trailer) != 1 || got.Trailer.Get("X-Sum") != "abc" || got.Body != "{}" {
				t.Errorf("POST %s: %s received body %q, trailer %v; want {} and X-Sum alone", target, got.URI, got.Body, got.Trailer)
			}
		}
	}
}

// TestEveryCharacterNFKCMakesASCIIIsReadAsThat: the facade refused a path
// that matches another route with its fullwidth characters read as ASCII,
// the way Unicode's compatibility normalisation (NFKC) reads them; but
// NFKC makes ASCII of many more (found by the red team, each 201 from
// legacy alone past a dual-write route): ʳ and 𝐫 are r, ﬁ is fi, and ‥
// (two dot leader) is .., so /x/‥/records is /records. They are refused
// like the fullwidth forms, and characters NFKC keeps pass.
func TestEveryCharacterNFKCMakesASCIIIsReadAsThat(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: create-record, match: "POST /records", mode: dual-write}
  - {name: create-file, match: "POST /files", mode: dual-write}
`)
	for i, c := range []struct {
		target, says string // says: in the refusal, "" when the request passes
	}{
		{"/%CA%B3ecords", "create-record"},        // ʳecords
		{"/%F0%9D%90%ABecords", "create-record"},  // 𝐫ecords
		{"/%E2%93%A1ecords", "create-record"},     // ⓡecords
		{"/%EF%AC%81les", "create-file"},          // ﬁles
		{"/x/%E2%80%A5/records", "create-record"}, // x/‥/records
		{"/records%EF%B9%94x", "NFKC"},            // records﹔x: ; is a path parameter
		{"/%E2%80%A5/records", "NFKC"},            // ‥ above the root
		{"/caf%C3%A9", ""},                        // café
		{"/%E6%97%A5%E6%9C%AC", ""},               // 日本
		{"/records", ""},
	} {
		id := fmt.Sprint("nfkc", i)
		resp, out := rawHTTP(t, r.public, id, "POST", c.target, "Content-Length: 2\r\n", "{}")
		n := len(legacy.received(t, id)) + len(modern.received(t, id))
		switch {
		case c.says == "" && resp.StatusCode >= 300:
			t.Errorf("POST %s: %d %s; want it served", c.target, resp.StatusCode, out)
		case c.says != "" && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, c.says)):
			t.Errorf("POST %s: %d %s; want 400 naming %s", c.target, resp.StatusCode, out, c.says)
		case c.says != "" && n > 0:
			t.Errorf("POST %s: refused, yet the backends received %d requests", c.target, n)
		}
	}
}

// TestManyMethodOverridesAreRefusedCheaply: each method a request asks to
// be read as is matched against the routes, on its path as sent and read
// loosely; a client sending 15,000 in one header beside a long non-ASCII
// path held a core for over 20 seconds a request (found by the red
// team). More than 8 distinct ones are refused with 400 at once; the
// same one repeated counts once.
func TestManyMethodOverridesAreRefusedCheaply(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
`)
	path := "/R" + strings.Repeat("%EF%BD%92", 3000)
	for i, c := range []struct {
		values string
		status int
	}{
		{strings.Repeat("A,", 15000), 201},
		{"A,B,C,D,E,F,G,H,I", 400},
		{strings.Repeat("POST,", 1000), 201},
	} {
		id := fmt.Sprint("many", i)
		start := time.Now()
		resp, out := rawHTTP(t, r.public, id, "POST", path, "X-HTTP-Method-Override: "+c.values+"\r\nContent-Length: 0\r\n", "")
		took := time.Since(start)
		reached := len(legacy.received(t, id)) + len(modern.received(t, id))
		switch want := c.status; {
		case resp.StatusCode != want:
			t.Errorf("%.20s…: %d %s; want %d", c.values, resp.StatusCode, out, want)
		case want == 400 && (!strings.Contains(out, "more than 8") || reached > 0):
			t.Errorf("%.20s…: %s, %d backends reached; want a refusal naming the bound, and none", c.values, out, reached)
		case took > 5*time.Second:
			t.Errorf("%.20s…: answered after %v", c.values, took)
		}
	}
}
