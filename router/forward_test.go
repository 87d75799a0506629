package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

func TestForwardedHeaders(t *testing.T) {
	legacy := newBackend(t, answer(200, "ok"))
	spoof := func(t *testing.T, f *facade) received {
		req, _ := http.NewRequest(http.MethodGet, f.URL+"/x", nil)
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("Forwarded", "for=6.6.6.6")
		f.do(t, req)
		return legacy.last(t)
	}
	t.Run("an untrusted client cannot claim another address", func(t *testing.T) {
		f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
		got := spoof(t, f)
		if xff := got.Header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want only the client's real address", xff)
		}
		if h := got.Header.Get("X-Forwarded-Host"); h != strings.TrimPrefix(f.URL, "http://") {
			t.Errorf("X-Forwarded-Host = %q, want the Host the client used", h)
		}
		if p := got.Header.Get("X-Forwarded-Proto"); p != "http" {
			t.Errorf("X-Forwarded-Proto = %q, want http", p)
		}
		if fw := got.Header.Get("Forwarded"); fw != "" {
			t.Errorf("Forwarded = %q reached the backend", fw)
		}
	})
	// Found by hostile5: an HTTP/1.0 request without a Host reached the
	// backend with "X-Forwarded-Host: " (empty).
	t.Run("a request without a Host names no forwarded host", func(t *testing.T) {
		f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
		_, r := rawRequest(t, f, "GET /x HTTP/1.0\r\nX-Forwarded-Host: evil.example\r\n\r\n")
		if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("got %v, %v; want 200", resp, err)
		}
		if h, ok := legacy.last(t).Header["X-Forwarded-Host"]; ok {
			t.Errorf("X-Forwarded-Host = %q, want none", h)
		}
	})
	t.Run("a trusted proxy's chain is kept and extended", func(t *testing.T) {
		f := newFacade(t, legacy.URL, legacy.URL, "trusted_proxies: [127.0.0.0/8]", `  - {name: x, match: "GET /x", mode: legacy}`)
		got := spoof(t, f)
		if xff := got.Header.Get("X-Forwarded-For"); xff != "6.6.6.6, 127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want %q", xff, "6.6.6.6, 127.0.0.1")
		}
		if h, p := got.Header.Get("X-Forwarded-Host"), got.Header.Get("X-Forwarded-Proto"); h != "evil.example" || p != "https" {
			t.Errorf("X-Forwarded-Host/Proto = %q/%q, want the trusted proxy's values", h, p)
		}
	})
	// A dual-stack operator may write the load balancer's IPv4 network in
	// IPv6's mapped form; the client's address is compared unmapped, so
	// the mapped form was never trusted (the chain was dropped).
	t.Run("a trusted network in IPv6's mapped form is the IPv4 network", func(t *testing.T) {
		f := newFacade(t, legacy.URL, legacy.URL, `trusted_proxies: ["::ffff:127.0.0.0/104"]`, `  - {name: x, match: "GET /x", mode: legacy}`)
		if xff := spoof(t, f).Header.Get("X-Forwarded-For"); xff != "6.6.6.6, 127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want %q", xff, "6.6.6.6, 127.0.0.1")
		}
	})
}

func TestRequestIDAndTraceContext(t *testing.T) {
	legacy := newBackend(t, answer(200, "ok"))
	f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
	t.Run("a missing request id is generated", func(t *testing.T) {
		f.get(t, "/x")
		if id := legacy.last(t).Header.Get("X-Request-Id"); len(id) != 36 {
			t.Errorf("X-Request-Id = %q, want a generated UUID", id)
		}
	})
	t.Run("the client's request id and traceparent are passed on", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, f.URL+"/x", nil)
		req.Header.Set("X-Request-Id", "abc-123")
		req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		req.Header.Set("Tracestate", "vendor=1")
		f.do(t, req)
		got := legacy.last(t).Header
		if got.Get("X-Request-Id") != "abc-123" || got.Get("Traceparent") != req.Header.Get("Traceparent") || got.Get("Tracestate") != "vendor=1" {
			t.Errorf("backend got X-Request-Id %q, traceparent %q, tracestate %q", got.Get("X-Request-Id"), got.Get("Traceparent"), got.Get("Tracestate"))
		}
	})
	t.Run("a request id with control characters is replaced", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, f.URL+"/x", nil)
		req.Header.Set("X-Request-Id", "a b")
		f.do(t, req)
		if id := legacy.last(t).Header.Get("X-Request-Id"); id == "a b" {
			t.Errorf("X-Request-Id %q was passed on", id)
		}
	})
}

