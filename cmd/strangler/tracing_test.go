package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strangler/internal/testkit"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// receivedSpan is a span a collector got, with its attributes as text.
type receivedSpan struct {
	kind    tracepb.Span_SpanKind
	name    string
	service string
	attrs   map[string]string
}

func (s receivedSpan) String() string {
	return fmt.Sprintf("%s %q %s/%s", s.kind, s.name, s.attrs["strangler.backend"], s.attrs["strangler.purpose"])
}

// received returns the spans c got so far.
func received(c *testkit.Collector) []receivedSpan {
	var out []receivedSpan
	for _, s := range c.Spans() {
		attrs := map[string]string{}
		for _, a := range s.Span.GetAttributes() {
			v := a.GetValue()
			attrs[a.GetKey()] = v.GetStringValue()
			if _, ok := v.GetValue().(*commonpb.AnyValue_IntValue); ok {
				attrs[a.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
			}
		}
		out = append(out, receivedSpan{s.Span.GetKind(), s.Name, s.Resource["service.name"], attrs})
	}
	return out
}

// findSpan returns strangler's span of kind and name whose backend and
// purpose are these ("" for any), once c has received it.
func findSpan(c *testkit.Collector, kind tracepb.Span_SpanKind, name, backend, purpose string) (receivedSpan, bool) {
	for _, s := range received(c) {
		if s.service == "strangler" && s.kind == kind && s.name == name && (backend == "" || s.attrs["strangler.backend"] == backend) &&
			(purpose == "" || s.attrs["strangler.purpose"] == purpose) {
			return s, true
		}
	}
	return receivedSpan{}, false
}

// TestTracesReachAnOTLPCollector configures tracing only through the
// standard OTEL_* variables, as an operator would, for both protocols,
// and checks that the spans arriving follow OpenTelemetry's HTTP
// conventions and hold no path parameter or query value.
func TestTracesReachAnOTLPCollector(t *testing.T) {
	legacy := backendAnswering(t, `{"id":1}`)
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			return
		}
		http.NotFound(w, nil)
	})
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run("over "+protocol, func(t *testing.T) {
			c := testkit.NewCollector(t, protocol)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.Endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
			t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
			path := writeConfig(t, "", legacy.URL, modern.URL, `
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}
  - {name: create-patient, match: "POST /patients", mode: dual-write, id_field: id}`)
			ctx, cancel := context.WithCancel(context.Background())
			logs := newLogBuffer()
			done := make(chan error, 1)
			go func() { done <- run(ctx, []string{"serve", "--config", path}, os.Getenv, io.Discard, logs) }()
			defer func() { cancel(); <-done }()
			line := logs.waitFor(t, "serving", nil, startWait)
			logs.waitFor(t, "tracing on: spans go to the OTLP exporter the OTEL_* variables configure", nil, time.Second)
			public := line["listen"].(string)
			if code, body := getBody(t, "http://"+public+"/patients/8675309?ssn=123-45-6789"); code != 200 || body != `{"id":1}` {
				t.Fatalf("got %d %q", code, body)
			}
			resp, err := http.Post("http://"+public+"/patients", "application/json", strings.NewReader(`{"name":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			server, client := tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_CLIENT
			for _, w := range []struct {
				kind                   tracepb.Span_SpanKind
				name, backend, purpose string
				attrs                  map[string]string
			}{
				{server, "GET /patients/{id}", "legacy", "", map[string]string{
					"http.route": "/patients/{id}", "http.request.method": "GET", "url.path": "/patients/{id}", "url.query": "REDACTED",
					"url.scheme": "http", "http.response.status_code": "200", "strangler.route": "get-patient", "strangler.mode": "fallback",
					"strangler.fallback_reason": "not_found",
				}},
				{client, "GET /patients/{id}", "modern", "serve", map[string]string{
					"url.full": modern.URL + "/patients/{id}?REDACTED", "url.template": "/patients/{id}",
					"http.response.status_code": "404", "error.type": "404",
				}},
				{client, "GET /patients/{id}", "legacy", "fallback", map[string]string{"http.response.status_code": "200"}},
				{server, "POST /patients", "legacy", "", map[string]string{"http.route": "/patients", "http.response.status_code": "200"}},
				{client, "POST /patients", "legacy", "serve", map[string]string{"url.full": legacy.URL + "/patients"}},
				// The delivery to the secondary, from the repair worker.
				{client, "POST /patients", "modern", "dual-write", map[string]string{
					"url.full": modern.URL + "/patients", "url.template": "/patients", "http.response.status_code": "201",
				}},
			} {
				var got receivedSpan
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					var ok bool
					if got, ok = findSpan(c, w.kind, w.name, w.backend, w.purpose); ok {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("no %s %q %s/%s span from strangler among %v", w.kind, w.name, w.backend, w.purpose, received(c))
					}
				}
				host, port, _ := net.SplitHostPort(strings.TrimPrefix(legacy.URL, "http://"))
				if w.kind == server {
					host, port, _ = net.SplitHostPort(public)
				} else if w.backend == "modern" {
					host, port, _ = net.SplitHostPort(strings.TrimPrefix(modern.URL, "http://"))
				}
				w.attrs["server.address"], w.attrs["server.port"] = host, port
				for k, v := range w.attrs {
					if got.attrs[k] != v {
						t.Errorf("%v: %s = %q, want %q", got, k, got.attrs[k], v)
					}
				}
			}
			for _, s := range received(c) {
				for k, v := range s.attrs {
					for _, secret := range []string{"8675309", "123-45-6789", "ssn"} {
						if strings.Contains(v, secret) || strings.Contains(s.name, secret) {
							t.Errorf("%v carries %q in %s = %q", s, secret, k, v)
						}
					}
				}
			}
		})
	}
}
