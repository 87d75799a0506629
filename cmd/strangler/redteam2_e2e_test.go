package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
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
// (Unicode NFKC, Windows' best-fit mapping) or ſ as s (Java's
// equalsIgnoreCase), without dots and spaces
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
  - {name: create-note, match: "POST /notes", mode: dual-write}
  - {name: create-note-old-spelling, match: "POST /Notes", mode: dual-write}
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
		{"POST", "/record%C5%BF", "create-record"}, // recordſ: records to Java's equalsIgnoreCase
		{"PUT", "/r%C4%B1cords/4", ""},             // rıcords is ricords, no route's
		{"POST", "/%E6%97%A5%E6%9C%AC", ""},        // 日本
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
		// Two routes only case tells apart: each serves its own
		// spelling, and a third spelling is refused.
		{"POST", "/notes", ""},
		{"POST", "/Notes", ""},
		{"POST", "/NOTES", "create-note"},
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

// lenientBackend is a backend that reads a request's body only on the
// methods that define one (POST, PUT, PATCH), as many do: on any other
// the body stays on the connection and is read as the next request. It
// answers each request with its path, and HEAD /late with a head and,
// a moment later, a body, as a backend that writes a HEAD's body anyway
// does.
func lenientBackend(t *testing.T, late string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	serve := func(conn net.Conn) {
		defer conn.Close()
		br := bufio.NewReader(conn)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch req.Method {
			case "POST", "PUT", "PATCH":
				io.Copy(io.Discard, req.Body)
			}
			answer := strings.TrimPrefix(req.URL.Path, "/")
			switch {
			case req.Method == "HEAD" && answer == "late":
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(late))
				time.Sleep(20 * time.Millisecond)
				io.WriteString(conn, late)
			default:
				if answer == "SMUGGLED" {
					// As long as a backend takes for a request: the
					// facade may have sent another on the connection.
					time.Sleep(5 * time.Millisecond)
				}
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
			}
		}
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(conn)
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestBytesABackendLeavesOnAConnectionReachNoOtherClient: a backend that
// ignores the body of a GET (or HEAD, OPTIONS, DELETE) reads it as its
// next request, and a backend that sends a body after a HEAD's head sends
// bytes nobody asked for. Either way a pooled connection then holds an
// answer the next client would read as its own: a client can fill that
// body with any request it likes (a CL.0 desync). Other clients, reading
// their own answers all along, must each get theirs, whatever route
// (pass-through, shadow, dual-write) carried the attack.
//
// Found by the red team: within 200 rounds, over a hundred other
// clients' POSTs read "SMUGGLED" or another client's answer.
func TestBytesABackendLeavesOnAConnectionReachNoOtherClient(t *testing.T) {
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"
	backend := lenientBackend(t, smuggled)
	path := writeConfig(t, "", backend, backend, `
  - {name: sh, match: "GET /sh/*", mode: shadow}
  - {name: dw, match: "DELETE /dw/{id}", mode: dual-write}
  - {name: rest, match: "/*", mode: legacy}`)
	r := startRun(t, "serve", "--config", path)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	var wrong, right atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				want := fmt.Sprintf("client%d-%d", i, k)
				req, _ := http.NewRequest("POST", "http://"+r.public+"/"+want, strings.NewReader("{}"))
				if k%2 == 0 {
					req, _ = http.NewRequest("GET", "http://"+r.public+"/"+want, nil)
				}
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case string(got) == want:
					right.Add(1)
				case resp.StatusCode == http.StatusOK && wrong.Add(1) <= 3:
					t.Errorf("%s /%s: read %q, another request's answer", req.Method, want, got)
				}
			}
		}()
	}
	// A request the backend will read as its next one, from a body.
	const hidden = "GET /SMUGGLED HTTP/1.1\r\nHost: backend\r\n\r\n"
	attack := func(head string) {
		conn, err := net.Dial("tcp", r.public)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, head)
		method, _, _ := strings.Cut(head, " ")
		if resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method}); err == nil {
			io.Copy(io.Discard, resp.Body)
		}
	}
	withBody := func(method, target string) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: facade\r\nContent-Length: %d\r\n\r\n%s", method, target, len(hidden), hidden)
	}
	for k := range 60 {
		attack(withBody("GET", fmt.Sprintf("/a%d", k)))
		attack(withBody("OPTIONS", "/a"))
		attack(withBody("DELETE", "/a"))
		attack(withBody("DELETE", fmt.Sprintf("/dw/%d", k)))
		attack(withBody("GET", "/sh/a"))
		attack("HEAD /late HTTP/1.1\r\nHost: facade\r\n\r\n")
	}
	close(stop)
	wg.Wait()
	if wrong.Load() > 0 || right.Load() == 0 {
		t.Errorf("%d answers went to the wrong client, %d to the right one", wrong.Load(), right.Load())
	}
}

