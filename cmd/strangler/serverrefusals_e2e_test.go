package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/internal/testkit"
)

// refusalExchange writes raw to a new connection to addr and reads one answer
// and, after it, what else the connection gives before it ends.
func refusalExchange(t *testing.T, addr, raw string) (resp *http.Response, body string, rest []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(conn, raw)
	br := bufio.NewReader(conn)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rest, _ = io.ReadAll(br)
	return resp, string(b), rest
}

// wantJSONRefusal fails t unless resp is status with a JSON error body
// and the connection closed after it.
func wantJSONRefusal(t *testing.T, resp *http.Response, body string, rest []byte, status int) {
	t.Helper()
	var e struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if resp.StatusCode != status || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" || e.RequestID == "" {
		t.Errorf("got %d %q, want %d with a JSON error and a request id", resp.StatusCode, body, status)
	}
	if resp.Header.Get("Content-Type") != "application/json" || !resp.Close || len(rest) > 0 {
		t.Errorf("Content-Type %q, Connection %q, %q after the answer; want application/json, close, nothing",
			resp.Header.Get("Content-Type"), resp.Header.Get("Connection"), rest)
	}
}

// refusedLines counts the "request refused" log lines of listener.
func refusedLines(logs *logBuffer, listener string) int {
	n := 0
	for _, raw := range strings.Split(logs.String(), "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(raw), &line) == nil && line["msg"] == "request refused" && line["listener"] == listener {
			n++
		}
	}
	return n
}

// The marker stands for a patient's identifier in a request: no log line
// may hold it.
const refusalMarker = "MRN-4711"

