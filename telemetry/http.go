package telemetry

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Spans follow OpenTelemetry's HTTP semantic conventions: a server span
// per request, named "METHOD http.route" ("GET /patients/{id}", or just
// "GET" when no route matched), and a client span per call to a backend,
// named "METHOD url.template". Where the conventions want a path or a
// query, these spans carry the route's template ("/patients/{id}") or
// Redacted: the values may be patient data, and the conventions ask for
// sensitive content to be scrubbed.

// Redacted stands for what a span must not hold: a path no route template
// describes (url.path "REDACTED"), a query string (url.query "REDACTED").
const Redacted = "REDACTED"

// RedactedPath is the path of a request no route matched, for url.full.
const RedactedPath = "/" + Redacted

// Request is what a server span says about a request, read before it is
// served.
type Request struct {
	// Method is the request method, or MethodOther for one the facade
	// does not know (a refused request's may be any token).
	Method string
	// Route is the matched route's path template, "" when none matched.
	Route string
	// Scheme and Host are the origin the client asked for: the facade's
	// own (TLS or not, the Host header), or a trusted proxy's
	// X-Forwarded-Proto and X-Forwarded-Host. A Host that is neither a
	// host name nor an IP address is not recorded.
	Scheme, Host string
	// Query says whether the request had a query string.
	Query bool
}

// MethodOther stands for a request method the facade does not know, as
// the conventions spell it; the method as sent is not recorded.
const MethodOther = "_OTHER"

// StartServer starts the server span of a request in ctx, which carries
// the client's trace context; attrs are the facade's own attributes.
func StartServer(ctx context.Context, tracer trace.Tracer, r Request, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	name, path := r.Method, Redacted
	if r.Method == MethodOther {
		name = "HTTP" // the conventions' name for a method they do not know
	}
	attrs = append(attrs, semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLScheme(r.Scheme))
	if r.Route != "" {
		name, path = r.Method+" "+r.Route, r.Route
		attrs = append(attrs, semconv.HTTPRoute(r.Route))
	}
	attrs = append(attrs, semconv.URLPath(path))
	if r.Query {
		attrs = append(attrs, semconv.URLQuery(Redacted))
	}
	if host, port := hostPort(r.Host, r.Scheme); serverName(host) {
		attrs = append(attrs, semconv.ServerAddress(host))
		if port > 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
	}
	return tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
}

// ErrorClientClosed is the error.type of a request whose client left
// before the answer started: nothing was sent to it.
const ErrorClientClosed = "client_closed"

// EndServer ends a server span with what the client got: status, or 0
// when the client left before any was sent. A 5xx, or a client that left,
// is an error (error.type the status, or client_closed); a 4xx is the
// client's and leaves the span's status unset.
func EndServer(span trace.Span, status int) {
	switch {
	case status == 0:
		span.SetAttributes(semconv.ErrorTypeKey.String(ErrorClientClosed))
		span.SetStatus(codes.Error, "")
	case status >= 500:
		span.SetAttributes(semconv.HTTPResponseStatusCode(status), semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, "")
	default:
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	span.End()
}

// Call is what a client span says about a call to a backend.
type Call struct {
	Method string
	// Target is where the call goes, its path replaced: by the route's
	// template joined to the backend's base path when Templated, by
	// RedactedPath joined to it otherwise. It has no query.
	Target    *url.URL
	Templated bool
	// Query says whether the call sends a query string.
	Query bool
}

// ClientCall describes a call of method for a route whose path template
// is template ("" when no route matched): address joins a path to the
// backend's base URL (upstream.Upstream's Target).
func ClientCall(address func(*url.URL) *url.URL, method, template string, query bool) Call {
	path := template
	if path == "" {
		path = RedactedPath
	}
	return Call{Method: method, Target: address(&url.URL{Path: path}), Templated: template != "", Query: query}
}

// StartClient starts the client span of a call in ctx; attrs are the
// facade's own attributes.
func StartClient(ctx context.Context, tracer trace.Tracer, c Call, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	name := c.Method
	full := c.Target.Scheme + "://" + c.Target.Host + c.Target.Path
	if c.Query {
		full += "?" + Redacted
	}
	attrs = append(attrs, semconv.HTTPRequestMethodKey.String(c.Method), semconv.URLFull(full))
	if c.Templated {
		name += " " + c.Target.Path
		attrs = append(attrs, semconv.URLTemplate(c.Target.Path))
	}
	host, port := hostPort(c.Target.Host, c.Target.Scheme)
	attrs = append(attrs, semconv.ServerAddress(host))
	if port > 0 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	return tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// EndClient ends a client span with the backend's status, or with err
// (without the request URL, whose path may hold patient data) when it
// did not answer; kind names the failure for error.type ("" is _OTHER). A
// 4xx or 5xx is an error whose error.type is the status.
func EndClient(span trace.Span, status int, err error, kind string) {
	switch {
	case err != nil:
		if kind == "" {
			kind = semconv.ErrorTypeOther.Value.AsString()
		}
		span.RecordError(err)
		span.SetAttributes(semconv.ErrorTypeKey.String(kind))
		span.SetStatus(codes.Error, "")
	case status >= 400:
		span.SetAttributes(semconv.HTTPResponseStatusCode(status), semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, "")
	default:
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	span.End()
}

// maxServerName is the longest DNS name (RFC 1035 section 2.3.4).
const maxServerName = 253

// serverName reports whether host, a client's Host header or a trusted
// proxy's X-Forwarded-Host without its port, can be server.address: an IP
// address, or a DNS name (labels of letters, digits, "-" and "_", each of
// 1 to 63 bytes, 253 in all, and a final dot). net/http lets through a
// Host of any length up to the head's limit, with "!$&'()*+,;=%" and
// more: a client could put 60 KiB on every span, or free text, which
// the conventions' server.address is not.
func serverName(host string) bool {
	if host == "" || len(host) > maxServerName+1 {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.TrimSuffix(host, ".")
	if len(host) > maxServerName {
		return false
	}
	label := 0
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			if label++; label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}

// Inject writes ctx's trace context into h, the header of a call to a
// backend, in place of the client's: a tracestate ctx does not carry
// goes. That is one whose traceparent W3C Trace Context has a vendor
// ignore (upper-case hex, an all-zero id: the facade started a trace of
// its own, which the client's tracestate is no part of), or one it may
// drop (over 32 members, malformed).
func Inject(ctx context.Context, p propagation.TextMapPropagator, h http.Header) {
	h.Del("Tracestate")
	p.Inject(ctx, propagation.HeaderCarrier(h))
}

// hostPort splits a Host header or URL host into server.address and
// server.port; without a port, the scheme's default port.
func hostPort(hostport, scheme string) (string, int) {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		host, portText = hostport, ""
		if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
			host = host[1 : len(host)-1]
		}
	}
	if port, err := strconv.Atoi(portText); err == nil && port > 0 && port < 65536 {
		return host, port
	}
	switch scheme {
	case "http":
		return host, 80
	case "https":
		return host, 443
	}
	return host, 0
}
