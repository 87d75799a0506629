package dualwrite

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"strangler/telemetry"
	"strangler/upstream"
)

// SetTracing makes deliveries and resends client spans in the trace of the
// request that made the write (its traceparent is journaled with it).
func (w *Worker) SetTracing(tracer trace.Tracer, propagator propagation.TextMapPropagator) {
	w.tracer, w.propagator = tracer, propagator
}

// span starts the client span of a call to up for the journaled write of
// route, continuing the trace h names and handing the span's context on in
// h; query says whether the call sends a query string. The returned
// function ends it with the call's result.
func (w *Worker) span(ctx context.Context, route, method, purpose string, up *upstream.Upstream, query bool, h http.Header) (context.Context, func(status int, err error)) {
	if w.tracer == nil {
		return ctx, func(int, error) {}
	}
	ctx = w.propagator.Extract(ctx, propagation.HeaderCarrier(h))
	ctx, span := telemetry.StartClient(ctx, w.tracer, telemetry.ClientCall(up.Target, method, w.routes.Template(route), query),
		telemetry.AttrRoute.String(route), telemetry.AttrBackend.String(up.Name), telemetry.AttrPurpose.String(purpose))
	telemetry.Inject(ctx, w.propagator, h)
	return ctx, func(status int, err error) {
		kind := ""
		if err != nil {
			err, kind = upstream.Describe(err), upstream.Classify(ctx, err).Kind()
		}
		telemetry.EndClient(span, status, err, kind)
	}
}
