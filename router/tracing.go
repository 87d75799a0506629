package router

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"strangler/telemetry"
	"strangler/upstream"
)

// The span attributes, shortened.
const (
	attrRoute          = telemetry.AttrRoute
	attrMode           = telemetry.AttrMode
	attrBackend        = telemetry.AttrBackend
	attrFallbackReason = telemetry.AttrFallbackReason
	attrPurpose        = telemetry.AttrPurpose
	attrMethod         = telemetry.AttrMethod
	attrStatus         = telemetry.AttrStatus
)

// tracing is the router's part of OpenTelemetry: nil when tracing is off,
// so a request pays nothing for it.
type tracing struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// startServer starts the server span of a request, continuing the trace
// the client's traceparent names. The span is named "METHOD route": the
// route, never the raw path, which may carry patient identifiers.
func (tr *tracing) startServer(req *http.Request, rt *route) (context.Context, trace.Span) {
	ctx := tr.propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
	return tr.tracer.Start(ctx, req.Method+" "+rt.name,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attrRoute.String(rt.name), attrMode.String(string(rt.mode)), attrMethod.String(req.Method)))
}

// roundTrip sends req to up in a client span, and hands the span's trace
// context to the backend (W3C traceparent). purpose says why the call is
// made: serve, fallback, shadow.
func (t *Table) roundTrip(up *upstream.Upstream, req *http.Request, purpose string, attrs ...attribute.KeyValue) (*http.Response, error) {
	if t.tracing == nil {
		return up.RoundTrip(req)
	}
	attrs = append(attrs, attrBackend.String(up.Name), attrPurpose.String(purpose), attrMethod.String(req.Method))
	if x := exchangeFrom(req.Context()); x != nil {
		attrs = append(attrs, attrRoute.String(x.route.name), attrMode.String(string(x.route.mode)))
	}
	ctx, span := t.tracing.tracer.Start(req.Context(), req.Method+" "+up.Name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	t.tracing.propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := up.RoundTrip(req.WithContext(ctx))
	switch {
	case err != nil:
		span.RecordError(withoutURL(err))
		span.SetStatus(codes.Error, "no answer")
	default:
		span.SetAttributes(attrStatus.Int(resp.StatusCode))
		if resp.StatusCode >= 500 {
			span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
		}
	}
	return resp, err
}

// passThrough is the transport of a reverse proxy to one backend: the
// backend itself, in a client span when tracing is on.
type passThrough struct {
	t  *Table
	up *upstream.Upstream
}

func (p passThrough) RoundTrip(req *http.Request) (*http.Response, error) {
	return p.t.roundTrip(p.up, req, "serve")
}

// endServer ends the request's server span with what the client got.
func (x *exchange) endServer(code int) {
	if x.span == nil {
		return
	}
	x.span.SetAttributes(attrStatus.Int(code))
	if x.served != nil {
		x.span.SetAttributes(attrBackend.String(x.served.Name))
	}
	if code >= 500 {
		x.span.SetStatus(codes.Error, http.StatusText(code))
	}
	x.span.End()
}

// traceID is the trace the request belongs to: its span's when tracing is
// on, else the client's traceparent's, else "".
func (x *exchange) traceID(h http.Header) string {
	if x.span != nil {
		if sc := x.span.SpanContext(); sc.HasTraceID() {
			return sc.TraceID().String()
		}
	}
	return traceID(h)
}
