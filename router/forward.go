package router

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"

	"strangler/domain"
	"strangler/edge/canonical"
	"strangler/upstream"
)

// bufferPool shares response copy buffers between requests: without it the
// forwarder would allocate a fresh buffer for every response.
type bufferPool struct{ pool sync.Pool }

// copyBuffer is the size of a response copy buffer. 8 KiB, as nginx's
// proxy buffers, rather than httputil.ReverseProxy's 32: a burst of requests
// holds one each at once (1,024 connections held 445 of them, 14 MiB at
// 32 KiB), and a large body costs one read and one write system call per
// 8 KiB, which loopback does at over a gigabyte per second.
type copyBuffer [8 << 10]byte

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new(copyBuffer) }}}
}

func (p *bufferPool) Get() []byte  { return p.pool.Get().(*copyBuffer)[:] }
func (p *bufferPool) Put(b []byte) { p.pool.Put((*copyBuffer)(b)) }

// forwarder is the handler that forwards a request to one backend and
// streams its answer back: what httputil.ReverseProxy did, without the work
// the facade does not need on every request (canonicalising the names of
// the hop-by-hop fields it deletes, twice; a copy of the request's every
// field; a timer per streamed answer).
//
// It sends the request with hop-by-hop fields removed (RFC 9110 section
// 7.6.1) and the X-Forwarded-* fields the facade's, passes 1xx answers on
// as they come, and the final answer as it streams: flushed after every
// write when its length is unknown or it is a text/event-stream, with its
// trailer fields, announced or not. A 101 answer to a request that asked
// for the same protocol hands the client's connection over to the
// backend's, both ways.
type forwarder struct {
	t *Table
	// up is the backend the request is addressed to; rt sends it, up
	// itself or the fallback transport.
	up *upstream.Upstream
	rt http.RoundTripper
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, in *http.Request) {
	relay := &relay1xx{w: w}
	relay.trace.Got1xxResponse = relay.got1xx
	out, err := f.outbound(httptrace.WithClientTrace(in.Context(), &relay.trace), in)
	if err != nil {
		f.t.proxyError(w, in, err)
		return
	}
	res, err := f.rt.RoundTrip(out)
	relay.end()
	if err != nil {
		f.t.proxyError(w, out, err)
		return
	}
	if _, ok := res.Header["Set-Cookie"]; ok {
		dropAdminCookies(res.Header)
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		dropForged(res.Header)
		if f.modify(w, out, res) {
			f.t.switchProtocols(w, out, res)
		}
		return
	}
	// The facade's own fields (dropForged) go in the same pass.
	upstream.RemoveHopByHopAnd(res.Header, facadeField)
	if !f.modify(w, out, res) {
		return
	}
	// After modify: a dual write journals the primary's Location as it
	// was sent, for the secondary.
	f.t.localLocations(res.Header)
	h := w.Header()
	addHeader(h, res.Header)
	announced := 0
	if len(res.Trailer) > 0 {
		// The transport keeps the Trailer field's names in res.Trailer
		// alone. The client is promised those that may be sent: the
		// body's end drops the others (a backend's Trailer: Set-Cookie,
		// Host reached the client, which then waited for fields never
		// sent).
		names := make([]string, 0, len(res.Trailer))
		for k := range res.Trailer {
			if !upstream.NotTrailer(k) && !facadeField(k) {
				names = append(names, k)
			}
		}
		if announced = len(names); announced > 0 {
			h.Add("Trailer", strings.Join(names, ", "))
		}
	}
	w.WriteHeader(res.StatusCode)
	if err := f.t.copyBody(w, res, in); err != nil {
		res.Body.Close()
		// The client has part of the answer: all that is left is to cut
		// it, so that it cannot take it for all (net/http recovers the
		// panic). Outside a server (a benchmark) there is nothing to cut.
		if in.Context().Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	res.Body.Close() // which fills res.Trailer
	dropForged(res.Trailer)
	if len(res.Trailer) == 0 {
		return
	}
	// Trailer fields need a chunked answer: flushing now keeps net/http
	// from sending a short body with a Content-Length instead.
	http.NewResponseController(w).Flush()
	if len(res.Trailer) == announced {
		addHeader(h, res.Trailer)
		return
	}
	for k, vs := range res.Trailer {
		h[http.TrailerPrefix+k] = append(h[http.TrailerPrefix+k], vs...)
	}
}

// outbound is the request a backend gets for in, in ctx: its header
// without hop-by-hop fields and with the facade's forwarding fields,
// addressed to f.up, with the query as the client sent it.
func (f *forwarder) outbound(ctx context.Context, in *http.Request) (*http.Request, error) {
	x := exchangeFrom(in.Context())
	x.served = f.up
	// The backend's 1xx answers reach the client through x.w.
	x.w.http10 = !in.ProtoAtLeast(1, 1)
	upgrade := upgradeType(in.Header)
	if !printable(upgrade) {
		return nil, errors.New("client tried to switch to an invalid protocol")
	}
	out := in.WithContext(ctx) // a shallow copy
	out.Header = f.t.forwardedHeader(in, x.id)
	if in.ContentLength == 0 {
		out.Body = nil // a body-less request the transport may send again
	} else if in.Body != nil {
		// The transport closes the body of a request it failed to send:
		// the client's body must stay open, or closing it would wait for
		// what the client has not sent yet (a 100-continue).
		out.Body = upstream.KeepOpen(in.Body)
	}
	out.Close = false
	// The query goes on as the client sent it: the facade decides nothing
	// on it.
	x.inURL = in.URL
	out.URL = f.up.Target(in.URL)
	out.Host = ""
	// The client's trailer fields arrive after the body, into the map
	// shareTrailer made, which the transport sends after the last chunk.
	out.Trailer = in.Trailer
	if httpguts.HeaderValuesContainsToken(in.Header["Te"], "trailers") {
		// Tell a backend that cares that the facade passes trailer
		// fields on (golang/go#21096).
		out.Header["Te"] = []string{"trailers"}
	}
	if upgrade != "" {
		out.Header["Connection"] = []string{"Upgrade"}
		out.Header["Upgrade"] = []string{upgrade}
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		// Not Go's own User-Agent.
		out.Header["User-Agent"] = []string{""}
	}
	// A dual write is journaled as one request and its answer: what a
	// client sent through a tunnel after a 101 would reach the primary
	// alone, past the routes and the journal. Reads (a WebSocket
	// handshake is a GET) upgrade as on any route.
	onlyWebSocket(out.Header, x.route.mode != domain.ModeDualWrite || isSafe(in.Method))
	return out, nil
}

// modify runs the facade's look at a backend's answer before the client
// gets any of it, and answers the client itself when that fails.
func (f *forwarder) modify(w http.ResponseWriter, out *http.Request, res *http.Response) bool {
	if err := f.t.modifyResponse(res); err != nil {
		res.Body.Close()
		f.t.proxyError(w, out, err)
		return false
	}
	return true
}

// dropAdminCookies removes from a backend's answer each Set-Cookie that
// would set one of the admin listener's cookies: browsers do not keep
// cookies apart by port, so a backend on the same host could otherwise
// log the operator out of the status page or fix them into a session of
// its choosing.
func dropAdminCookies(h http.Header) {
	// An empty list writes no field.
	h["Set-Cookie"] = slices.DeleteFunc(h["Set-Cookie"], domain.NamesAdminCookie)
}

// relay1xx passes a backend's 1xx answers on to the client until the
// final answer came: the transport may still call it after RoundTrip
// returned an error, when the handler may be writing an error answer.
// trace, which the request's context carries, calls it.
type relay1xx struct {
	w     http.ResponseWriter
	trace httptrace.ClientTrace
	mu    sync.Mutex
	done  bool
}

func (r *relay1xx) got1xx(code int, header textproto.MIMEHeader) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil
	}
	h := r.w.Header()
	addHeader(h, http.Header(header))
	if _, ok := h["Set-Cookie"]; ok {
		dropAdminCookies(h) // a 103 could carry one as a final answer could
	}
	dropForged(h)
	r.w.WriteHeader(code)
	// net/http sends a 1xx answer with the fields in the header map and
	// leaves them there.
	clear(h)
	return nil
}

