package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

func TestFallbackTriggers(t *testing.T) {
	legacy := newBackend(t, answer(200, `{"from":"legacy"}`))
	for _, tc := range []struct {
		name         string
		modern       func(t *testing.T) string
		reason       string
		modernStatus float64
	}{
		{"a 404 from modern", func(t *testing.T) string { return newBackend(t, answer(404, `{}`)).URL }, "not_found", 404},
		{"a 500 from modern", func(t *testing.T) string { return newBackend(t, answer(500, `{}`)).URL }, "server_error", 500},
		{"a 503 from modern", func(t *testing.T) string { return newBackend(t, answer(503, `{}`)).URL }, "server_error", 503},
		{"modern timing out", func(t *testing.T) string {
			return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(3 * time.Second):
				case <-r.Context().Done():
				}
			}).URL
		}, "timeout", 504},
		{"modern being down", deadURL, "error", 502},
		// Such an answer was served: the client's connection was cut
		// without a byte (status 99), or it got a 502 (an unasked 101).
		{"modern answering with a status below 100", func(t *testing.T) string {
			return rawAnswer(t, "HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok")
		}, "error", 502},
		{"modern switching protocols unasked", func(t *testing.T) string {
			return rawAnswer(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		}, "error", 502},
	} {
		t.Run(tc.name+" falls back to legacy", func(t *testing.T) {
			f := newFacade(t, legacy.URL, tc.modern(t), "debug_headers: true", `
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}
`)
			req, _ := http.NewRequest(http.MethodGet, f.URL+"/patients/987654?ssn=123-45-6789", nil)
			req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			resp, body := f.do(t, req)
			if resp.StatusCode != 200 || body != `{"from":"legacy"}` {
				t.Fatalf("got %d %s, want legacy's 200", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Strangler-Backend"); got != "legacy" {
				t.Errorf("X-Strangler-Backend = %q, want legacy", got)
			}
			if got := legacy.last(t).RawQuery; got != "ssn=123-45-6789" {
				t.Errorf("legacy got query %q, want the client's", got)
			}
			if got := f.metric(t, "strangler_fallback_total", map[string]string{"route": "get-patient", "reason": tc.reason}); got != 1 {
				t.Errorf("strangler_fallback_total{reason=%q} = %v, want 1", tc.reason, got)
			}
			if got := f.metric(t, "strangler_requests_total", map[string]string{"route": "get-patient", "backend": "modern", "code": itoa(tc.modernStatus)}); got != 1 {
				t.Errorf("the modern attempt was not counted with code %v", tc.modernStatus)
			}
			lines := f.logLines(t, "fallback")
			if len(lines) != 1 {
				t.Fatalf("got %d fallback log lines, want exactly 1:\n%s", len(lines), f.logs)
			}
			line := lines[0]
			want := map[string]any{
				"route": "get-patient", "method": "GET", "reason": tc.reason,
				"modern_status": tc.modernStatus, "legacy_status": 200.0,
				"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("log field %s = %v, want %v", k, line[k], v)
				}
			}
			if id, _ := line["request_id"].(string); id == "" || legacy.last(t).Header.Get("X-Request-Id") != id {
				t.Errorf("log request_id %q is not the id legacy received", id)
			}
			if ms, ok := line["duration_ms"].(float64); !ok || ms < 0 {
				t.Errorf("log line has no duration_ms: %v", line)
			}
			for _, secret := range []string{"987654", "ssn", "123-45"} {
				if strings.Contains(f.logs.String(), secret) {
					t.Errorf("the log carries %q from the path or query", secret)
				}
			}
		})
	}
}

func itoa(f float64) string { return codeLabel(int(f)) }

// TestAnInvalidStatusFromModernFallsBackAsAServerError: a status from 600
// to 999, which net/http reads and RFC 9110 section 15 calls invalid, is
// taken as a 5xx, as the RFC asks of a client and as the guard counts it:
// it was served to the client.
func TestAnInvalidStatusFromModernFallsBackAsAServerError(t *testing.T) {
	legacy := newBackend(t, answer(200, `{"from":"legacy"}`))
	modern := rawAnswer(t, "HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok")
	f := newFacade(t, legacy.URL, modern, "", `
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}
`)
	resp, body := f.get(t, "/patients/1")
	if resp.StatusCode != 200 || body != `{"from":"legacy"}` {
		t.Fatalf("got %d %s, want legacy's 200", resp.StatusCode, body)
	}
	if got := f.metric(t, "strangler_fallback_total", map[string]string{"route": "get-patient", "reason": "server_error"}); got != 1 {
		t.Errorf("strangler_fallback_total{reason=server_error} = %v, want 1", got)
	}
}

