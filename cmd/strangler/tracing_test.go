package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// collector is a real OTLP receiver, over HTTP or gRPC, that keeps the
// spans it was sent and the services that sent them.
type collector struct {
	coltrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []receivedSpan
	services map[string]bool
}

// receivedSpan is a span as the collector got it.
type receivedSpan struct {
	kind  tracepb.Span_SpanKind
	name  string
	attrs map[string]string
}

func (s receivedSpan) String() string {
	return fmt.Sprintf("%s %q %s/%s", s.kind, s.name, s.attrs["strangler.backend"], s.attrs["strangler.purpose"])
}

func (c *collector) take(req *coltrace.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				c.services[a.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				attrs := map[string]string{}
				for _, a := range s.GetAttributes() {
					v := a.GetValue()
					attrs[a.GetKey()] = v.GetStringValue()
					if _, ok := v.GetValue().(*commonpb.AnyValue_IntValue); ok {
						attrs[a.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
					}
				}
				c.spans = append(c.spans, receivedSpan{s.GetKind(), s.GetName(), attrs})
			}
		}
	}
}

func (c *collector) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	c.take(req)
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// find returns the span of kind and name whose backend and purpose are
// these ("" for any), once strangler has sent it.
func (c *collector) find(kind tracepb.Span_SpanKind, name, backend, purpose string) (receivedSpan, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s.kind == kind && s.name == name && (backend == "" || s.attrs["strangler.backend"] == backend) &&
			(purpose == "" || s.attrs["strangler.purpose"] == purpose) && c.services["strangler"] {
			return s, true
		}
	}
	return receivedSpan{}, false
}

func (c *collector) all() []receivedSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]receivedSpan(nil), c.spans...)
}

// startCollector serves OTLP over protocol and returns its endpoint URL.
func startCollector(t *testing.T, protocol string, c *collector) string {
	t.Helper()
	if protocol == "grpc" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		coltrace.RegisterTraceServiceServer(srv, c)
		go srv.Serve(ln)
		t.Cleanup(srv.Stop)
		return "http://" + ln.Addr().String()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		c.take(&req)
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
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
			c := &collector{services: map[string]bool{}}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", startCollector(t, protocol, c))
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
			line := logs.waitFor(t, "serving", nil, 10*time.Second)
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
					if got, ok = c.find(w.kind, w.name, w.backend, w.purpose); ok {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("no %s %q %s/%s span from strangler among %v", w.kind, w.name, w.backend, w.purpose, c.all())
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
			for _, s := range c.all() {
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
