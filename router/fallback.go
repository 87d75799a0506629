package router

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"strangler/edge/canonical"
	"strangler/upstream"
)

// fallbackTransport sends a request to modern and, when the route's
// fallback_on says so, to legacy instead. It decides before the reverse
// proxy writes a byte to the client: the proxy only ever sees the response
// that will be served. Holding modern's 1xx responses back until then is
// part of that.
type fallbackTransport struct{ t *Table }

// fallbackDrainLimit and fallbackDrainTime bound how much of a discarded
// modern response is read, and for how long, to keep its connection
// reusable; a larger or slower one closes the connection. The client waits
// for the drain before legacy is asked: without the time bound, a modern
// that sent a 404's or a 503's body a byte a second held its client for as
// long (found by the red team). A body that is not there a moment after
// its head is not worth the connection.
const (
	fallbackDrainLimit = 64 << 10
	fallbackDrainTime  = 100 * time.Millisecond
)

func (f *fallbackTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	x := exchangeFrom(req.Context())
	rt := x.route
	modern, legacy := f.t.modern, f.t.legacy

	out := req
	var sent *countingBody
	if req.Body != nil && x.replay == nil {
		// A body not buffered for replay streams to modern; if modern was
		// never reached it is still unread and can go to legacy.
		sent = &countingBody{ReadCloser: req.Body}
		withBody := *req
		withBody.Body = sent
		out = &withBody
	}
	var held upstream.Informational
	resp, err := f.t.roundTripHeld(modern, out, &held)
	reason, modernStatus := f.reason(req, rt, x.replays, resp, err, sent)
	if reason == "" {
		// Served: finish counts modern's attempt once the answer ended.
		held.Release(req)
		return resp, err
	}
	// A 499 of a failed attempt is the client leaving, no answer of
	// modern's; modern's own 499 is an answer like any other.
	if err == nil || modernStatus != statusClientClosed {
		rt.stats.Modern(time.Now(), modernStatus >= 500)
	}
	if resp != nil {
		f.t.discard(resp.Body)
	}
	f.t.metrics.exchange(rt, modern.Name, modernStatus, time.Since(x.start))

	x.served, x.fellBack = legacy, true
	lreq := *req
	lreq.URL = legacy.Target(x.inURL)
	lreq.Host = ""
	if x.replay != nil {
		lreq.Body = upstream.Held(x.replay)
	}
	resp, err = f.t.roundTrip(legacy, &lreq, "fallback", reason)
	legacyStatus := 0
	if err == nil {
		legacyStatus = resp.StatusCode
	} else {
		legacyStatus = statusFor(req, err).status
	}
	reason = classifyFallback(reason, legacyStatus)
	switch reason {
	case reasonConfirmedMissing:
		rt.stats.ConfirmedMissing(time.Now())
	case "not_found":
		rt.stats.Fallback(time.Now())
		if rt.repairEntity != "" {
			f.t.queueRepair(rt, req.Method, x.key, x.params)
		}
	default:
		rt.stats.Fallback(time.Now())
	}
	f.t.metrics.fallback(rt, reason)
	f.logFallback(req, x, reason, modernStatus, legacyStatus)
	return resp, err
}

// decideReplay decides whether a fallback route's request may go to
// legacy after modern received it, by the rule (route.replayable) of the
// method the backends read it as (readAs), not of the one it was sent
// with. By POST's rule, a POST standing for a DELETE
// (X-HTTP-Method-Override, _method) on a route whose fallback_methods
// list POST was replayed to legacy after modern had applied it, and one
// standing for a PUT they list was not. Its body is buffered when it may be replayed: its own method may,
// or an override header or _method in its query names one that may. Only
// a buffered body is read for a _method (a streamed POST stands for what
// its headers and query say), and a POST whose form or JSON body the
// facade cannot read as a backend may (bodyReadable) is not replayed. It
// sets x.standsFor and x.replays, and reports whether to go on.
func (t *Table) decideReplay(x *exchange, req *http.Request) bool {
	rt := x.route
	may := rt.replayable(req.Method)
	if !may && req.Method == http.MethodPost {
		may = slices.ContainsFunc(canonical.MethodOverrides(req, !t.dropOddHeaders), rt.replayable)
	}
	if may && req.ContentLength != 0 && !t.bufferForReplay(x, req) {
		return false
	}
	// Only a POST may stand for another method; reading what it stands
	// for takes the headers that reach the backends and its target,
	// which a GET's fallback (most of them) need not build.
	x.standsFor = req.Method
	if req.Method == http.MethodPost {
		x.standsFor = t.readAs(req.Method, t.outboundHeader(req, x), req.URL.RequestURI(), x.replay)
	}
	x.replays = may && rt.replayable(x.standsFor) && (req.Method != http.MethodPost || bodyReadable(req.Header, x.replay))
	return true
}

// bodyReadable reports whether the facade reads a POST's body, with
// header h, for a _method as the backends may: one that is no form or
// JSON, or one that parses whole without a Content-Encoding (a form Rack
// 2 splits on ";", or gzip Express undoes, may hold a _method the facade
// does not see).
func bodyReadable(h http.Header, body []byte) bool {
	ct := h.Get("Content-Type")
	if len(body) == 0 || !canonical.IsForm(ct) && !canonical.IsJSON(ct) {
		return true
	}
	if encoded(h) {
		return false
	}
	_, err := canonical.BodyMethodOverrides(ct, body)
	return err == nil
}