// TestRequestsGosServerCannotReadAreJSONRefusals sends, to both listeners,
// requests that Go's HTTP server answers before any handler runs: each
// answer is the facade's JSON refusal with the connection closed, counted
// by reason and logged once, and nothing reaches a backend.
func TestRequestsGosServerCannotReadAreJSONRefusals(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: patient, match: "GET /patients/{id}", mode: modern}
`)
	head := "X-Case: s\r\nX-Patient: " + refusalMarker + "\r\n"
	cases := []struct {
		name, raw, reason string
		status            int
	}{
		{"an invalid percent-encoding", "GET /patients/%zz" + refusalMarker + " HTTP/1.1\r\nHost: f\r\n" + head + "\r\n", "malformed", 400},
		{"a raw control character in the target", "GET /patients/\x7f" + refusalMarker + " HTTP/1.1\r\nHost: f\r\n" + head + "\r\n", "malformed", 400},
		{"a target not starting with /", "GET patients/" + refusalMarker + " HTTP/1.1\r\nHost: f\r\n" + head + "\r\n", "malformed", 400},
		{"two Host headers", "GET /patients/1 HTTP/1.1\r\nHost: f\r\nHost: " + refusalMarker + "\r\n" + head + "\r\n", "malformed", 400},
		{"an invalid method", "GE\"T /patients/1 HTTP/1.1\r\nHost: f\r\n" + head + "\r\n", "malformed", 400},
		{"a header line without a colon", "GET /patients/1 HTTP/1.1\r\nHost: f\r\n" + head + refusalMarker + "\r\n\r\n", "malformed", 400},
		{"a header name that is no token", "GET /patients/1 HTTP/1.1\r\nHost: f\r\n" + head + "X Patient: " + refusalMarker + "\r\n\r\n", "header", 400},
		{"no Host on HTTP/1.1", "GET /patients/" + refusalMarker + " HTTP/1.1\r\n" + head + "\r\n", "host", 400},
		{"a head over 64 KiB", "GET /patients/1 HTTP/1.1\r\nHost: f\r\n" + head + "X-A: " + strings.Repeat(refusalMarker, 8<<10) + "\r\n\r\n", "head_too_large", 431},
		{"Transfer-Encoding chunked, identity", "POST /patients/1 HTTP/1.1\r\nHost: f\r\n" + head + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", "transfer_encoding", 501},
		{"HTTP/2.0 in plain text", "GET /patients/" + refusalMarker + " HTTP/2.0\r\nHost: f\r\n" + head + "\r\n", "http_version", 505},
		{"an Expect other than 100-continue", "POST /patients/1 HTTP/1.1\r\nHost: f\r\n" + head + "Expect: " + refusalMarker + "\r\nContent-Length: 2\r\n\r\nhi", "expect", 417},
	}
	counts := map[string]int{}
	for _, c := range cases {
		t.Run(c.name+" on the public listener", func(t *testing.T) {
			resp, body, rest := refusalExchange(t, r.public, c.raw)
			wantJSONRefusal(t, resp, body, rest, c.status)
			counts[c.reason]++
		})
	}
	if n := len(legacy.received(t, "s")) + len(modern.received(t, "s")); n > 0 {
		t.Errorf("%d refused requests reached a backend", n)
	}
	for reason, n := range counts {
		sample := fmt.Sprintf(`strangler_refused_total{reason=%q,route=""}`, reason)
		if got := metricValue(t, r.admin, sample); got != fmt.Sprint(n) {
			t.Errorf("%s = %q, want %d", sample, got, n)
		}
	}
	for _, c := range cases[:3] {
		t.Run(c.name+" on the admin listener", func(t *testing.T) {
			resp, body, rest := refusalExchange(t, r.admin, strings.Replace(c.raw, "/patients/", "/healthz/", 1))
			wantJSONRefusal(t, resp, body, rest, c.status)
		})
	}
	if got := metricValue(t, r.admin, `strangler_admin_denied_total{reason="malformed"}`); got != "3" {
		t.Errorf(`strangler_admin_denied_total{reason="malformed"} = %q, want 3`, got)
	}
	t.Run("net/http's own 200 to OPTIONS * on the admin listener passes", func(t *testing.T) {
		resp, body, _ := refusalExchange(t, r.admin, "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 || body != "" {
			t.Errorf("got %d %q, want net/http's empty 200", resp.StatusCode, body)
		}
	})
	testkit.Eventually(t, 30*time.Second, "a log line for each refusal", func() bool {
		return refusedLines(r.logs, "public") == len(cases) && refusedLines(r.logs, "admin") == 3
	})
	if strings.Contains(r.logs.String(), refusalMarker) {
		t.Errorf("a log line holds what the client sent")
	}
}

// TestAServerRefusalEndsItsConnectionOnly pipelines requests around one
// Go's server refuses: those before it are served, those after it are
// not (the connection closes), and another connection is untouched.
func TestAServerRefusalEndsItsConnectionOnly(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: patient, match: "GET /patients/{id}", mode: modern}
`)
	other, err := net.Dial("tcp", r.public)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetDeadline(time.Now().Add(20 * time.Second))
	otherR := bufio.NewReader(other)
	get := func(id string) {
		t.Helper()
		fmt.Fprintf(other, "GET /patients/1 HTTP/1.1\r\nHost: f\r\nX-Case: %s\r\n\r\n", id)
		resp, err := http.ReadResponse(otherR, nil)
		if err != nil {
			t.Fatalf("the other connection: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("the other connection: status %d", resp.StatusCode)
		}
	}
	get("other-1")

	conn, err := net.Dial("tcp", r.public)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(conn, "GET /patients/1 HTTP/1.1\r\nHost: f\r\nX-Case: before\r\n\r\n"+
		"GET /patients/%zz HTTP/1.1\r\nHost: f\r\nX-Case: bad\r\n\r\n"+
		"GET /patients/1 HTTP/1.1\r\nHost: f\r\nX-Case: after\r\n\r\n")
	br := bufio.NewReader(conn)
	first, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, first.Body)
	if first.StatusCode != 200 {
		t.Errorf("the request before the refused one: status %d, want 200", first.StatusCode)
	}
	second, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(second.Body)
	rest, _ := io.ReadAll(br)
	wantJSONRefusal(t, second, string(body), rest, 400)
	if n := len(modern.received(t, "after")) + len(legacy.received(t, "after")); n > 0 {
		t.Errorf("the request after the refused one reached a backend")
	}
	get("other-2")
}

// TestMetricsListenRefusesInJSON: the --metrics-listen listener of the
// backfill and verify answers a request Go's server cannot read as the
// facade's listeners do, and logs it.
func TestMetricsListenRefusesInJSON(t *testing.T) {
	logs := newLogBuffer()
	stop, err := serveMetrics("127.0.0.1:0", config.Admin{}, prometheus.NewRegistry(), slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	addr := logs.waitFor(t, "metrics", nil, 10*time.Second)["listen"].(string)
	resp, body, rest := refusalExchange(t, addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX Table: "+refusalMarker+"\r\n\r\n")
	wantJSONRefusal(t, resp, body, rest, 400)
	logs.waitFor(t, "request refused", map[string]any{"listener": "metrics", "reason": "header"}, 10*time.Second)
	if strings.Contains(logs.String(), refusalMarker) {
		t.Errorf("a log line holds what the client sent")
	}
}
