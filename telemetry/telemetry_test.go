package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"strangler/internal/testkit"
)

// The OTLP exporters and the resource read the OTEL_* variables from the
// process environment themselves, so the tests set them there (t.Setenv)
// and hand Setup os.Getenv, as the facade does.

// otelVars are the variables a test starts without: the environment the
// suite runs in must not turn tracing on or off behind its back.
var otelVars = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_BSP_SCHEDULE_DELAY",
}

// setEnv clears the OTEL_* variables, then sets vars, for the test.
func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, k := range otelVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

// setup runs Setup as the facade does and shuts tracing down when the
// test ends.
func setup(t *testing.T) *Tracing {
	t.Helper()
	tr, err := Setup(context.Background(), os.Getenv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tr.Shutdown(ctx)
	})
	return tr
}

// record makes one span named name and flushes it to the exporter.
func record(t *testing.T, tr *Tracing, name string) {
	t.Helper()
	_, span := tr.Provider.Tracer("test").Start(context.Background(), name)
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("flushing the span: %v", err)
	}
}

func TestTracingIsOffUnlessAnExporterIsConfigured(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		on   bool
	}{
		{"nothing set", nil, false},
		{"an OTLP endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, true},
		{"an OTLP traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"}, true},
		{"the otlp exporter without an endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"the none exporter with an endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, false},
		{"the SDK disabled with an endpoint", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, false},
		{"the SDK disabled in capitals", map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, false},
		{"the SDK explicitly enabled", map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.vars)
			tr := setup(t)
			if tr.Enabled() != tc.on {
				t.Errorf("tracing on: %v, want %v", tr.Enabled(), tc.on)
			}
			// The W3C propagator works either way: trace context passes
			// through the facade even when it records nothing.
			h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
			out := http.Header{}
			tr.Propagator.Inject(tr.Propagator.Extract(context.Background(), propagation.HeaderCarrier(h)), propagation.HeaderCarrier(out))
			if got := out.Get("Traceparent"); !strings.Contains(got, "4bf92f3577b34da6a3ce929d0e0e4736") {
				t.Errorf("traceparent after extract and inject: %q, want the same trace", got)
			}
		})
	}
}

func TestSpansReachTheCollectorTheVariablesName(t *testing.T) {
	for _, tc := range []struct {
		name     string
		protocol string
		vars     func(endpoint string) map[string]string
	}{
		{"http/protobuf by default", "http/protobuf", func(e string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": e}
		}},
		{"grpc", "grpc", func(e string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": e, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_INSECURE": "true"}
		}},
		{"the traces protocol over the general one", "grpc", func(e string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": e, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_INSECURE": "true"}
		}},
		{"the traces endpoint", "http/protobuf", func(e string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": e + "/v1/traces"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testkit.NewCollector(t, tc.protocol)
			setEnv(t, tc.vars(c.Endpoint))
			record(t, setup(t), "GET get-patient")
			spans := c.Spans()
			if len(spans) != 1 || spans[0].Name != "GET get-patient" || spans[0].Resource["service.name"] != "strangler" {
				t.Errorf("the collector got %+v, want the one span from service strangler", spans)
			}
		})
	}
}

func TestTheResourceAndTheSamplerComeFromTheVariables(t *testing.T) {
	c := testkit.NewCollector(t, "http/protobuf")
	setEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": c.Endpoint,
		"OTEL_SERVICE_NAME":           "facade-eu",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment=stage",
	})
	record(t, setup(t), "sampled")
	if s := c.Spans(); len(s) != 1 || s[0].Resource["service.name"] != "facade-eu" || s[0].Resource["deployment.environment"] != "stage" {
		t.Errorf("the collector got %+v, want one span from facade-eu in stage", s)
	}

	off := testkit.NewCollector(t, "http/protobuf")
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": off.Endpoint, "OTEL_TRACES_SAMPLER": "always_off"})
	// record flushes the exporter: a span sampled out is gone for good.
	record(t, setup(t), "not sampled")
	if s := off.Spans(); len(s) != 0 {
		t.Errorf("with OTEL_TRACES_SAMPLER=always_off the collector got %+v", s)
	}
}

func TestAnUnknownProtocolIsRefusedNamingTheVariable(t *testing.T) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		t.Run(name, func(t *testing.T) {
			setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", name: "http/json"})
			_, err := Setup(context.Background(), os.Getenv, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil || !strings.Contains(err.Error(), name+`="http/json"`) || !strings.Contains(err.Error(), "grpc") {
				t.Errorf("got %v, want an error naming %s, its value and the protocols there are", err, name)
			}
		})
	}
}

// TestWhatOpenTelemetryReportsIsOneJSONLogLineWithoutSecrets:
// OpenTelemetry reports through a process-wide error handler, which
// printed with the log package (a WARN line "net/http" cut at its first
// quote), and a process-wide logger, which printed plain text on stderr
// quoting the variable it refused: an endpoint with its password, a
// header line with its token.
func TestWhatOpenTelemetryReportsIsOneJSONLogLineWithoutSecrets(t *testing.T) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such tenant", http.StatusUnauthorized)
	}))
	defer collector.Close()
	for _, tc := range []struct {
		name string
		vars map[string]string
		span bool   // record a span, which the collector refuses
		want string // in the line's error
	}{
		{"an export the collector refuses", map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": strings.Replace(collector.URL, "http://", "http://tenant:s3cret-pw@", 1) + "/v1/traces"},
			true, "401 Unauthorized"},
		{"an endpoint that is no URL", map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tenant:s3cret-pw%zz@127.0.0.1:1/v1/traces"},
			false, "parse url"},
		{"a header line without =", map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.URL + "/v1/traces", "OTEL_EXPORTER_OTLP_HEADERS": "Authorization Bearer s3cret-pw"},
			false, "parse headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.vars)
			var logs bytes.Buffer // written by Setup and by Shutdown's final export, which returns after
			tr, err := Setup(context.Background(), os.Getenv, slog.New(slog.NewJSONHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.span {
				_, span := tr.Provider.Tracer("test").Start(context.Background(), "GET get-patient")
				span.End()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tr.Shutdown(ctx)

			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			var line map[string]any
			if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &line) != nil {
				t.Fatalf("got %q, want one JSON line", logs.String())
			}
			if line["component"] != "telemetry" || line["level"] != "WARN" || !strings.Contains(fmt.Sprint(line["error"]), tc.want) {
				t.Errorf("got %s, want a WARN line of component telemetry saying %q", lines[0], tc.want)
			}
			if strings.Contains(lines[0], "s3cret-pw") {
				t.Errorf("the secret is logged: %s", lines[0])
			}
		})
	}
}
