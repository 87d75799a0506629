package router

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"

	"strangler/edge/canonical"
	"strangler/internal/golog"
	"strangler/upstream"
)

// bufferPool shares response copy buffers between requests: without it the
// reverse proxy allocates a fresh 32 KiB buffer for every response.
type bufferPool struct{ pool sync.Pool }

// copyBuffer is the size of a response copy buffer. 8 KiB, as nginx's
// proxy buffers, rather than the reverse proxy's 32: a burst of requests
// holds one each at once (1,024 connections held 445 of them, 14 MiB at
// 32 KiB), and a large body costs one read and one write system call per
// 8 KiB, which loopback does at over a gigabyte per second.
type copyBuffer [8 << 10]byte

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new(copyBuffer) }}}
}

func (p *bufferPool) Get() []byte  { return p.pool.Get().(*copyBuffer)[:] }
func (p *bufferPool) Put(b []byte) { p.pool.Put((*copyBuffer)(b)) }

// reverseProxy forwards to up (addressing) through rt, which is up itself or
// the fallback transport.
func (t *Table) reverseProxy(up *upstream.Upstream, rt http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        t.rewrite(up),
		Transport:      rt,
		BufferPool:     t.buffers,
		ModifyResponse: t.modifyResponse,
		ErrorHandler:   t.proxyError,
		// Log through slog; ReverseProxy only logs copy errors: clients or
		// backends hanging up mid-body, or a backend's malformed trailer,
		// which it quotes (golog drops what is quoted).
		ErrorLog: golog.Logger(t.log, slog.LevelDebug),
	}
}

func (t *Table) modifyResponse(res *http.Response) error {
	x := exchangeFrom(res.Request.Context())
	x.answer.status, x.answer.header = res.StatusCode, res.Header
	if x.route.debugHeaders {
		res.Header.Set("X-Strangler-Backend", x.served.Name)
	}
	if x.dualWrite != nil {
		return t.recordAnswer(x, res)
	}
	return nil
}

// errBodyTooLarge refuses a body that must be replayed but exceeds the
// route's max_replay_body.
var errBodyTooLarge = errors.New("request body exceeds max_replay_body")

// errTrailerNotReplayed refuses a request with trailer fields on a route
// that buffers its body for replay.
var errTrailerNotReplayed = errors.New("request trailer fields on a route that replays the body")

// statusClientClosed is nginx's convention for "the client went away".
const statusClientClosed = 499

// refusal is why the facade answered a request alone, as
// strangler_refused_total says it: a closed set, never anything the
// client sent.
type refusal string

// The refusals.
const (
	refusedMethod         refusal = "method"           // 405: a method the facade does not pass
	refusedRequest        refusal = "bad_request"      // 400 (415: an encoded body a _method may hide in): a path, header or framing the edge refuses
	refusedBodyIncomplete refusal = "body_incomplete"  // 400: a body that ended early or broke
	refusedBodyTimeout    refusal = "body_timeout"     // 408
	refusedBodyTooLarge   refusal = "body_too_large"   // 413: over max_body
	refusedReplayTooLarge refusal = "replay_too_large" // 413: over max_replay_body
	refusedReplayBudget   refusal = "replay_budget"    // 503: replay_budget has no room for the body
	refusedTrailer        refusal = "trailer"          // 400: trailer fields on a route that replays the body
	refusedJournal        refusal = "journal_down"     // 503: the dual-write journal is unavailable
	refusedKeyInFlight    refusal = "key_in_flight"    // 409: an Idempotency-Key whose first request is in progress
	refusedKeyMoved       refusal = "key_moved"        // 409: an Idempotency-Key whose write went to the previous primary
	refusedKeyReused      refusal = "key_reused"       // 422: an Idempotency-Key sent with another request
	refusedKeyInvalid     refusal = "key_invalid"      // 400: an Idempotency-Key that cannot name a write
)

// refusals lists every refusal, for the metric's tests and README.
func refusals() []refusal {
	return []refusal{refusedMethod, refusedRequest, refusedBodyIncomplete, refusedBodyTimeout, refusedBodyTooLarge,
		refusedReplayTooLarge, refusedReplayBudget, refusedTrailer, refusedJournal, refusedKeyInFlight, refusedKeyMoved, refusedKeyReused, refusedKeyInvalid}
}

// errorAnswer is what the client gets for a failed exchange: the status,
// the short message, and the refusal when the facade refused the request
// itself ("" when a backend failed).
type errorAnswer struct {
	status  int
	msg     string
	refusal refusal
}

