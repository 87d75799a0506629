package router

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"strangler/config/configfile"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tracedFacade is a facade whose spans a recorder keeps.
type tracedFacade struct {
	*facade
	spans *tracetest.SpanRecorder
}

func newTracedFacade(t *testing.T, legacyURL, modernURL, extra, routes string) *tracedFacade {
	t.Helper()
	yaml := fmt.Sprintf("backends:\n  legacy: {url: %q, timeout: 300ms}\n  modern: {url: %q, timeout: 300ms}\n%s\nroutes:\n%s", legacyURL, modernURL, extra, routes)
	cfg, err := configfile.Parse("t.yaml", []byte(yaml), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	f := &facade{reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	f.router = New(Deps{
		Metrics: NewMetrics(f.reg), Log: slog.New(slog.NewJSONHandler(f.logs, nil)),
		Tracer: tp.Tracer("test"), Propagator: propagation.TraceContext{},
	})
	table, err := f.router.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.router.Swap(table)
	f.Server = httptest.NewServer(f.router)
	t.Cleanup(f.Close)
	return &tracedFacade{f, spans}
}

// span waits for the ended span of kind whose strangler.backend is
// backend ("" for the server span, whichever backend served).
func (f *tracedFacade) span(t *testing.T, kind trace.SpanKind, backend string) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range f.spans.Ended() {
			if s.SpanKind() == kind && (backend == "" || attrs(s)["strangler.backend"] == backend) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended %v span for %q; spans: %v", kind, backend, names(f.spans.Ended()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, a := range s.Attributes() {
		m[string(a.Key)] = a.Value.String()
	}
	return m
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.SpanKind().String()+" "+s.Name())
	}
	return out
}

// want checks a span's name, attributes ("" for one that must be absent)
// and status.
func want(t *testing.T, s sdktrace.ReadOnlySpan, name string, status codes.Code, want map[string]string) {
	t.Helper()
	if s.Name() != name {
		t.Errorf("%v span is named %q, want %q", s.SpanKind(), s.Name(), name)
	}
	if s.Status().Code != status {
		t.Errorf("span %q has status %v, want %v", s.Name(), s.Status().Code, status)
	}
	got := attrs(s)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("span %q: %s = %q, want %q", s.Name(), k, got[k], v)
		}
	}
}

// noPatientData checks that no span holds a value of the request's path
// or query.
//
// A value must be one no port number can hold (more than five digits, or
// not digits alone): spans name the backends' ports, and a value "4711"
// was found in port 34711.
func noPatientData(t *testing.T, spans []sdktrace.ReadOnlySpan, values ...string) {
	t.Helper()
	for _, s := range spans {
		for k, v := range attrs(s) {
			for _, value := range values {
				if strings.Contains(v, value) {
					t.Errorf("span %q carries %q in %s = %q", s.Name(), value, k, v)
				}
			}
		}
		if strings.Contains(s.Name(), values[0]) {
			t.Errorf("span name %q carries %q", s.Name(), values[0])
		}
	}
}

func hostPortOf(t *testing.T, rawURL string) (string, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), u.Port()
}