// TestAClientThatStopsReadingReleasesTheBackend: a client that asks for a
// large answer and then reads nothing held the answer, the backend's
// connection and the backend's worker behind it for ever: a few hundred
// such clients take a legacy backend with a few hundred workers down
// (found by the red team). As nginx's send_timeout, a client that takes
// no byte for body_timeout has its connection cut, and the backend's
// answer is abandoned. A client reading slowly but steadily gets it all,
// and a connection idle for longer than body_timeout between two
// requests serves the next one, a 100 Continue and a header-only answer
// included.
func TestAClientThatStopsReadingReleasesTheBackend(t *testing.T) {
	const size = 16 << 20
	var active atomic.Int64
	backend := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		defer active.Add(-1)
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/empty" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		chunk := []byte(strings.Repeat("x", 64<<10))
		w.Header().Set("Content-Length", fmt.Sprint(size))
		for range size / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	path := writeConfig(t, "", backend.URL, backend.URL, "  - {name: all, match: \"/*\", mode: legacy}\nbody_timeout: 1s\n")
	r := startRun(t, "serve", "--config", path)

	stalled, err := net.Dial("tcp", r.public)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	io.WriteString(stalled, "GET /big HTTP/1.1\r\nHost: facade\r\n\r\n")
	deadline := time.Now().Add(10 * time.Second)
	for time.Sleep(100 * time.Millisecond); active.Load() > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the backend still sends the answer 10s after the client stopped reading (body_timeout 1s)")
		}
	}

	conn, err := net.Dial("tcp", r.public)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: facade\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for buf := make([]byte, 512<<10); ; time.Sleep(20 * time.Millisecond) {
		k, err := io.ReadFull(resp.Body, buf)
		n += k
		if err != nil {
			break
		}
	}
	if n != size {
		t.Fatalf("a client reading steadily got %d bytes of %d", n, size)
	}
	time.Sleep(1500 * time.Millisecond) // longer than body_timeout, idle
	io.WriteString(conn, "POST /empty HTTP/1.1\r\nHost: facade\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	if resp, err = http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("after an idle spell the next request got %v, %v; want 100 Continue", resp, err)
	}
	io.WriteString(conn, "{}")
	for resp.StatusCode == http.StatusContinue && err == nil { // the backend's own 100 is passed on too
		resp, err = http.ReadResponse(br, nil)
	}
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after an idle spell the next request got %v, %v; want 204", resp, err)
	}
}

// TestAMethodOverrideToAnotherRouteIsRefused: Symfony, Laravel, Express's
// method-override and ASP.NET let a request stand for another method
// (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override, _method in
// the query). Routed on the method it was sent with, such a request
// reached the other method's resource past its route: POST /records/4
// standing for PUT reached legacy alone past the dual-write route for PUT
// /records/{id}, and a POST to a dual-write route standing for DELETE was
// journaled as a create the primary read as a delete (found by the red
// team). A request whose override another route serves is refused with
// 400 naming it, before any backend sees a byte; one whose route serves
// both methods passes.
func TestAMethodOverrideToAnotherRouteIsRefused(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: create-record, match: "POST /records", mode: dual-write}
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
  - {name: files, match: "/files/*", mode: legacy}
`)
	for i, c := range []struct {
		method, target, header string
		names                  string // in the refusal, "" when the request passes
	}{
		{"POST", "/records/4", "X-HTTP-Method-Override: PUT\r\n", "put-record"},
		{"POST", "/records/4", "X-HTTP-Method: put\r\n", "put-record"},
		{"POST", "/records/4", "X-Method-Override: PUT\r\n", "put-record"},
		{"POST", "/records/4?_method=PUT", "", "put-record"},
		// The same parameter as PHP reads it: with its name
		// percent-encoded, or with '.', ' ' or an unclosed '[' for '_'
		// (leading spaces PHP drops: " method" is "method").
		{"POST", "/records/4?%5Fmethod=PUT", "", "put-record"},
		{"POST", "/records/4?_%6Dethod=PUT", "", "put-record"},
		{"POST", "/records/4?.method=PUT", "", "put-record"},
		{"POST", "/records/4?x+method=PUT", "", ""},
		{"POST", "/records/4?+method=PUT", "", ""},
		{"POST", "/records/4?%5Bmethod=PUT", "", "put-record"},
		{"POST", "/records/4?a=%20&_method=PUT", "", "put-record"},
		{"POST", "/records", "X-HTTP-Method-Override: DELETE\r\n", "create-record"},
		{"GET", "/records", "X-HTTP-Method-Override: POST\r\n", "create-record"},
		{"POST", "/records", "X-HTTP-Method-Override: POST\r\n", ""},
		{"POST", "/files/a", "X-HTTP-Method-Override: DELETE\r\n", ""},
		{"POST", "/records?method=PUT", "", ""},
	} {
		id := fmt.Sprint("override", i)
		resp, out := rawHTTP(t, r.public, id, c.method, c.target, c.header+"Content-Length: 2\r\n", "{}")
		n := len(legacy.received(t, id)) + len(modern.received(t, id))
		switch {
		case c.names == "" && resp.StatusCode >= 300:
			t.Errorf("%s %s %q: %d %s; want it served", c.method, c.target, c.header, resp.StatusCode, out)
		case c.names != "" && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, c.names)):
			t.Errorf("%s %s %q: %d %s; want 400 naming %s", c.method, c.target, c.header, resp.StatusCode, out, c.names)
		case c.names != "" && n > 0:
			t.Errorf("%s %s %q: refused, yet the backends received %d requests", c.method, c.target, c.header, n)
		}
	}
}

// TestTheCLIWritesNoControlCharactersFromTheData: field names in shadow
// samples come from the backends' answers, and so from the data behind
// them, which end users may choose (a key in a stored document); reasons
// come from other operators. Printed as they are, an escape sequence in
// one (ESC ] 0 ; … BEL retitles a terminal, ESC [ 2 J clears it, and
// others have run commands in some terminals) reaches the terminal of the
// operator reading `strangler diffs`. Field paths escape C0 controls
// already; a C1 control (U+009B is ESC [ to a terminal) and a
// bidirectional override (U+202E shows what follows reversed) went out as
// they were (found by the red team). The CLI writes every such character
// as a visible escape.
func TestTheCLIWritesNoControlCharactersFromTheData(t *testing.T) {
	// A value keep_values shows in clear: a key like it is data, and
	// samples show it only as {*}.
	const text = "name\x1b]0;pwned\x07\x1b[2J\u202eeman\u009b"
	answer := func(v int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"note": text + strconv.Itoa(v)})
		}
	}
	legacy, modern := httptestServer(t, answer(1)), httptestServer(t, answer(2))
	f := startAdminFacade(t, legacy.URL, modern.URL, `  - {name: get-patient, match: "GET /patients/{id}", mode: shadow, compare: {keep_values: [note]}}
