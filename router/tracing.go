package router

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
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
	attrForced         = telemetry.AttrForced
)

// tracing is the router's part of OpenTelemetry: nil when tracing is off,
// so a request pays nothing for it.
type tracing struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// startServer starts the server span of a request, continuing the trace
// the client's traceparent names, named and described by the route's
// template, never by the path, which may carry patient identifiers.
func (t *Table) startServer(req *http.Request, rt *route) (context.Context, trace.Span) {
	ctx := t.tracing.propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
	scheme, host := t.origin(req)
	return telemetry.StartServer(ctx, t.tracing.tracer,
		telemetry.Request{Method: t.methodName(req.Method), Route: rt.pattern, Scheme: scheme, Host: host, Query: req.URL.RawQuery != ""},
		attrRoute.String(rt.name), attrMode.String(string(rt.mode)))
}

// roundTrip sends req to up in a client span, and hands the span's trace
// context to the backend (W3C traceparent). purpose says why the call is
// made: serve, fallback, shadow; reason is the fallback reason of a
// fallback, else "". Neither is a variadic list of attributes: that would
// cost every request an allocation with tracing off.
func (t *Table) roundTrip(up *upstream.Upstream, req *http.Request, purpose, reason string) (*http.Response, error) {
	if t.tracing == nil {
		return up.RoundTrip(req)
	}
	return t.tracedRoundTrip(up, req, purpose, reason)
}

// roundTripHeld is roundTrip for a request to modern whose 1xx responses
// are held in held until the fallback transport knows which backend's
// answer is served.
func (t *Table) roundTripHeld(up *upstream.Upstream, req *http.Request, held *upstream.Informational) (*http.Response, error) {
	if t.tracing == nil {
		return up.RoundTripHeld(req, held)
	}
	return t.tracedRoundTrip(up, held.Hold(req), "serve", "")
}

// tracedRoundTrip is roundTrip in a client span. It is a function of its
// own so that its span's attributes (712 bytes of stack frame) take room
// on the stack of a traced request alone, not on every request's.
func (t *Table) tracedRoundTrip(up *upstream.Upstream, req *http.Request, purpose, reason string) (*http.Response, error) {
	attrs := make([]attribute.KeyValue, 0, 5)
	if reason != "" {
		attrs = append(attrs, attrFallbackReason.String(reason))
	}
	attrs = append(attrs, attrBackend.String(up.Name), attrPurpose.String(purpose))
	template := ""
	if x := exchangeFrom(req.Context()); x != nil {
		template = x.route.pattern
		attrs = append(attrs, attrRoute.String(x.route.name), attrMode.String(string(x.route.mode)))
	}
	ctx, span := telemetry.StartClient(req.Context(), t.tracing.tracer, telemetry.ClientCall(up.Target, req.Method, template, req.URL.RawQuery != ""), attrs...)
	telemetry.Inject(ctx, t.tracing.propagator, req.Header)
	resp, err := up.RoundTrip(req.WithContext(ctx))
	if err != nil {
		telemetry.EndClient(span, 0, upstream.Describe(err), upstream.Classify(ctx, err).Kind())
		return nil, err
	}
	telemetry.EndClient(span, resp.StatusCode, nil, "")
	return resp, nil
}

// passThrough is the transport of a reverse proxy to one backend: the
// backend itself, in a client span when tracing is on.
type passThrough struct {
	t  *Table
	up *upstream.Upstream
}

func (p passThrough) RoundTrip(req *http.Request) (*http.Response, error) {
	return p.t.roundTrip(p.up, req, "serve", "")
}

// endServer ends the request's server span with what the client got:
// the status sent, or none when the client left first.
func (x *exchange) endServer() {
	if x.span == nil {
		return
	}
	if x.served != nil {
		x.span.SetAttributes(attrBackend.String(x.served.Name))
	}
	status := x.w.status
	if x.clientGone {
		status = 0
	}
	telemetry.EndServer(x.span, status)
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