func TestHopByHopHeaders(t *testing.T) {
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Link", "</a.css>; rel=preload")
		h.Set("Connection", "X-Hint-Secret")
		h.Set("X-Hint-Secret", "1")
		w.WriteHeader(http.StatusEarlyHints)
		for _, k := range []string{"Link", "Connection", "X-Hint-Secret"} {
			h.Del(k)
		}
		h.Set("Connection", "X-Internal")
		h.Set("X-Internal", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-Public", "yes")
		w.Write([]byte("ok"))
	})
	f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
	var hints []textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, h)
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/x", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	req.Header.Set("Connection", "X-Client-Secret")
	req.Header.Set("X-Client-Secret", "1")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Te", "trailers")
	req.Header.Set("X-Strangler-Backend", "modern")
	req.Header.Set("X-Strangler-Anything", "forged")
	resp, _ := f.do(t, req)

	got := legacy.last(t).Header
	for _, k := range []string{"X-Client-Secret", "Proxy-Authorization", "X-Strangler-Backend", "X-Strangler-Anything"} {
		if v := got.Get(k); v != "" {
			t.Errorf("the backend received %s: %q", k, v)
		}
	}
	for _, k := range []string{"X-Internal", "Keep-Alive", "Proxy-Authenticate"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("the client received %s: %q", k, v)
		}
	}
	if resp.Header.Get("X-Public") != "yes" {
		t.Errorf("an end-to-end header was dropped")
	}
	if len(hints) != 1 {
		t.Fatalf("client got %d informational responses, want 1", len(hints))
	}
	if hints[0].Get("Link") == "" || hints[0].Get("X-Hint-Secret") != "" || hints[0].Get("Connection") != "" {
		t.Errorf("103 headers = %v, want Link without the Connection-listed field", hints[0])
	}
}

// A backend that closes its connection names the fields only that hop may
// read in the same Connection field as "close": net/http deletes the whole
// field on reading "close" in it, which brought X-Secret to the client.
func TestFieldsNamedWithConnectionCloseAreDropped(t *testing.T) {
	for name, answer := range map[string]string{
		"with CRLF": "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nX-Public: yes\r\nContent-Length: 2\r\n\r\nok",
		"with LF":   "HTTP/1.1 200 OK\nX-Secret: s\nConnection: X-Secret, close\nX-Public: yes\nContent-Length: 2\n\nok",
	} {
		t.Run(name, func(t *testing.T) {
			legacy := "http://" + rawBackend(t, answer)
			f := newFacade(t, legacy, legacy, "", `  - {name: x, match: "GET /x", mode: legacy}`)
			resp, body := f.get(t, "/x")
			if got := resp.Header.Get("X-Secret"); got != "" {
				t.Errorf("the client received X-Secret: %q", got)
			}
			if resp.Header.Get("X-Public") != "yes" || body != "ok" {
				t.Errorf("got X-Public %q, body %q; want yes, ok", resp.Header.Get("X-Public"), body)
			}
		})
	}
}

// TestABackendCannotSpeakForTheFacade: X-Strangler-* fields are the
// facade's own, so a backend's, in an answer's header, a 1xx answer or a
// trailer, never reach the client: legacy's "X-Strangler-Backend: modern"
// passed for the facade's own with debug_headers off, and beside it with
// them on (found by the red team).
func TestABackendCannotSpeakForTheFacade(t *testing.T) {
	legacy := "http://" + rawBackend(t, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nX-Strangler-Backend: modern\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nX-Strangler-Backend: modern\r\nx-strangler-fallback: none\r\nX-Public: yes\r\nTrailer: X-Strangler-Backend, X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"2\r\nok\r\n0\r\nX-Strangler-Backend: modern\r\nX-Sum: 1\r\n\r\n")
	for _, debug := range []bool{false, true} {
		t.Run(fmt.Sprintf("debug_headers: %v", debug), func(t *testing.T) {
			f := newFacade(t, legacy, legacy, fmt.Sprintf("debug_headers: %v", debug), `  - {name: x, match: "GET /x", mode: legacy}`)
			var hints []textproto.MIMEHeader
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				hints = append(hints, h)
				return nil
			}}
			req, _ := http.NewRequest(http.MethodGet, f.URL+"/x", nil)
			resp, body := f.do(t, req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
			want := []string(nil)
			if debug {
				want = []string{"legacy"}
			}
			if got := resp.Header["X-Strangler-Backend"]; !slices.Equal(got, want) {
				t.Errorf("X-Strangler-Backend = %q, want %q", got, want)
			}
			if got := resp.Header.Get("X-Strangler-Fallback"); got != "" {
				t.Errorf("the client received the backend's X-Strangler-Fallback: %q", got)
			}
			if got := resp.Trailer.Get("X-Strangler-Backend"); got != "" || strings.Contains(resp.Header.Get("Trailer"), "Strangler") {
				t.Errorf("the client was promised or received the backend's X-Strangler-Backend trailer field: %q (Trailer: %q)", got, resp.Header.Get("Trailer"))
			}
			if len(hints) != 1 || hints[0].Get("X-Strangler-Backend") != "" || hints[0].Get("Link") == "" {
				t.Errorf("1xx answers = %v, want one with Link alone", hints)
			}
			if body != "ok" || resp.Header.Get("X-Public") != "yes" || resp.Trailer.Get("X-Sum") != "1" {
				t.Errorf("got body %q, X-Public %q, trailer %v; want ok, yes and X-Sum 1", body, resp.Header.Get("X-Public"), resp.Trailer)
			}
		})
	}
}