func (r *relay1xx) end() {
	r.mu.Lock()
	r.done = true
	r.mu.Unlock()
}

// copyBody streams res's body to w through a pooled buffer, flushing
// after every write when the answer must reach the client as it comes: a
// text/event-stream, or a body of unknown length (a stream, a long poll).
// The header is flushed before the first byte of such a body arrives.
func (t *Table) copyBody(w http.ResponseWriter, res *http.Response, in *http.Request) error {
	var flush func() error
	if res.ContentLength == -1 || isEventStream(headerValue(res.Header, "Content-Type")) {
		flush = http.NewResponseController(w).Flush
		if res.Body != http.NoBody {
			flush()
		}
	}
	buf := t.buffers.Get()
	defer t.buffers.Put(buf)
	for {
		n, rerr := res.Body.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			t.log.LogAttrs(in.Context(), slog.LevelDebug, "backend answer broke off",
				slog.String("error", upstream.Describe(rerr).Error()))
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush != nil {
				flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if in.Context().Err() == nil {
				if x := exchangeFrom(in.Context()); x != nil {
					x.broken = true
					t.metrics.brokeOff(x.route.name, x.served.Name, rerr)
				}
			}
			return rerr
		}
	}
}

// isEventStream reports whether a Content-Type is text/event-stream,
// parameters aside.
func isEventStream(ct string) bool {
	base, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// modifyResponse records the backend's answer in the exchange before the
// client gets any of it, and journals a dual write's. Its caller has
// dropped the facade's own fields from it (dropForged).
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
	refusedStoreRoom      refusal = "store_room"       // 503: the body needs more of the state store's free space than is left
	refusedKeyInFlight    refusal = "key_in_flight"    // 409: an Idempotency-Key whose first request is in progress
	refusedKeyMoved       refusal = "key_moved"        // 409: an Idempotency-Key whose write went to the previous primary
	refusedKeyReused      refusal = "key_reused"       // 422: an Idempotency-Key sent with another request
	refusedKeyInvalid     refusal = "key_invalid"      // 400: an Idempotency-Key that cannot name a write
	refusedResourceBusy   refusal = "resource_busy"    // 503: earlier writes to the resource held its turn past the primary's timeout
	refusedWritesHeld     refusal = "writes_held"      // 503: a change of where routes send writes held it past the primary's timeout, or another replica's it could not follow
)