// statusFor is the one place that maps a failed exchange to the status the
// client gets, the short message it reads and the refusal it counts as.
func statusFor(r *http.Request, err error) errorAnswer {
	var ref *canonical.Refusal
	switch {
	case errors.As(err, &ref):
		if ref.Status == http.StatusMethodNotAllowed {
			return errorAnswer{ref.Status, ref.Msg, refusedMethod}
		}
		return errorAnswer{ref.Status, ref.Msg, refusedRequest}
	case errors.Is(err, errBodyIncomplete):
		return errorAnswer{http.StatusBadRequest, "the request body could not be read whole (broken chunked encoding, or the connection ended early)", refusedBodyIncomplete}
	case errors.Is(err, errBodyTimeout):
		return errorAnswer{http.StatusRequestTimeout, "no byte of the request body arrived for body_timeout", refusedBodyTimeout}
	case errors.Is(err, errBodyOverMax):
		return errorAnswer{http.StatusRequestEntityTooLarge, "request body too large; the limit is the route's max_body", refusedBodyTooLarge}
	case errors.Is(err, errBodyTooLarge):
		return errorAnswer{http.StatusRequestEntityTooLarge, "request body too large to replay; the limit is the route's max_replay_body", refusedReplayTooLarge}
	case errors.Is(err, errReplayBudget):
		// Nothing reached a backend: the client may send it again.
		return errorAnswer{http.StatusServiceUnavailable, "the facade holds as many request bodies for replay as its replay_budget allows; nothing was sent to any backend; retry later", refusedReplayBudget}
	case errors.Is(err, errTrailerNotReplayed):
		return errorAnswer{http.StatusBadRequest, "the request has trailer fields, which this route cannot pass on: it buffers the body to send it twice; send them as header fields", refusedTrailer}
	case errors.Is(err, errJournal):
		// Nothing reached a backend: the client may send it again.
		return errorAnswer{http.StatusServiceUnavailable, "the write journal is unavailable, so the write was refused and nothing was written; retry later", refusedJournal}
	case errors.Is(err, errKeyInFlight):
		return errorAnswer{http.StatusConflict, err.Error(), refusedKeyInFlight}
	case errors.Is(err, errKeyMoved):
		return errorAnswer{http.StatusConflict, err.Error(), refusedKeyMoved}
	case errors.Is(err, errKeyReused):
		return errorAnswer{http.StatusUnprocessableEntity, err.Error(), refusedKeyReused}
	}
	if ke := keyError(""); errors.As(err, &ke) {
		return errorAnswer{http.StatusBadRequest, ke.Error(), refusedKeyInvalid}
	}
	f := upstream.Classify(r.Context(), err)
	switch {
	case f.Canceled:
		return errorAnswer{status: statusClientClosed, msg: "client closed request"}
	case f.Timeout:
		return errorAnswer{status: http.StatusGatewayTimeout, msg: "backend did not answer in time"}
	}
	return errorAnswer{status: http.StatusBadGateway, msg: "backend unavailable"}
}

// proxyError answers a request whose backend exchange failed: as the
// client's fault if its body broke (the backend saw an incomplete
// message), else as the backend's.
func (t *Table) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	x.answer.err = err
	if bodyErr := x.body.failure(); bodyErr != nil {
		x.served = nil // the facade answers alone
		t.refuse(x, r, bodyErr)
		return
	}
	status := statusFor(r, err).status
	if status == statusClientClosed {
		clientLeft(x)
	}
	t.log.LogAttrs(r.Context(), slog.LevelWarn, "backend failed",
		slog.String("route", x.route.name),
		slog.String("backend", x.served.Name),
		slog.String("method", r.Method),
		slog.Int("status", status),
		slog.String("error", upstream.Describe(err).Error()),
		slog.String("request_id", x.id))
	t.writeError(w, r, x, err)
}

// writeError answers with the status and message statusFor gives err.
func (t *Table) writeError(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	a := statusFor(r, err)
	if a.refusal != "" {
		t.metrics.refused(x.route.name, a.refusal)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if x.route.debugHeaders && x.served != nil {
		h.Set("X-Strangler-Backend", x.served.Name)
	}
	w.WriteHeader(a.status)
	json.NewEncoder(w).Encode(errorBody{Error: a.msg, RequestID: x.id})
}

// errorBody is the JSON body of every error the facade itself answers.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}