func TestDebugHeaders(t *testing.T) {
	legacy := newBackend(t, answer(200, "ok"))
	f := newFacade(t, legacy.URL, legacy.URL, "debug_headers: true", `
  - {name: on, match: "GET /on", mode: legacy}
  - {name: off, match: "GET /off", mode: legacy, debug_headers: false}
`)
	if resp, _ := f.get(t, "/on"); resp.Header.Get("X-Strangler-Backend") != "legacy" {
		t.Errorf("X-Strangler-Backend missing with debug_headers on")
	}
	if resp, _ := f.get(t, "/off"); resp.Header.Get("X-Strangler-Backend") != "" {
		t.Errorf("X-Strangler-Backend sent for a route that turned it off")
	}
}

func TestStreamsResponsesAsTheyCome(t *testing.T) {
	next := make(chan struct{})
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Trailer", "X-Checksum")
		for i := range 3 {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
			<-next
		}
		w.Header().Set("X-Checksum", "abc")
	})
	f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
	resp, err := f.Client().Get(f.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := lines.ReadString('\n')
		if err != nil || line != fmt.Sprintf("part %d\n", i) {
			t.Fatalf("read %q, %v; want part %d before the backend sends more", line, err, i)
		}
		next <- struct{}{}
	}
	io.Copy(io.Discard, resp.Body)
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Errorf("trailer X-Checksum = %q, want abc", got)
	}
}

// A backend may send trailer fields it did not announce in a Trailer
// field (net/http's TrailerPrefix); they reach the client with the
// announced ones.
func TestUnannouncedTrailerFieldsArePassedOn(t *testing.T) {
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "1")
	})
	f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
	resp, body := f.get(t, "/x")
	if body != "body" || resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Late") != "1" {
		t.Errorf("got body %q, trailer %v; want body, X-Checksum abc and X-Late 1", body, resp.Trailer)
	}
}

