package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// collector is a real OTLP receiver, over HTTP or gRPC, that keeps the
// names of the spans it was sent and the service that sent them.
type collector struct {
	coltrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    map[string]bool
	services map[string]bool
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
				c.spans[s.GetName()] = true
			}
		}
	}
}

func (c *collector) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	c.take(req)
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) hasAll(spans []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range spans {
		if !c.spans[s] {
			return false
		}
	}
	return c.services["strangler"]
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
// standard OTEL_* variables, as an operator would, for both protocols.
func TestTracesReachAnOTLPCollector(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			return
		}
		http.NotFound(w, nil)
	})
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run("over "+protocol, func(t *testing.T) {
			c := &collector{spans: map[string]bool{}, services: map[string]bool{}}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", startCollector(t, protocol, c))
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
			t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
			path := writeConfig(t, "", legacy.URL, modern.URL, `
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}
  - {name: create-patient, match: "POST /patients", mode: dual-write}`)
			ctx, cancel := context.WithCancel(context.Background())
			logs := newLogBuffer()
			done := make(chan error, 1)
			go func() { done <- run(ctx, []string{"serve", "--config", path}, os.Getenv, io.Discard, logs) }()
			defer func() { cancel(); <-done }()
			line := logs.waitFor(t, "serving", nil, 10*time.Second)
			logs.waitFor(t, "tracing on: spans go to the OTLP exporter the OTEL_* variables configure", nil, time.Second)
			if code, body := getBody(t, "http://"+line["listen"].(string)+"/patients/75"); code != 200 || body != "legacy" {
				t.Fatalf("got %d %q", code, body)
			}
			resp, err := http.Post("http://"+line["listen"].(string)+"/patients", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := []string{"GET get-patient", "GET modern", "GET legacy", "POST create-patient", "POST legacy", "POST modern"}
			deadline := time.Now().Add(10 * time.Second)
			for !c.hasAll(want) {
				if time.Now().After(deadline) {
					t.Fatalf("the collector got spans %v from %v, want %v from strangler (the last one the delivery to the secondary)", c.spans, c.services, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
