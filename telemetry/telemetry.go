// Package telemetry sets up OpenTelemetry tracing the way every OTel SDK
// does: from the standard OTEL_* environment variables, exporting over OTLP
// (HTTP or gRPC) when an exporter is configured, and doing nothing at all
// when none is.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"strangler/internal/dsn"
)

// Tracing is the process's tracing: a tracer provider and the W3C trace
// context propagator, or nothing when tracing is off.
type Tracing struct {
	// Provider makes the tracers; nil when tracing is off.
	Provider trace.TracerProvider
	// Propagator reads and writes traceparent and tracestate (and baggage).
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.Provider != nil }

// Shutdown flushes spans not yet exported.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Setup reads the OTEL_* variables: tracing is on when OTEL_TRACES_EXPORTER
// is "otlp", or when it is unset and an OTLP endpoint is
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); off
// with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. The protocol
// comes from OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL: "http/protobuf" (the
// default) or "grpc". The exporters read their endpoint, headers, TLS and
// timeout variables themselves, as do the sampler (OTEL_TRACES_SAMPLER)
// and the resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
//
// What the SDK and the exporters report (an export the collector refused
// or could not be reached for, a variable they refuse) is logged to log
// (reporter).
func Setup(ctx context.Context, getenv func(string) string, log *slog.Logger) (*Tracing, error) {
	t := &Tracing{Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	if !enabled(getenv) {
		return t, nil
	}
	// OpenTelemetry reports through an error handler and a logger for the
	// whole process, set before the exporters read their variables. They
	// printed with the log package (a WARN line "net/http" cut at its
	// first quote) and as plain text on stderr, quoting the variable
	// refused: a malformed endpoint with its password, a header line with
	// its token.
	report := reporter(log, getenv)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { report(err.Error()) }))
	otel.SetLogger(logr.New(sink{report}))
	variable, protocol := "", "http/protobuf"
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(v); p != "" {
			variable, protocol = v, p
			break
		}
	}
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("telemetry: %s=%q: want http/protobuf or grpc", variable, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	res, err := resource.Merge(
		resource.NewSchemaless(semconv.ServiceName("strangler")),
		resource.Environment(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t.Provider, t.shutdown = tp, tp.Shutdown
	return t, nil
}

// reporter returns what logs a problem OpenTelemetry reports as one WARN
// line "telemetry error", component telemetry, without the passwords of
// the OTLP endpoints (dsn.RedactError), which its errors may quote.
func reporter(log *slog.Logger, getenv func(string) string) func(string) {
	var endpoints []string
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if e := getenv(v); e != "" {
			endpoints = append(endpoints, e)
		}
	}
	return func(msg string) {
		err := errors.New(msg)
		for _, e := range endpoints {
			err = dsn.RedactError(err, e)
		}
		log.Warn("telemetry error", "component", "telemetry", "error", err.Error())
	}
}

// sink is OpenTelemetry's internal logger: its errors, and what it says
// at verbosity 0, go to report. The key-value pairs are left out: they
// are the raw input refused (an endpoint URL, a header line with its
// token), which the error itself describes.
type sink struct{ report func(string) }

func (s sink) Init(logr.RuntimeInfo)                 {}
func (s sink) Enabled(level int) bool                { return level <= 0 }
func (s sink) Info(_ int, msg string, _ ...any)      { s.report(msg) }
func (s sink) Error(err error, msg string, _ ...any) { s.report(msg + ": " + err.Error()) }
func (s sink) WithValues(...any) logr.LogSink        { return s }
func (s sink) WithName(string) logr.LogSink          { return s }

func enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch exporter := getenv("OTEL_TRACES_EXPORTER"); exporter {
	case "":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return strings.Contains(exporter, "otlp")
	}
}