// TestAFallbackDoesNotWaitForTheBodyOfModernsDiscardedAnswer: modern
// answers 404 or 503 and then sends its body a byte at a time (30 s in
// all); the client gets legacy's answer without waiting for it, as it
// waited for the whole of it before legacy was asked.
func TestAFallbackDoesNotWaitForTheBodyOfModernsDiscardedAnswer(t *testing.T) {
	legacy := newBackend(t, answer(200, `{"from":"legacy"}`))
	for _, status := range []string{"404 Not Found", "503 Service Unavailable"} {
		t.Run(status, func(t *testing.T) {
			modern := "http://" + testkit.ServeConns(t, func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 "+status+"\r\nContent-Length: 30\r\n\r\n")
				for range 30 {
					if _, err := io.WriteString(c, "a"); err != nil {
						return
					}
					time.Sleep(time.Second)
				}
			})
			// modern's timeout is longer than its body takes: only the
			// bound on draining a discarded answer keeps the client from
			// waiting for it.
			f := serveConfig(t, parseConfig(t, fmt.Sprintf(`backends:
  legacy: {url: %q, timeout: 1s}
  modern: {url: %q, timeout: 1m}
routes:
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}
`, legacy.URL, modern)))
			start := time.Now()
			resp, body := f.get(t, "/patients/1")
			if resp.StatusCode != 200 || body != `{"from":"legacy"}` {
				t.Fatalf("got %d %s, want legacy's 200", resp.StatusCode, body)
			}
			// Half the 30 s modern's body takes: generous on a loaded
			// machine, and still short of waiting for the body.
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("the client waited %v for legacy's answer: modern's discarded body held it", took.Round(time.Millisecond))
			}
		})
	}
}

// TestFallbackOnlyOnConfiguredTriggers leaves each trigger out of
// fallback_on in turn, with modern failing in just that way: the client
// gets modern's answer (or the facade's error for it), and legacy nothing.
func TestFallbackOnlyOnConfiguredTriggers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fallbackOn string
		modern     func(t *testing.T) string
		wantStatus int
	}{
		{"a 404 without 404", "[5xx, timeout, error]", func(t *testing.T) string { return newBackend(t, answer(404, "no such item")).URL }, 404},
		{"a 500 without 5xx", "[404, timeout, error]", func(t *testing.T) string { return newBackend(t, answer(500, "modern broke")).URL }, 500},
		{"a timeout without timeout", "[404, 5xx, error]", func(t *testing.T) string {
			return newBackend(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }).URL
		}, http.StatusGatewayTimeout},
		{"modern down without error", "[404, 5xx, timeout]", deadURL, http.StatusBadGateway},
	} {
		t.Run(tc.name+" reaches the client", func(t *testing.T) {
			legacy := newBackend(t, answer(200, "legacy"))
			f := newFacade(t, legacy.URL, tc.modern(t), "", `
  - {name: some, match: "GET /items/{id}", mode: fallback, fallback_on: `+tc.fallbackOn+`}
`)
			if resp, body := f.get(t, "/items/1"); resp.StatusCode != tc.wantStatus {
				t.Errorf("got %d %q, want %d: the trigger is not configured", resp.StatusCode, body, tc.wantStatus)
			}
			if legacy.hits() != 0 {
				t.Errorf("legacy was called %d times", legacy.hits())
			}
			if n := len(f.logLines(t, "fallback")); n != 0 {
				t.Errorf("got %d fallback log lines, want none", n)
			}
		})
	}
}