// TestUpgrades speaks raw HTTP/1.1 so that it controls the Upgrade headers.
func TestUpgrades(t *testing.T) {
	echo := newBackend(t, testkit.WebSocketEcho(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Saw-Upgrade", r.Header.Get("Upgrade"))
		w.Header().Set("X-Saw-Settings", r.Header.Get("Http2-Settings"))
		w.Write([]byte("plain"))
	}))
	f := newFacade(t, echo.URL, echo.URL, "", `
  - {name: ws-legacy, match: "GET /ws", mode: legacy}
  - {name: ws-modern, match: "GET /ws2", mode: modern}
`)
	for _, path := range []string{"/ws", "/ws2"} {
		t.Run("a WebSocket upgrade on "+path+" is passed through", func(t *testing.T) {
			tunnelEchoes(t, f, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		})
	}
	// The protocols are read token by token: "websocket, h2c" reached the
	// backend whole, which may switch to h2c past the facade (found by the
	// red team).
	for _, c := range []struct{ connection, upgrade string }{
		{"Upgrade, HTTP2-Settings", "h2c"},
		{"Upgrade", "H2C/1"},
		{"Upgrade", "TLS/1.2"},
		{"Upgrade", "websocket, h2c"},
		{"Upgrade", "h2c, WebSocket"},
	} {
		ws := strings.Contains(strings.ToLower(c.upgrade), "websocket")
		name := "an upgrade to " + c.upgrade + " is served as HTTP/1.1 without it"
		if ws {
			name = "an upgrade to " + c.upgrade + " asks the backend for websocket alone"
		}
		t.Run(name, func(t *testing.T) {
			_, r := rawRequest(t, f, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: "+c.connection+"\r\nUpgrade: "+c.upgrade+"\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			switch saw, settings := resp.Header.Get("X-Saw-Upgrade"), resp.Header.Get("X-Saw-Settings"); {
			case ws && resp.StatusCode != http.StatusSwitchingProtocols:
				t.Errorf("got %d with the backend seeing Upgrade %q; want 101 from a backend asked for websocket alone", resp.StatusCode, saw)
			case !ws && (resp.StatusCode != http.StatusOK || saw != "" || settings != ""):
				t.Errorf("got %d with the backend seeing Upgrade %q, HTTP2-Settings %q; want 200 and no upgrade forwarded", resp.StatusCode, saw, settings)
			}
		})
	}
}

func rawRequest(t *testing.T, f *facade, raw string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// forwardedHeader sets its four values from one slice: a value added to
// one of them later must not overwrite the next.
func TestForwardedHeaderValuesStayApart(t *testing.T) {
	in := &http.Request{Host: "facade.example", RemoteAddr: "192.0.2.7:4711", Header: http.Header{}}
	out := (&Table{}).forwardedHeader(in, "req-1")
	for _, k := range []string{"X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id", "X-Forwarded-For"} {
		out.Add(k, "added")
	}
	want := http.Header{
		"X-Forwarded-Proto": {"http", "added"},
		"X-Forwarded-Host":  {"facade.example", "added"},
		"X-Request-Id":      {"req-1", "added"},
		"X-Forwarded-For":   {"192.0.2.7", "added"},
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("got %v, want %v", out, want)
	}
}

// A backend on the admin listener's host could set the status page's
// cookies (browsers do not keep cookies apart by port): the facade drops
// each Set-Cookie that names one, however spelled, and passes the rest.
func TestABackendsAdminCookiesAreDropped(t *testing.T) {
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		for _, c := range []string{
			"theme=dark; Path=/",
			"strangler_session=ABCDEFGHIJKLMNOPQRSTUVWXYZ234567; Path=/; HttpOnly",
			"=strangler_session=ABCDEFGHIJKLMNOPQRSTUVWXYZ234567; Path=/ui",
			" strangler_flash=eA; Path=/",
			"__Host-strangler_session=ABCDEFGHIJKLMNOPQRSTUVWXYZ234567; Path=/; Secure", // the admin listener's name over TLS
			"strangler_csrf",
			"lang=en",
		} {
			w.Header().Add("Set-Cookie", c)
		}
		if r.URL.Query().Has("only") {
			w.Header()["Set-Cookie"] = []string{"strangler_session=x"}
		}
	})
	f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
	res, _ := f.get(t, "/x")
	if got, want := res.Header.Values("Set-Cookie"), []string{"theme=dark; Path=/", "lang=en"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Set-Cookie = %q, want %q", got, want)
	}
	res, _ = f.get(t, "/x?only")
	if got := res.Header.Values("Set-Cookie"); len(got) > 0 {
		t.Errorf("Set-Cookie = %q, want none", got)
	}
}

// TestAnInformationalAnswerSetsNoAdminCookie: the forwarder dropped the
// admin listener's cookies from final answers only; a backend's 103
// Early Hints passed its Set-Cookie on as it came.
func TestAnInformationalAnswerSetsNoAdminCookie(t *testing.T) {
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.Header()["Set-Cookie"] = []string{"strangler_session=ABCDEFGHIJKLMNOPQRSTUVWXYZ234567; Path=/", "theme=dark"}
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Set-Cookie")
		w.Write([]byte("ok"))
	})
	f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
	var cookies [][]string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		cookies = append(cookies, h["Set-Cookie"])
		return nil
	}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.URL+"/x", nil)
	res, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := [][]string{{"theme=dark"}}; !reflect.DeepEqual(cookies, want) {
		t.Errorf("the 1xx answers set cookies %q, want %q", cookies, want)
	}
}

// TestASwitchDropsTheFieldsItsConnectionNames: a 101 answer reaches the
// client without the fields its Connection names or other hop-by-hop
// ones, or a backend's X-Strangler-* (see dropForged), as every other
// answer does, and with the switch itself.
func TestASwitchDropsTheFieldsItsConnectionNames(t *testing.T) {
	ws := "http://" + rawBackend(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nX-Strangler-Backend: modern\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
	f := newFacade(t, ws, ws, "", `  - {name: ws, match: "GET /ws", mode: legacy}`)
	_, r := rawRequest(t, f, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %v, %v; want 101", resp, err)
	}
	want := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Accept": {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}}
	if !reflect.DeepEqual(resp.Header, want) {
		t.Errorf("the client's 101 header is %v, want %v", resp.Header, want)
	}
}
