package testkit

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Collector is a real OTLP trace receiver, over HTTP (http/protobuf) or
// gRPC, that keeps what it was sent.
type Collector struct {
	coltrace.UnimplementedTraceServiceServer
	// Endpoint is the URL to give OTEL_EXPORTER_OTLP_ENDPOINT.
	Endpoint string
	mu       sync.Mutex
	spans    []Span
}

// Span is one span a Collector received, with the attributes of the
// resource (the process) that sent it.
type Span struct {
	Name     string
	Resource map[string]string
	Span     *tracepb.Span
}

// NewCollector starts a collector speaking protocol, "http/protobuf" or
// "grpc", stopped when the test ends.
func NewCollector(t testing.TB, protocol string) *Collector {
	t.Helper()
	c := &Collector{}
	if protocol == "grpc" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		coltrace.RegisterTraceServiceServer(srv, c)
		go srv.Serve(ln)
		t.Cleanup(srv.Stop)
		c.Endpoint = "http://" + ln.Addr().String()
		return c
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
	c.Endpoint = srv.URL
	return c
}

// Export receives spans over gRPC.
func (c *Collector) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	c.take(req)
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func (c *Collector) take(req *coltrace.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		res := map[string]string{}
		for _, a := range rs.GetResource().GetAttributes() {
			res[a.GetKey()] = a.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, Span{Name: s.GetName(), Resource: res, Span: s})
			}
		}
	}
}

// Spans returns what the collector received so far.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}