// reasonConfirmedMissing is the fallback reason of a not_found fallback
// that legacy answered 404 or 410 too.
const reasonConfirmedMissing = "confirmed_missing"

// discard reads a response body the client will not get to its end, up
// to fallbackDrainLimit within fallbackDrainTime, so that its connection
// can carry another request, and closes it. It reads through a pooled copy
// buffer: io.CopyN would allocate a reader and take io.Discard's buffer on
// every miss.
func (t *Table) discard(body io.ReadCloser) {
	buf := t.buffers.Get()
	defer t.buffers.Put(buf)
	// Closing the body ends a read waiting for the backend, and drops the
	// connection. A body the facade holds whole (modern's 404 mostly came
	// with its head) cannot wait, and needs no timer.
	if !upstream.InMemory(body) {
		late := time.AfterFunc(fallbackDrainTime, func() { body.Close() })
		defer late.Stop()
	}
	for n := 0; n < fallbackDrainLimit; {
		k, err := body.Read(buf[:min(len(buf), fallbackDrainLimit-n)])
		n += k
		if err != nil {
			break
		}
	}
	body.Close()
}

// classifyFallback is the one place that tells "not migrated yet" from
// "does not exist": a not_found fallback whose legacy answer is 404 or
// 410 asked for something neither side has. It is counted as
// confirmed_missing, and holds back neither the gates nor the retirement
// verdict, nor is its key queued for read repair (there is nothing to
// copy). Any other legacy answer leaves the reason as it was.
func classifyFallback(reason string, legacyStatus int) string {
	if reason == "not_found" && (legacyStatus == http.StatusNotFound || legacyStatus == http.StatusGone) {
		return reasonConfirmedMissing
	}
	return reason
}

// reason decides whether modern's answer triggers a fallback and returns
// the reason label, plus the status that stands for modern's answer in
// metrics ("" means no fallback).
//
// A request that replays (decideReplay: a GET, HEAD, OPTIONS or
// fallback_methods request, by the method the backends read it as) falls
// back on any enabled trigger: sending it twice is safe. Any other
// request falls back only when modern provably never received it
// (connecting failed and no body byte was read), because legacy applying
// a write modern may also have applied would run it twice.
func (f *fallbackTransport) reason(req *http.Request, rt *route, replays bool, resp *http.Response, err error, sent *countingBody) (string, int) {
	if err != nil {
		status := statusFor(req, err).status
		failure := upstream.Classify(req.Context(), err)
		if failure.Canceled {
			return "", status
		}
		neverReceived := failure.NotSent && (sent == nil || sent.n == 0)
		if !replays && !neverReceived {
			return "", status
		}
		if failure.Timeout && rt.triggers&onTimeout != 0 {
			return "timeout", status
		}
		if !failure.Timeout && rt.triggers&onError != 0 {
			return "error", status
		}
		return "", status
	}
	if !replays {
		return "", resp.StatusCode
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && rt.triggers&onNotFound != 0:
		return "not_found", resp.StatusCode
	case resp.StatusCode >= 500 && rt.triggers&onServerError != 0:
		// 600 to 999 too: RFC 9110 section 15 has a client take such an
		// invalid status as a 5xx, and the guard counts it as one.
		return "server_error", resp.StatusCode
	}
	return "", resp.StatusCode
}

// logFallback writes the one log line of a fallback hit. It names the
// route, never the raw path or query, unless the route opts in with
// log_path: paths carry patient identifiers.
func (f *fallbackTransport) logFallback(req *http.Request, x *exchange, reason string, modernStatus, legacyStatus int) {
	if x.span != nil {
		x.span.SetAttributes(attrFallbackReason.String(reason))
	}
	ctx, h := req.Context(), f.t.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	// The record goes to the handler without the caller's program counter,
	// which Logger.LogAttrs takes with runtime.Callers for handlers that
	// add the source (the facade's does not): the walk up the stack cost
	// a miss about 2,000 instructions (callgrind, 116.8k -> 114.9k).
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "fallback", 0)
	r.AddAttrs(
		slog.String("route", x.route.name),
		slog.String("method", req.Method),
		slog.String("reason", reason),
		slog.Int("modern_status", modernStatus),
		slog.Int("legacy_status", legacyStatus),
		// A fraction of milliseconds, as documented: log/slog writes a
		// float through json.Marshal (one allocation, about a microsecond),
		// which operators' queries on duration_ms are worth.
		slog.Float64("duration_ms", float64(time.Since(x.start).Microseconds())/1000),
		slog.String("request_id", x.id),
		slog.String("trace_id", x.traceID(req.Header)),
	)
	if x.route.logPath {
		r.AddAttrs(slog.String("path", x.inURL.Path))
	}
	h.Handle(ctx, r)
}

// countingBody counts the bytes a transport read from a request body. Its
// Close does nothing: the transport closes the body when connecting fails,
// and the body must then still be readable for legacy. The reverse proxy
// closes the real body when the request ends.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Close() error { return nil }

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}
