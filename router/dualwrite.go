package router

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"strangler/config"
	"strangler/shadow"
	"strangler/store"
	"strangler/upstream"
)

// Journal is what dual-write needs from the state store on the request
// path: writing an intent down before the primary sees it, and what the
// primary answered afterwards.
type Journal interface {
	BeginWrite(ctx context.Context, in store.Intent, leaseUntil time.Time) error
	RecordOutcome(ctx context.Context, id string, o store.Outcome) error
	MarkUnknown(ctx context.Context, id string) error
}

// dualWriteRoute is a dual-write route's settings.
type dualWriteRoute struct {
	// idField is where the primary's JSON answer carries a new id; nil
	// when the route names none.
	idField           config.FieldPath
	primaryIdempotent bool
}

func newDualWriteRoute(r *config.Route) dualWriteRoute {
	d := dualWriteRoute{primaryIdempotent: r.PrimaryIdempotent}
	if r.IDField != "" {
		d.idField, _ = config.ParseFieldPath(r.IDField) // validated at load
	}
	return d
}

// idCaptureLimit bounds how much of the primary's answer is kept to find
// the new id in: ids sit near the top of a creation's answer.
const idCaptureLimit = 1 << 20

// leaseMargin is added to the primary's timeout for the journal lease: the
// time the facade may take to record an answer before the intent counts
// as abandoned.
const leaseMargin = 30 * time.Second

// errJournal answers a write that could not be journaled: it is refused
// (fail closed) rather than accepted and possibly lost.
var errJournal = errors.New("write journal unavailable")

// secretHeaders never go into the journal: they are credentials, and a
// replay hours later would carry an expired one anyway.
var secretHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization"}

// serveDualWrite serves a write from the route's primary and journals it
// for the secondary. The intent is written down before the primary sees
// the request; the primary's outcome is recorded after; a 2xx write then
// goes to the secondary, at once or later from the repair queue. Reads go
// to the primary alone.
func (t *Table) serveDualWrite(x *exchange, req *http.Request) {
	rt := x.route
	primary := t.proxyTo(rt.primary)
	if isSafe(req.Method) {
		primary.ServeHTTP(&x.w, req)
		return
	}
	if !t.bufferForReplay(x, req) {
		return
	}
	id := newUUID()
	if rt.dualWrite.primaryIdempotent && req.Header.Get("Idempotency-Key") == "" {
		// The primary honours keys: give the write one, the same that
		// recovery sends it again with if the outcome is lost in a crash,
		// so that the primary applies it once.
		req.Header.Set("Idempotency-Key", id)
	}
	h := t.outboundHeader(req, x)
	for _, k := range secretHeaders {
		h.Del(k)
	}
	intent := store.Intent{
		ID:        id,
		Route:     rt.name,
		Resource:  resourceOf(req),
		Method:    req.Method,
		Target:    req.URL.RequestURI(),
		Header:    h,
		Body:      x.replay,
		Primary:   string(rt.primary),
		CreatedAt: t.now(),
	}
	// The client leaving must not cut the primary's call short: the write
	// may be applied, and its outcome must be recorded either way.
	ctx := context.WithoutCancel(req.Context())
	req = req.WithContext(ctx)
	lease := t.now().Add(t.upstreamOf(rt.primary).Timeout() + leaseMargin)
	if err := t.journal.BeginWrite(ctx, intent, lease); err != nil {
		t.log.Error("dual write refused: journal unavailable", "route", rt.name, "method", req.Method, "error", err, "request_id", x.id)
		t.metrics.DualWrite(rt.name, "refused")
		x.served = nil
		refuseWrite(&x.w, x)
		return
	}
	var capture *shadow.Capture
	if rt.dualWrite.idField != nil {
		capture = shadow.NewCapture(idCaptureLimit)
		x.w.tee = capture
	}
	defer t.recordOutcome(ctx, x, intent.ID, capture)
	primary.ServeHTTP(&x.w, req)
}

// recordOutcome writes down what the primary answered. It runs deferred,
// so also when the client hung up while the answer streamed.
func (t *Table) recordOutcome(ctx context.Context, x *exchange, id string, capture *shadow.Capture) {
	rt := x.route
	x.w.tee = nil
	var o store.Outcome
	switch {
	case x.answer.status != 0:
		o = store.Outcome{Status: x.answer.status, Location: x.answer.header.Get("Location")}
		if capture != nil && !capture.Truncated() {
			o.PrimaryID, _ = rt.dualWrite.idField.Find(capture.Bytes())
		}
	case upstream.Classify(ctx, x.answer.err).NotSent:
		// The primary never got the request: nothing to copy.
		o = store.Outcome{Status: http.StatusBadGateway}
	default:
		// The primary may or may not have applied it. Only an operator, or
		// a primary that honours Idempotency-Key, can settle that.
		t.metrics.DualWrite(rt.name, "unknown")
		if rt.dualWrite.primaryIdempotent {
			return // recovery resends it once its lease passes
		}
		if err := t.journal.MarkUnknown(ctx, id); err != nil {
			t.log.Error("marking a dual write unknown failed; it becomes unknown when its lease passes", "route", rt.name, "id", id, "error", err)
		}
		return
	}
	if err := t.journal.RecordOutcome(ctx, id, o); err != nil {
		t.log.Error("recording a dual write's outcome failed; it becomes unknown when its lease passes",
			"route", rt.name, "id", id, "status", o.Status, "error", err)
		t.metrics.DualWrite(rt.name, "unknown")
		return
	}
	if o.Status < 200 || o.Status > 299 {
		t.metrics.DualWrite(rt.name, "skipped")
		return
	}
	t.metrics.DualWrite(rt.name, "queued")
	if t.deliver != nil {
		t.deliver(id)
	}
}

// refuseWrite answers a write that could not be journaled with 503: no
// backend has seen it, so the client may send it again once the store is
// back. statusFor maps failed backend exchanges to 502 and 504, which
// would tell the client the backend failed, maybe after applying it.
func refuseWrite(w http.ResponseWriter, x *exchange) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	json.NewEncoder(w).Encode(errorBody{Error: errJournal.Error() + "; nothing was written, retry later", RequestID: x.id})
}

// resourceOf names what a write changes: its target's path, without the
// query. Writes to one resource reach the secondary in the order the
// primary answered them, whichever routes they came through: a PUT and a
// DELETE of /patients/42 are usually two routes, and were the DELETE to
// overtake a PUT still waiting for the secondary, the secondary would
// answer it 404 (a dead letter) and then create the patient.
func resourceOf(req *http.Request) string {
	return req.URL.EscapedPath()
}
