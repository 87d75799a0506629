package router

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"strangler/config"
)

func TestTracingFollowsAFallback(t *testing.T) {
	legacy := newBackend(t, answer(200, `{"from":"legacy"}`))
	modern := newBackend(t, answer(404, `{}`))
	cfg, err := config.Parse("t.yaml", []byte(`
backends:
  legacy: {url: "`+legacy.URL+`"}
  modern: {url: "`+modern.URL+`"}
routes:
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}
`), config.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	logs := &syncBuffer{}
	r := New(Deps{
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewJSONHandler(logs, nil)),
		Tracer: tp.Tracer("test"), Propagator: propagation.TraceContext{},
	})
	table, err := r.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Swap(table)
	srv := httptest.NewServer(r)
	defer srv.Close()
	f := &facade{Server: srv, logs: logs}

	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/patients/987654", nil)
	req.Header.Set("Traceparent", "00-"+clientTrace+"-00f067aa0ba902b7-01")
	if _, body := f.do(t, req); body != `{"from":"legacy"}` {
		t.Fatalf("got %s", body)
	}
	tp.ForceFlush(context.Background())

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		byName[s.Name()] = s
		if got := s.SpanContext().TraceID().String(); got != clientTrace {
			t.Errorf("span %q is in trace %s, want the client's %s", s.Name(), got, clientTrace)
		}
		for _, a := range s.Attributes() {
			if v := a.Value.Emit(); v == "/patients/987654" || v == "987654" {
				t.Errorf("span %q carries the raw path in %s", s.Name(), a.Key)
			}
		}
	}
	server, modernSpan, legacySpan := byName["GET get-patient"], byName["GET modern"], byName["GET legacy"]
	if server == nil || modernSpan == nil || legacySpan == nil {
		t.Fatalf("spans %v, want GET get-patient, GET modern and GET legacy", keys(byName))
	}
	for span, want := range map[sdktrace.ReadOnlySpan]map[attribute.Key]string{
		server:     {attrRoute: "get-patient", attrMode: "fallback", attrBackend: "legacy", attrFallbackReason: "not_found"},
		modernSpan: {attrBackend: "modern", attrRoute: "get-patient", attrPurpose: "serve"},
		legacySpan: {attrBackend: "legacy", attrPurpose: "fallback", attrFallbackReason: "not_found"},
	} {
		got := map[attribute.Key]string{}
		for _, a := range span.Attributes() {
			got[a.Key] = a.Value.Emit()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("span %q: %s = %q, want %q", span.Name(), k, got[k], v)
			}
		}
	}
	if modernSpan.Parent().SpanID() != server.SpanContext().SpanID() || legacySpan.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Errorf("the backend spans are not children of the server span")
	}
	for backend, span := range map[*backend]sdktrace.ReadOnlySpan{modern: modernSpan, legacy: legacySpan} {
		want := "00-" + clientTrace + "-" + span.SpanContext().SpanID().String() + "-01"
		if got := backend.last(t).Header.Get("Traceparent"); got != want {
			t.Errorf("%s got traceparent %q, want %q", span.Name(), got, want)
		}
	}
	if lines := f.logLines(t, "fallback"); len(lines) != 1 || lines[0]["trace_id"] != clientTrace {
		t.Errorf("fallback log %v, want trace_id %s", lines, clientTrace)
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