func TestWritesFallBackOnlyWhenModernNeverGotThem(t *testing.T) {
	t.Run("a POST modern received and failed is not sent to legacy", func(t *testing.T) {
		legacy := newBackend(t, answer(201, "legacy"))
		modern := newBackend(t, answer(500, "modern failed"))
		f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: create, match: "POST /patients", mode: fallback}
`)
		req, _ := http.NewRequest(http.MethodPost, f.URL+"/patients", strings.NewReader(`{"name":"x"}`))
		resp, body := f.do(t, req)
		if resp.StatusCode != 500 || body != "modern failed" {
			t.Errorf("got %d %q, want modern's answer", resp.StatusCode, body)
		}
		if legacy.hits() != 0 {
			t.Errorf("legacy received the write too: it would be applied twice")
		}
		if got := string(modern.last(t).Body); got != `{"name":"x"}` {
			t.Errorf("modern got body %q", got)
		}
	})
	t.Run("a POST modern never received goes to legacy with its body", func(t *testing.T) {
		legacy := newBackend(t, answer(201, "legacy"))
		f := newFacade(t, legacy.URL, deadURL(t), "", `
  - {name: create, match: "POST /patients", mode: fallback}
`)
		req, _ := http.NewRequest(http.MethodPost, f.URL+"/patients", strings.NewReader(`{"name":"x"}`))
		req.ContentLength = -1 // streamed, not buffered by anyone
		resp, body := f.do(t, req)
		if resp.StatusCode != 201 || body != "legacy" {
			t.Fatalf("got %d %q, want legacy's 201", resp.StatusCode, body)
		}
		if got := string(legacy.last(t).Body); got != `{"name":"x"}` {
			t.Errorf("legacy got body %q, want the client's", got)
		}
		if got := f.metric(t, "strangler_fallback_total", map[string]string{"route": "create", "reason": "error"}); got != 1 {
			t.Errorf("fallback not counted: %v", got)
		}
	})
	t.Run("a PUT listed in fallback_methods is replayed to legacy", func(t *testing.T) {
		legacy := newBackend(t, answer(200, "legacy"))
		modern := newBackend(t, answer(404, "no such patient"))
		f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: update, match: "PUT /patients/{id}", mode: fallback, fallback_methods: [PUT]}
`)
		req, _ := http.NewRequest(http.MethodPut, f.URL+"/patients/7", strings.NewReader(`{"name":"y"}`))
		resp, body := f.do(t, req)
		if resp.StatusCode != 200 || body != "legacy" {
			t.Fatalf("got %d %q, want legacy's answer", resp.StatusCode, body)
		}
		if a, b := string(modern.last(t).Body), string(legacy.last(t).Body); a != `{"name":"y"}` || b != a {
			t.Errorf("modern got %q and legacy %q, want the client's body twice", a, b)
		}
	})
	t.Run("a replayable body above max_replay_body gets 413 and reaches nobody", func(t *testing.T) {
		legacy := newBackend(t, answer(200, "legacy"))
		modern := newBackend(t, answer(200, "modern"))
		f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: update, match: "PUT /patients/{id}", mode: fallback, fallback_methods: [PUT], max_replay_body: 1KiB}
`)
		req, _ := http.NewRequest(http.MethodPut, f.URL+"/patients/7", strings.NewReader(strings.Repeat("x", 1025)))
		resp, body := f.do(t, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "max_replay_body") {
			t.Errorf("got %d %q, want 413 naming max_replay_body", resp.StatusCode, body)
		}
		if legacy.hits()+modern.hits() != 0 {
			t.Errorf("the body was forwarded (legacy %d, modern %d)", legacy.hits(), modern.hits())
		}
	})
}

func TestFallbackHoldsBackModernInformationalResponses(t *testing.T) {
	hinting := func(status int, body, hint string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Link", hint)
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	legacy := newBackend(t, hinting(200, "legacy", "</legacy.css>; rel=preload"))
	modern := newBackend(t, hinting(404, "nope", "</modern.css>; rel=preload"))
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: page, match: "GET /page", mode: fallback}
`)
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, h.Get("Link"))
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/page", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	if _, body := f.do(t, req); body != "legacy" {
		t.Fatalf("got %q, want legacy's page", body)
	}
	if len(hints) != 1 || hints[0] != "</legacy.css>; rel=preload" {
		t.Errorf("client got early hints %q, want only legacy's: modern's answer was discarded", hints)
	}
}
