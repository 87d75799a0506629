package router

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"

	"strangler/edge/canonical"
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
		// Log through slog; ReverseProxy only logs copy errors, which are
		// clients or backends hanging up mid-body.
		ErrorLog: slog.NewLogLogger(t.log.Handler(), slog.LevelDebug),
	}
}

func (t *Table) modifyResponse(res *http.Response) error {
	x := exchangeFrom(res.Request.Context())
	x.answer.status, x.answer.header = res.StatusCode, res.Header
	if x.dualWrite != nil {
		t.recordAnswer(x, res)
	}
	if x.route.debugHeaders {
		res.Header.Set("X-Strangler-Backend", x.served.Name)
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

// statusFor is the one place that maps a failed exchange to the status the
// client gets and the short message it reads.
func statusFor(r *http.Request, err error) (int, string) {
	var refusal *canonical.Refusal
	switch {
	case errors.As(err, &refusal):
		return refusal.Status, refusal.Msg
	case errors.Is(err, errBodyIncomplete):
		return http.StatusBadRequest, "the request body could not be read whole (broken chunked encoding, or the connection ended early)"
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout, "no byte of the request body arrived for body_timeout"
	case errors.Is(err, errBodyOverMax):
		return http.StatusRequestEntityTooLarge, "request body too large; the limit is the route's max_body"
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge, "request body too large to replay; the limit is the route's max_replay_body"
	case errors.Is(err, errReplayBudget):
		// Nothing reached a backend: the client may send it again.
		return http.StatusServiceUnavailable, "the facade holds as many request bodies for replay as its replay_budget allows; nothing was sent to any backend; retry later"
	case errors.Is(err, errTrailerNotReplayed):
		return http.StatusBadRequest, "the request has trailer fields, which this route cannot pass on: it buffers the body to send it twice; send them as header fields"
	case errors.Is(err, errJournal):
		// Nothing reached a backend: the client may send it again.
		return http.StatusServiceUnavailable, "the write journal is unavailable, so the write was refused and nothing was written; retry later"
	case errors.Is(err, errKeyInFlight), errors.Is(err, errKeyMoved):
		return http.StatusConflict, err.Error()
	case errors.Is(err, errKeyReused):
		return http.StatusUnprocessableEntity, err.Error()
	}
	if ke := keyError(""); errors.As(err, &ke) {
		return http.StatusBadRequest, ke.Error()
	}
	f := upstream.Classify(r.Context(), err)
	switch {
	case f.Canceled:
		return statusClientClosed, "client closed request"
	case f.Timeout:
		return http.StatusGatewayTimeout, "backend did not answer in time"
	}
	return http.StatusBadGateway, "backend unavailable"
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
	status, _ := statusFor(r, err)
	if status == statusClientClosed {
		clientLeft(x)
	}
	t.log.LogAttrs(r.Context(), slog.LevelWarn, "backend failed",
		slog.String("route", x.route.name),
		slog.String("backend", x.served.Name),
		slog.String("method", r.Method),
		slog.Int("status", status),
		slog.String("error", withoutURL(err).Error()),
		slog.String("request_id", x.id))
	t.writeError(w, r, x, err)
}

// writeError answers with the status and message statusFor gives err.
func (t *Table) writeError(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	status, msg := statusFor(r, err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if x.route.debugHeaders && x.served != nil {
		h.Set("X-Strangler-Backend", x.served.Name)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Error: msg, RequestID: x.id})
}

// errorBody is the JSON body of every error the facade itself answers.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

// withoutURL drops the request URL that net/http puts in its errors: the
// path may carry patient identifiers, which logs must not.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
