package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strangler/internal/testkit"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSpansHoldNoHostThatIsNoServerName: a client writes the Host header
// (net/http lets through up to the head's 64 KiB of it, with "=", ";",
// "%" and more). A span's server.address is a host name or an IP address
// the client asked for; a Host that is neither (free text, 60 KiB) leaves
// it out rather than sending it to the collector with every request.
func TestSpansHoldNoHostThatIsNoServerName(t *testing.T) {
	legacy := backendAnswering(t, `{"id":1}`)
	c := testkit.NewCollector(t, "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.Endpoint)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	path := writeConfig(t, "", legacy.URL, legacy.URL, `
  - {name: get-patient, match: "GET /patients/{id}", mode: legacy}`)
	r := startRunEnv(t, os.Getenv, "serve", "--config", path)

	for i, tc := range []struct {
		host, address, port string // address "" for none
	}{
		{"api.example.org:8443", "api.example.org", "8443"},
		{"Clinic-7.example.org.", "Clinic-7.example.org.", "80"},
		{"[::1]:8080", "::1", "8080"},
		{"10.0.0.7", "10.0.0.7", "80"},
		{"patient=Jane;dob=1970-01-01", "", ""},
		{"Jane%20Doe.example", "", ""},
		{strings.Repeat("h", 60000), "", ""},
		{strings.Repeat("a.", 127) + "bc", "", ""},     // 256 bytes: no DNS name
		{strings.Repeat("x", 64) + ".example", "", ""}, // a label over 63 bytes
		{"a..example", "", ""},
	} {
		trace := fmt.Sprintf("%032x", i+1)
		raw := "GET /patients/8675309 HTTP/1.1\r\nHost: " + tc.host + "\r\ntraceparent: 00-" + trace + "-00f067aa0ba902b7-01\r\nConnection: close\r\n\r\n"
		if out := rawExchange(t, r.public, raw); !strings.HasPrefix(out, "HTTP/1.1 200 ") {
			t.Fatalf("Host %.40q: got %.80q", tc.host, out)
		}
		var span testkit.Span
		testkit.Eventually(t, 10*time.Second, "the server span of trace "+trace, func() bool {
			for _, s := range c.Spans() {
				if hex.EncodeToString(s.Span.GetTraceId()) == trace && s.Name == "GET /patients/{id}" &&
					hex.EncodeToString(s.Span.GetParentSpanId()) == "00f067aa0ba902b7" {
					span = s
					return true
				}
			}
			return false
		})
		got := map[string]string{}
		for _, a := range span.Span.GetAttributes() {
			v := a.GetValue()
			got[a.GetKey()] = v.GetStringValue()
			if v.GetStringValue() == "" {
				got[a.GetKey()] = fmt.Sprint(v.GetIntValue())
			}
		}
		if got["server.address"] != tc.address || got["server.port"] != tc.port {
			t.Errorf("Host %.40q (%d bytes): server.address %.40q (%d bytes), server.port %q; want %q, %q",
				tc.host, len(tc.host), got["server.address"], len(got["server.address"]), got["server.port"], tc.address, tc.port)
		}
	}
}

// TestTheFallbackLineNamesOnlyATraceTheBackendsContinue: with tracing
// off, the fallback line's trace_id is the client's traceparent's, which
// goes to both backends as sent. A traceparent W3C Trace Context has them
// ignore (section 3.2.2: they start a trace of their own) names none.
func TestTheFallbackLineNamesOnlyATraceTheBackendsContinue(t *testing.T) {
	legacy := backendAnswering(t, `{"id":1}`)
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	path := writeConfig(t, "", legacy.URL, modern.URL, `
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}`)
	r := startRun(t, "serve", "--config", path)

	const id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for i, tc := range []struct {
		name, traceparent, want string
	}{
		{"a valid one", "00-" + id + "-" + parent + "-01", id},
		{"a later version with more fields", "cc-" + id + "-" + parent + "-01-what-comes-later", id},
		{"upper-case hex", "00-" + strings.ToUpper(id) + "-" + parent + "-01", ""},
		{"version ff", "ff-" + id + "-" + parent + "-01", ""},
		{"an upper-case version", "0A-" + id + "-" + parent + "-01", ""},
		{"an all-zero parent id", "00-" + id + "-0000000000000000-01", ""},
		{"an all-zero trace id", "00-00000000000000000000000000000000-" + parent + "-01", ""},
		{"a parent id that is no hex", "00-" + id + "-00f067aa0ba902zz-01", ""},
		{"no dash before the flags", "00-" + id + "-" + parent + "x01", ""},
		{"flags that are no hex", "00-" + id + "-" + parent + "-0g", ""},
		{"version 00 with more after it", "00-" + id + "-" + parent + "-01-extra", ""},
		{"10 KB after a later version's flags without a dash", "cc-" + id + "-" + parent + "-01" + strings.Repeat("x", 10<<10), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqID := fmt.Sprintf("traceparent-case-%d", i)
			req, _ := http.NewRequest(http.MethodGet, "http://"+r.public+"/patients/1", nil)
			req.Header.Set("Traceparent", tc.traceparent)
			req.Header.Set("X-Request-Id", reqID)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			line := r.logs.waitFor(t, "fallback", map[string]any{"request_id": reqID}, 10*time.Second)
			if got, _ := line["trace_id"].(string); got != tc.want {
				t.Errorf("traceparent %.70q: trace_id %q, want %q", tc.traceparent, got, tc.want)
			}
		})
	}
}

// TestATracestateGoesOnOnlyWithItsTrace: with tracing on, the backends
// get the facade's traceparent. The client's tracestate goes with it
// only when it belongs to that trace and W3C Trace Context lets it pass:
// not beside a trace the facade started because the client's
// traceparent was one to ignore, nor with more than 32 members.
func TestATracestateGoesOnOnlyWithItsTrace(t *testing.T) {
	var mu sync.Mutex
	got := map[string][2]string{} // request id: traceparent, tracestate
	legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("X-Request-Id")] = [2]string{r.Header.Get("Traceparent"), strings.Join(r.Header.Values("Tracestate"), ",")}
		mu.Unlock()
		io.WriteString(w, `{"id":1}`)
	})
	c := testkit.NewCollector(t, "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.Endpoint)
	path := writeConfig(t, "", legacy.URL, legacy.URL, `
  - {name: get-patient, match: "GET /patients/{id}", mode: legacy}`)
	r := startRunEnv(t, os.Getenv, "serve", "--config", path)

	const id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("v%d=x", i))
	}
	for i, tc := range []struct {
		name, traceparent, tracestate string
		sameTrace                     bool
		want                          string
	}{
		{"a valid traceparent's", "00-" + id + "-" + parent + "-01", "vendor=a,other=b", true, "vendor=a,other=b"},
		{"an upper-case traceparent's", "00-" + strings.ToUpper(id) + "-" + parent + "-01", "vendor=a", false, ""},
		{"an all-zero parent id's", "00-" + id + "-0000000000000000-01", "vendor=a", false, ""},
		{"one of 40 members", "00-" + id + "-" + parent + "-01", strings.Join(many, ","), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqID := fmt.Sprintf("tracestate-case-%d", i)
			req, _ := http.NewRequest(http.MethodGet, "http://"+r.public+"/patients/1", nil)
			req.Header.Set("Traceparent", tc.traceparent)
			req.Header.Set("Tracestate", tc.tracestate)
			req.Header.Set("X-Request-Id", reqID)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			sent := got[reqID]
			mu.Unlock()
			if same := strings.Contains(sent[0], id); same != tc.sameTrace || sent[1] != tc.want {
				t.Errorf("legacy got traceparent %q and tracestate %.40q (%d bytes); want the client's trace %v and tracestate %q",
					sent[0], sent[1], len(sent[1]), tc.sameTrace, tc.want)
			}
		})
	}
}