func TestTracingFollowsAFallbackWithTheHTTPConventions(t *testing.T) {
	legacy := newBackend(t, answer(200, `{"from":"legacy"}`))
	modern := newBackend(t, answer(404, `{}`))
	f := newTracedFacade(t, legacy.URL, modern.URL+"/v2", "", `  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}`)

	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/patients/987654?name=Jane&dob=1970-01-31", nil)
	req.Header.Set("Traceparent", "00-"+clientTrace+"-00f067aa0ba902b7-01")
	if _, body := f.do(t, req); body != `{"from":"legacy"}` {
		t.Fatalf("got %s", body)
	}
	server := f.span(t, trace.SpanKindServer, "")
	modernSpan, legacySpan := f.span(t, trace.SpanKindClient, "modern"), f.span(t, trace.SpanKindClient, "legacy")

	facadeHost, facadePort := hostPortOf(t, f.URL)
	want(t, server, "GET /patients/{id}", codes.Unset, map[string]string{
		"http.request.method": "GET", "http.route": "/patients/{id}", "url.path": "/patients/{id}",
		"url.query": "REDACTED", "url.scheme": "http", "server.address": facadeHost, "server.port": facadePort,
		"http.response.status_code": "200", "error.type": "",
		"strangler.route": "get-patient", "strangler.mode": "fallback", "strangler.backend": "legacy", "strangler.fallback_reason": "not_found",
	})
	modernHost, modernPort := hostPortOf(t, modern.URL)
	want(t, modernSpan, "GET /v2/patients/{id}", codes.Error, map[string]string{
		"http.request.method": "GET", "url.full": modern.URL + "/v2/patients/{id}?REDACTED", "url.template": "/v2/patients/{id}",
		"server.address": modernHost, "server.port": modernPort, "http.response.status_code": "404", "error.type": "404",
		"strangler.route": "get-patient", "strangler.purpose": "serve",
	})
	want(t, legacySpan, "GET /patients/{id}", codes.Unset, map[string]string{
		"url.full": legacy.URL + "/patients/{id}?REDACTED", "http.response.status_code": "200", "error.type": "",
		"strangler.purpose": "fallback", "strangler.fallback_reason": "not_found",
	})
	noPatientData(t, f.spans.Ended(), "987654", "Jane", "1970-01-31")

	for _, s := range f.spans.Ended() {
		if got := s.SpanContext().TraceID().String(); got != clientTrace {
			t.Errorf("span %q is in trace %s, want the client's %s", s.Name(), got, clientTrace)
		}
	}
	if modernSpan.Parent().SpanID() != server.SpanContext().SpanID() || legacySpan.Parent().SpanID() != server.SpanContext().SpanID() {
		t.Errorf("the backend spans are not children of the server span")
	}
	for b, span := range map[*backend]sdktrace.ReadOnlySpan{modern: modernSpan, legacy: legacySpan} {
		want := "00-" + clientTrace + "-" + span.SpanContext().SpanID().String() + "-01"
		if got := b.last(t).Header.Get("Traceparent"); got != want {
			t.Errorf("%s got traceparent %q, want %q", attrs(span)["strangler.backend"], got, want)
		}
	}
	if lines := f.logLines(t, "fallback"); len(lines) != 1 || lines[0]["trace_id"] != clientTrace {
		t.Errorf("fallback log %v, want trace_id %s", lines, clientTrace)
	}
}

func TestTracingAnUnmatchedRequestNamesNoPath(t *testing.T) {
	legacy := newBackend(t, answer(200, `{}`))
	f := newTracedFacade(t, legacy.URL, deadURL(t), "", `  - {name: p, match: "GET /p", mode: legacy}`)
	f.get(t, "/records/4711093/notes?q=diabetes")

	want(t, f.span(t, trace.SpanKindServer, ""), "GET", codes.Unset, map[string]string{
		"http.route": "", "url.path": "REDACTED", "url.query": "REDACTED", "strangler.route": "default", "http.response.status_code": "200",
	})
	want(t, f.span(t, trace.SpanKindClient, "legacy"), "GET", codes.Unset, map[string]string{
		"url.template": "", "url.full": legacy.URL + "/REDACTED?REDACTED",
	})
	noPatientData(t, f.spans.Ended(), "4711093", "records", "diabetes")
}