// refusals lists every refusal, for the metric's tests and README.
func refusals() []refusal {
	return []refusal{refusedMethod, refusedRequest, refusedBodyIncomplete, refusedBodyTimeout, refusedBodyTooLarge,
		refusedReplayTooLarge, refusedReplayBudget, refusedTrailer, refusedJournal, refusedStoreRoom, refusedKeyInFlight, refusedKeyMoved, refusedKeyReused, refusedKeyInvalid, refusedResourceBusy, refusedWritesHeld}
}

// errorAnswer is what the client gets for a failed exchange: the status,
// the short message, the refusal when the facade refused the request
// itself ("" when a backend failed), and the Retry-After of a refusal the
// client may send again unchanged soon ("" for none).
type errorAnswer struct {
	status     int
	msg        string
	refusal    refusal
	retryAfter string
}

// retrySoon is the Retry-After of a 503 the facade answers alone, nothing
// having reached a backend: what held the request back (bodies buffered
// for replay, a resource's earlier write, a change of the routes being
// checked, a state store failing over) mostly passes within a second or
// a backend's answer.
const retrySoon = "1"

// retryRoom is the Retry-After of a write refused for its size
// (refusedStoreRoom): the room comes back when an operator frees space
// or the store's log is checkpointed, not within a second, and the same
// write sent again at once is refused again.
const retryRoom = "30"

