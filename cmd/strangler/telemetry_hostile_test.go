package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"strangler/internal/testkit"
	"strings"
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