// TestTracingErrors covers each way a request can end badly: the backend
// answers 5xx, refuses the connection or does not answer in time, and the
// client leaves.
func TestTracingErrors(t *testing.T) {
	t.Run("modern answers 500", func(t *testing.T) {
		modern := newBackend(t, answer(500, `{}`))
		f := newTracedFacade(t, deadURL(t), modern.URL, "", `  - {name: m, match: "POST /m", mode: modern}`)
		f.do(t, mustRequest(t, http.MethodPost, f.URL+"/m"))
		want(t, f.span(t, trace.SpanKindServer, ""), "POST /m", codes.Error, map[string]string{"http.response.status_code": "500", "error.type": "500"})
		want(t, f.span(t, trace.SpanKindClient, "modern"), "POST /m", codes.Error, map[string]string{"http.response.status_code": "500", "error.type": "500"})
	})
	t.Run("modern refuses the connection", func(t *testing.T) {
		f := newTracedFacade(t, deadURL(t), deadURL(t), "", `  - {name: m, match: "GET /m", mode: modern}`)
		f.get(t, "/m")
		want(t, f.span(t, trace.SpanKindServer, ""), "GET /m", codes.Error, map[string]string{"http.response.status_code": "502", "error.type": "502"})
		client := f.span(t, trace.SpanKindClient, "modern")
		want(t, client, "GET /m", codes.Error, map[string]string{"http.response.status_code": "", "error.type": "connect_failed"})
		if len(client.Events()) == 0 || client.Events()[0].Name != "exception" {
			t.Errorf("the client span records no exception: %v", client.Events())
		}
	})
	t.Run("modern does not answer in time", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		modern := newBackend(t, func(http.ResponseWriter, *http.Request) { <-release })
		f := newTracedFacade(t, deadURL(t), modern.URL, "", `  - {name: m, match: "GET /m", mode: modern}`)
		f.get(t, "/m")
		want(t, f.span(t, trace.SpanKindServer, ""), "GET /m", codes.Error, map[string]string{"http.response.status_code": "504", "error.type": "504"})
		want(t, f.span(t, trace.SpanKindClient, "modern"), "GET /m", codes.Error, map[string]string{"error.type": "timeout"})
	})
	t.Run("a 4xx is the client's", func(t *testing.T) {
		legacy := newBackend(t, answer(422, `{}`))
		f := newTracedFacade(t, legacy.URL, deadURL(t), "", `  - {name: l, match: "POST /l", mode: legacy}`)
		f.do(t, mustRequest(t, http.MethodPost, f.URL+"/l"))
		want(t, f.span(t, trace.SpanKindServer, ""), "POST /l", codes.Unset, map[string]string{"http.response.status_code": "422", "error.type": ""})
		want(t, f.span(t, trace.SpanKindClient, "legacy"), "POST /l", codes.Error, map[string]string{"http.response.status_code": "422", "error.type": "422"})
	})
	t.Run("the client leaves", func(t *testing.T) {
		arrived, release := make(chan struct{}), make(chan struct{})
		defer close(release)
		legacy := newBackend(t, func(http.ResponseWriter, *http.Request) {
			close(arrived)
			<-release
		})
		f := newTracedFacade(t, legacy.URL, deadURL(t), "", `  - {name: l, match: "GET /l", mode: legacy}`)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-arrived
			cancel()
		}()
		req := mustRequest(t, http.MethodGet, f.URL+"/l").WithContext(ctx)
		if resp, err := f.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("the request succeeded; the client was to leave")
		}
		want(t, f.span(t, trace.SpanKindServer, ""), "GET /l", codes.Error, map[string]string{"http.response.status_code": "", "error.type": "client_closed"})
		want(t, f.span(t, trace.SpanKindClient, "legacy"), "GET /l", codes.Error, map[string]string{"error.type": "canceled"})
	})
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestTracingTakesTheOriginFromTrustedProxiesOnly: server.address,
// server.port and url.scheme are what the client asked for, which only a
// trusted proxy may say differs from what the facade saw.
func TestTracingTakesTheOriginFromTrustedProxiesOnly(t *testing.T) {
	legacy := newBackend(t, answer(200, `{}`))
	for name, c := range map[string]struct {
		extra                 string
		scheme, address, port string
	}{
		"from a trusted proxy": {"trusted_proxies: [127.0.0.1/32]", "https", "api.example.org", "443"},
		"from anyone else":     {"trusted_proxies: [10.0.0.0/8]", "http", "facade.internal", "8080"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newTracedFacade(t, legacy.URL, deadURL(t), c.extra, `  - {name: l, match: "GET /l", mode: legacy}`)
			req := mustRequest(t, http.MethodGet, f.URL+"/l")
			req.Host = "facade.internal:8080"
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "api.example.org")
			f.do(t, req)
			want(t, f.span(t, trace.SpanKindServer, ""), "GET /l", codes.Unset, map[string]string{
				"url.scheme": c.scheme, "server.address": c.address, "server.port": c.port,
			})
		})
	}
	// An IPv6 literal without a port: the brackets go, the scheme's port
	// stands in.
	f := newTracedFacade(t, legacy.URL, deadURL(t), "", `  - {name: l, match: "GET /l", mode: legacy}`)
	req := mustRequest(t, http.MethodGet, f.URL+"/l")
	req.Host = "[::1]"
	f.do(t, req)
	want(t, f.span(t, trace.SpanKindServer, ""), "GET /l", codes.Unset, map[string]string{"server.address": "::1", "server.port": "80"})
	if _, err := strconv.Atoi(attrs(f.span(t, trace.SpanKindClient, "legacy"))["server.port"]); err != nil {
		t.Errorf("the client span's server.port is not a number: %v", err)
	}
}
