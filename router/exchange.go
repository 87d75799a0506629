package router

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"

	"strangler/domain"
	"strangler/internal/uuid"
	"strangler/shadow"
	"strangler/upstream"
)

// exchange is the state of one client request for its whole life: which
// route matched, which backend answered, and what the client got. It is
// the only per-request value the router puts in the context.
type exchange struct {
	route *route
	// key is the request's route key (canonical.RouteKey of its canonical
	// path): what it was matched on and, for a write, the resource it
	// changes; "" for a request refused before it had one.
	key string
	// loose is key as backends reading paths loosely read it, folded once
	// when first asked for (the admit checks, then a form's _method).
	loose loosePath
	// id is the request id: the client's X-Request-Id or a generated one.
	id    string
	start time.Time
	// switched is how long the request took to its 101 (a WebSocket's
	// handshake), 0 for any other: the exchange's duration, where the
	// tunnel's whole life would be no latency of the facade's.
	switched time.Duration
	// served is the backend whose response the client gets; fellBack
	// says legacy serves it as a fallback.
	served   *upstream.Upstream
	fellBack bool
	// reqURL is the request's canonical URL; inURL is the URL the
	// forwarder was given, before it was addressed to a backend.
	reqURL url.URL
	inURL  *url.URL
	// body is the client's request body, when it has one.
	body clientBody
	// replay is the buffered request body when it may be sent twice.
	replay []byte
	// standsFor is, on a fallback route, the method the backends read
	// the request as (Table.readAs), and replays says it may go to
	// legacy after modern received it (decideReplay).
	standsFor string
	replays   bool
	// replayHeld is what replay holds of the replay budget, given back
	// when the exchange ends unless a shadow copy took it on.
	replayHeld int64
	// noCopy is set on a shadow route when replay_budget had no room for
	// the copy's body: the request goes to the primary alone.
	noCopy bool
	// clientGone is set when the client left before the response started.
	clientGone bool
	// broken is set when the served backend's answer broke off (a reset,
	// a stalled body) while its client was still there: the client got a
	// cut answer, which counts as the backend failing.
	broken bool
	// params are the path parameters' values, when the route needs them.
	params []string
	// answer is the backend's own answer to the proxied request: its
	// status and header (0 and nil if it did not answer), or the error.
	answer struct {
		status int
		header http.Header
		err    error
	}
	// w captures the status sent to the client and, when w.tee is set,
	// the start of the body.
	w statusWriter
	// span is the request's server span; nil when tracing is off.
	span trace.Span
	// dualWrite is the journaled write of a dual-write request.
	dualWrite *pendingWrite
	// decidedAgain says the request's write was routed again once after
	// the route flags were read again: the journal refused it as decided
	// under stale ones (decideAgain), or a write sent straight to a
	// backend found another table serving once they were checked
	// (followed).
	decidedAgain bool
	// forced is the backend a valid X-Strangler-Force header sent the
	// request to, "" for a request routed as usual.
	forced domain.Backend
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// statusWriter records the final status code written to the client and,
// if tee is set, copies the body into it (up to its cap). It flushes
// for http.ResponseController, and unwraps for it to hijack connections
// for protocol upgrades.
type statusWriter struct {
	http.ResponseWriter
	status int
	tee    *shadow.Capture
	// http10 is set for a client speaking HTTP/1.0, which gets no 1xx
	// answer (RFC 9110 section 15.2): it would read one as the answer.
	http10 bool
	// sendTimeout (body_timeout) bounds each write of the head and of
	// the body, as nginx's send_timeout: a client that takes no byte of
	// it for this long has its connection cut. Without it, a client that
	// stops reading held its answer, and the backend's connection and
	// worker behind it, for ever (found by the red team); the head too,
	// since an answer without a body (HEAD, 204, 304, OPTIONS *) is
	// written when the exchange ends, and a client pipelining such
	// requests without reading held the connection for good. net/http
	// clears the deadline once the exchange ends, before the
	// connection's next one.
	sendTimeout time.Duration
	// headPending is set while a final head is written but not yet
	// armed for: net/http sends it with the body's first bytes, on a
	// flush, or once the handler returns (an answer without a body), and
	// the timeout is armed then (Write, FlushError, ended), once, rather
	// than also when WriteHeader only buffers it: the two arms cost each
	// exchange a second change of the runtime's timer, for nothing.
	headPending bool
}

func (w *statusWriter) WriteHeader(code int) {
	informational := code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols
	if w.http10 && informational {
		return
	}
	if w.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		w.status = code
		untyped(w.ResponseWriter.Header())
	}
	if informational {
		w.armSendTimeout() // net/http writes a 1xx head at once
	} else {
		w.headPending = true
	}
	w.ResponseWriter.WriteHeader(code)
}

// untyped keeps net/http's server from giving a response without
// Content-Type one it sniffs from the body (its documented way: the key
// present, nil). The client gets the backend's header as it was: a
// backend's HTML-looking answer without one, with X-Content-Type-Options:
// nosniff so that no browser sniffs it, reached the client as text/html,
// which a browser renders, script and all (found by the red team). Every
// answer the facade writes itself names its type.
func untyped(h http.Header) {
	if _, typed := h["Content-Type"]; !typed {
		h["Content-Type"] = nil
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.tee != nil {
		w.tee.Write(b)
	}
	w.armSendTimeout()
	return w.ResponseWriter.Write(b)
}

// FlushError sends what was written, the head included, within
// sendTimeout.
func (w *statusWriter) FlushError() error {
	if w.headPending {
		w.armSendTimeout()
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// ended gives a head not yet sent sendTimeout to reach the client, as the
// exchange ends: net/http writes an answer without a body (HEAD, 204,
// 304, OPTIONS *) once the handler returns.
func (w *statusWriter) ended() {
	if w.headPending {
		w.armSendTimeout()
	}
}

// armSendTimeout gives the write under way sendTimeout to reach the
// client.
func (w *statusWriter) armSendTimeout() {
	w.headPending = false
	if w.sendTimeout > 0 {
		http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.sendTimeout))
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestID returns the client's X-Request-Id when it is a sane token, or a
// new random (version 4 UUID) one. A hostile id could otherwise forge log
// lines or bloat every header downstream.
func requestID(h http.Header) string {
	if v := headerValue(h, "X-Request-Id"); v != "" && len(v) <= 128 && isVisibleASCII(v) {
		return v
	}
	return uuid.New()
}

func isVisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// traceID returns the trace id of the request's traceparent, or "" when
// W3C Trace Context (section 3.2.2) has a vendor ignore the header: a
// version other than two lower-case hex digits or ff; a trace id or parent
// id not in lower-case hex, or all zeros; anything after the flags of
// version 00, or anything not after a "-" for a later version. The
// backends, which get the header as sent, start a trace of their own
// then, and a log line naming the client's would name a trace no one has.
func traceID(h http.Header) string {
	tp := headerValue(h, "Traceparent")
	// version "-" trace-id(32 hex) "-" parent-id(16 hex) "-" flags(2 hex)
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' ||
		!lowerHex(tp[:2]) || tp[:2] == "ff" || !lowerHex(tp[3:35]) || !lowerHex(tp[36:52]) || !lowerHex(tp[53:55]) ||
		len(tp) > 55 && (tp[:2] == "00" || tp[55] != '-') {
		return ""
	}
	id := tp[3:35]
	if id == "00000000000000000000000000000000" || tp[36:52] == "0000000000000000" {
		return ""
	}
	return id
}

// lowerHex reports whether s is lower-case hex digits only.
func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
