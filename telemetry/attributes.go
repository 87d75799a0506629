package telemetry

import "go.opentelemetry.io/otel/attribute"

// Span attributes of the facade's own, beside those of OTel's HTTP
// semantic conventions (http.go). Values are route names and backend
// names, never raw paths, which may carry patient identifiers.
const (
	AttrRoute          = attribute.Key("strangler.route")
	AttrMode           = attribute.Key("strangler.mode")
	AttrBackend        = attribute.Key("strangler.backend")
	AttrFallbackReason = attribute.Key("strangler.fallback_reason")
	// AttrPurpose says why a backend was called: serve, fallback, shadow,
	// dual-write (a delivery to the secondary), repair (a later attempt),
	// recovery (a resend to an idempotent primary).
	AttrPurpose = attribute.Key("strangler.purpose")
	// AttrForced names the backend a tester's X-Strangler-Force header
	// sent the request to.
	AttrForced = attribute.Key("strangler.forced")
)