// statusFor is the one place that maps a failed exchange to the status the
// client gets, the short message it reads and the refusal it counts as.
func statusFor(r *http.Request, err error) errorAnswer {
	var ref *canonical.Refusal
	switch {
	case errors.As(err, &ref):
		if ref.Status == http.StatusMethodNotAllowed {
			return errorAnswer{ref.Status, ref.Msg, refusedMethod, ""}
		}
		return errorAnswer{ref.Status, ref.Msg, refusedRequest, ""}
	case errors.Is(err, errBodyIncomplete):
		return errorAnswer{http.StatusBadRequest, "the request body could not be read whole (broken chunked encoding, or the connection ended early)", refusedBodyIncomplete, ""}
	case errors.Is(err, errBodyTimeout):
		return errorAnswer{http.StatusRequestTimeout, "no byte of the request body arrived for body_timeout", refusedBodyTimeout, ""}
	case errors.Is(err, errBodyOverMax):
		return errorAnswer{http.StatusRequestEntityTooLarge, "request body too large; the limit is the route's max_body", refusedBodyTooLarge, ""}
	case errors.Is(err, errBodyTooLarge):
		return errorAnswer{http.StatusRequestEntityTooLarge, "request body too large to replay; the limit is the route's max_replay_body", refusedReplayTooLarge, ""}
	case errors.Is(err, errReplayBudget):
		// Nothing reached a backend: the client may send it again.
		return errorAnswer{http.StatusServiceUnavailable, "the facade holds as many request bodies for replay as its replay_budget allows; nothing was sent to any backend; retry later", refusedReplayBudget, retrySoon}
	case errors.Is(err, errTrailerNotReplayed):
		return errorAnswer{http.StatusBadRequest, "the request has trailer fields, which this route cannot pass on: it buffers the body to send it twice; send them as header fields", refusedTrailer, ""}
	case errors.Is(err, errJournal):
		// Nothing reached a backend: the client may send it again.
		return errorAnswer{http.StatusServiceUnavailable, "the write journal is unavailable, so the write was refused and nothing was written; retry later", refusedJournal, retrySoon}
	case domain.TooLargeForRoom(err) != nil:
		return errorAnswer{http.StatusServiceUnavailable, domain.TooLargeForRoom(err).Error() + "; nothing was sent to any backend, and the same write is refused until the store has more room", refusedStoreRoom, retryRoom}
	case errors.Is(err, errResourceBusy):
		return errorAnswer{http.StatusServiceUnavailable, err.Error(), refusedResourceBusy, retrySoon}
	case errors.Is(err, errWritesHeld), errors.Is(err, errStaleFlags):
		return errorAnswer{http.StatusServiceUnavailable, err.Error(), refusedWritesHeld, retrySoon}
	case errors.Is(err, errKeyInFlight):
		return errorAnswer{http.StatusConflict, err.Error(), refusedKeyInFlight, ""}
	case errors.Is(err, errKeyMoved):
		return errorAnswer{http.StatusConflict, err.Error(), refusedKeyMoved, ""}
	case errors.Is(err, errKeyReused):
		return errorAnswer{http.StatusUnprocessableEntity, err.Error(), refusedKeyReused, ""}
	}
	if ke := keyError(""); errors.As(err, &ke) {
		return errorAnswer{http.StatusBadRequest, ke.Error(), refusedKeyInvalid, ""}
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
	if a.retryAfter != "" {
		h.Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.status)
	json.NewEncoder(w).Encode(errorBody{Error: a.msg, RequestID: x.id})
}

// errorBody is the JSON body of every error the facade itself answers.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}