`)
	strangler := cli(f.admin)
	getBody(t, "http://"+f.public+"/patients/1")
	var out string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out = strangler(t, "diffs", "--route", "get-patient").must(t)
		if strings.HasPrefix(out, "get-patient: 1 sample") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(out, `[2J\u202eeman\u009b`) {
		t.Errorf("diffs does not show the kept value with its control characters escaped:\n%q", out)
	}
	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
			t.Fatalf("diffs writes the control character %U:\n%q", r, out)
		}
	}
	// --json too: encoding/json escapes C0 controls, not C1 or U+202E.
	checkJSONActsOnNoTerminal(t, strangler(t, "diffs", "--route", "get-patient", "--json").must(t), "[2J\u202eeman\u009b")
}

// TestUnderscoreSpellingsOfProxyHeadersAreDropped: under
// headers_with_underscores: allow, a header named X_Forwarded_For passes,
// and CGI, PHP and many frameworks read it as X-Forwarded-For: a client
// then chose the address, original URL or scheme a backend believes,
// which the facade promises only a trusted proxy may (found by the red
// team). Those names are dropped in any spelling; other underscore
// headers still pass.
func TestUnderscoreSpellingsOfProxyHeadersAreDropped(t *testing.T) {
	r, legacy, _ := startEdgeFacade(t, "headers_with_underscores: allow", `  - {name: rest, match: "/*", mode: legacy}`)
	_, out := rawHTTP(t, r.public, "underscore", "GET", "/a",
		"X_Forwarded_For: 6.6.6.6\r\nx_real_ip: 6.6.6.6\r\nX_Original_URL: /admin\r\nX-Forwarded_Host: evil.example\r\nforwarded: for=6.6.6.6\r\nX_User: ann\r\n", "")
	got := legacy.received(t, "underscore")
	if len(got) != 1 {
		t.Fatalf("the backend received %d requests (%s); want 1", len(got), out)
	}
	for name, vs := range got[0].Header {
		for _, v := range vs {
			if strings.Contains(v, "6.6.6.6") || v == "/admin" || v == "evil.example" {
				t.Errorf("the backend received %s: %s, which only a trusted proxy may send", name, v)
			}
		}
	}
	if got[0].Header.Get("X_User") != "ann" {
		t.Errorf("X_User did not pass under headers_with_underscores: allow: %v", got[0].Header)
	}
}

// TestAMethodOverrideSpelledWithUnderscoresIsRefused: under
// headers_with_underscores: allow, X_HTTP_Method_Override reaches the
// backend, which CGI and PHP read as X-HTTP-Method-Override (found by the
// red team): it counts as a method override.
func TestAMethodOverrideSpelledWithUnderscoresIsRefused(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "headers_with_underscores: allow", `  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}`)
	resp, out := rawHTTP(t, r.public, "underscore", "POST", "/records/4", "X_HTTP_Method_Override: PUT\r\nContent-Length: 2\r\n", "{}")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, "put-record") {
		t.Errorf("%d %s; want 400 naming put-record", resp.StatusCode, out)
	}
	if n := len(legacy.received(t, "underscore")) + len(modern.received(t, "underscore")); n > 0 {
		t.Errorf("refused, yet the backends received %d requests", n)
	}
}
