package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/edge/canonical"
	"strangler/internal/uuid"
	"strangler/shadow"
	"strangler/telemetry"
	"strangler/upstream"
)

// Journal is what dual-write needs from the state store on the request
// path: writing an intent down before the primary sees it, and what the
// primary answered afterwards. Recording a 2xx answer also hands the
// write on to the secondary's delivery.
type Journal interface {
	BeginWrite(ctx context.Context, in domain.Intent, lease time.Duration) error
	// BeginWriteTurn is BeginWrite that also gives the write its
	// resource's turn among every replica sharing the store when no
	// other write holds it, and says whether it did; call it only
	// holding the resource's turn in this process.
	BeginWriteTurn(ctx context.Context, in domain.Intent, lease time.Duration) (bool, error)
	BeginKeyedWrite(ctx context.Context, in domain.Intent, k domain.IdempotencyKey, lease time.Duration) (domain.KeyedWrite, error)
	// RecordOutcome records the answer to the write id.
	RecordOutcome(ctx context.Context, id string, o domain.Outcome) error
	// RecordOutcomeOf records the answer to the write journaled as in,
	// which delivery may then send from in rather than from the journal.
	RecordOutcomeOf(ctx context.Context, in domain.Intent, o domain.Outcome) error
	MarkUnknown(ctx context.Context, id string) error
	// TakeTurn gives the sent write id to resource its turn with the
	// primary among every replica sharing the store: false while
	// another write to the resource holds it.
	TakeTurn(ctx context.Context, id, resource string) (bool, error)
	// KeepTurn keeps the turn of the sent write id to resource past its
	// exchange, until the write leaves sent.
	KeepTurn(ctx context.Context, id, resource string) error
}

// dualWriteRoute is a dual-write route's settings.
type dualWriteRoute struct {
	// idField is where the primary's JSON answer carries a new id; nil
	// when the route names none.
	idField           domain.FieldPath
	primaryIdempotent bool
	// fence is the route's fence its flags were read at
	// (config.Route.Fence), which its writes are journaled under.
	fence int64
}

func newDualWriteRoute(r *config.Route) dualWriteRoute {
	d := dualWriteRoute{primaryIdempotent: r.PrimaryIdempotent, fence: r.Fence}
	if r.IDField != "" {
		d.idField, _ = domain.ParseFieldPath(r.IDField) // validated at load
	}
	return d
}

// idCaptureLimit bounds how much of the primary's answer is read before
// the client gets it, to find the new id in: ids sit near the top of a
// creation's answer.
const idCaptureLimit = 1 << 20

// leaseMargin is added to the primary's timeout, and to turnWait, for the
// journal lease: the time the facade may take to record an answer before
// the intent counts as abandoned.
const leaseMargin = 30 * time.Second

// turnWait is how long a dual write waits for its turn behind earlier
// writes to its resource (takeTurn): twice the primary's timeout,
// as long as one write may hold it (response headers, then the head of
// the answer read for the id), so that one write which times out does
// not make the next one fail as well.
func turnWait(primaryTimeout time.Duration) time.Duration { return 2 * primaryTimeout }

// errJournal answers a write that could not be journaled: it is refused
// (fail closed) rather than accepted and possibly lost.
var errJournal = errors.New("write journal unavailable")

// secretHeaders never go into the journal: they are credentials, and a
// replay hours later would carry an expired one anyway. Nor do the headers
// idempotency_scope names (journalHeader): they name a client.
var secretHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization"}

// journalHeader removes from h, the headers of a write about to be
// journaled, every credential: secretHeaders and the headers
// idempotency_scope names (an API key in X-Api-Key is as secret as a
// bearer token; a scope cookie goes with Cookie).
func (t *Table) journalHeader(h http.Header) {
	for _, k := range secretHeaders {
		h.Del(k)
	}
	for _, p := range t.idempotencyScope {
		if p.Header != "" {
			h.Del(p.Header)
		}
	}
}

// checkSameJSON refuses a dual write whose body the two backends could
// read as different JSON (canonical.SameJSONEverywhere), and one typed
// JSON in a Content-Encoding (415), which the facade does not undo to
// look. It reports whether to go on.
func (t *Table) checkSameJSON(x *exchange, req *http.Request) bool {
	var err error
	switch {
	case len(x.replay) == 0:
		return true
	case encoded(req.Header):
		if slices.ContainsFunc(req.Header["Content-Type"], canonical.IsJSON) {
			err = errEncodedJSON
		}
	default:
		err = canonical.SameJSONEverywhere(x.replay, req.Header["Content-Type"])
	}
	if err != nil {
		t.refuse(x, req, err)
		return false
	}
	return true
}

// errEncodedJSON refuses a dual write's JSON body in a Content-Encoding.
var errEncodedJSON = &canonical.Refusal{Status: http.StatusUnsupportedMediaType,
	Msg: "the JSON body has a Content-Encoding, which the facade does not undo to check that the backends of a dual write read the same JSON; send it without one"}

// serveDualWrite serves a write from the route's primary and journals it
// for the secondary. The intent is written down before the primary sees
// the request; the primary's outcome is recorded after; a 2xx write then
// goes to the secondary, at once or later from the repair queue. A
// client's Idempotency-Key makes its retries one write (idempotency.go).
// Reads go to the primary alone.
func (t *Table) serveDualWrite(x *exchange, req *http.Request) {
	rt := x.route
	primary := t.proxyTo(rt.primary)
	if isSafe(req.Method) {
		primary.ServeHTTP(&x.w, req)
		return
	}
	key, err := idempotencyKey(req.Header, !t.dropOddHeaders)
	if err != nil {
		t.writeError(&x.w, req, x, err)
		return
	}
	if !t.bufferForReplay(x, req) || !t.checkSameJSON(x, req) {
		return
	}
	// Journaled under t only while t serves: a change of where routes send
	// writes checks the journal and swaps tables holding journaling back
	// (HoldWrites), so a write that began under the previous table, its
	// body read meanwhile, is one that check did not see. A write held
	// back longer than the primary's timeout is refused (errWritesHeld).
	timeout := t.upstreamOf(rt.primary).Timeout()
	if err := t.owner.journaling.enter(req.Context(), timeout); err != nil {
		if errors.Is(err, context.Canceled) {
			clientLeft(x)
		}
		t.writeError(&x.w, req, x, err)
		return
	}
	if cur := t.owner.table.Load(); cur != t {
		t.owner.journaling.leave()
		cur.reroute(x, req)
		return
	}
	created := t.now()
	id := uuid.NewTime(created)
	client := req
	if rt.dualWrite.primaryIdempotent && key == "" {
		// The primary honours keys: give the write one, the same that
		// recovery sends it again with if the outcome is lost in a crash,
		// so that the primary applies it once.
		req.Header.Set("Idempotency-Key", id)
	}
	h := t.outboundHeader(req, x)
	t.journalHeader(h)
	if t.tracing != nil {
		// The delivery to the secondary, maybe hours later, joins this
		// request's trace.
		telemetry.Inject(req.Context(), t.tracing.propagator, h)
	}
	resource := canonical.Resource(x.key)
	intent := domain.Intent{
		ID:           id,
		Route:        rt.name,
		Resource:     resource,
		ResourceView: t.hasher.Path(rt.pattern, resource),
		Method:       req.Method,
		Target:       req.URL.RequestURI(),
		Header:       h,
		Body:         x.replay,
		Primary:      rt.primary,
		// Delivery and recovery follow it, not a later reload.
		PrimaryIdempotent: rt.dualWrite.primaryIdempotent,
		CreatedAt:         created,
		Fence:             rt.dualWrite.fence,
	}
	// Decided here, once, for the router's turns, the journal's (after
	// a restart, an operator's retry) and recovery's and delivery's.
	intent.StandsFor = t.readAs(intent.Method, intent.Header, intent.Target, intent.Body)
	// The client leaving must not cut the primary's call short: the write
	// may be applied, and its outcome must be recorded either way.
	// It is cancelled only to end an answer that stalls (readHead).
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(client.Context()))
	defer cancel(nil)
	req = req.WithContext(ctx)
	// A create's resource is known from its answer only; it waits behind
	// no other write (createdResource) and no write can wait behind it
	// before it exists. Any other write takes its resource's turn: when
	// no write of this process has it, at once, and then the journal
	// entry asks for the store's turn too (beginWrite), which spares a
	// statement when no other replica's write holds it.
	takesTurn := !creates(intent)
	var end func()
	if takesTurn && key == "" {
		end = t.turns.tryTake(resource)
	}
	intent, step, turn := t.beginWrite(ctx, x, req, intent, key, turnWait(timeout)+timeout+leaseMargin, end != nil)
	t.owner.journaling.leave()
	if step == answered || step == decideAgain {
		if end != nil {
			end()
		}
		if step == decideAgain {
			if rt.dualWrite.primaryIdempotent && key == "" {
				client.Header.Del("Idempotency-Key") // ours, not the client's
			}
			t.decideAgain(x, client)
		}
		return
	}
	if step == sendUnjournaled { // keyed: no turn taken
		primary.ServeHTTP(&x.w, req)
		return
	}
	w := &pendingWrite{intent: intent, resumed: step == sendResumed, cancel: cancel}
	x.dualWrite = w
	if takesTurn {
		var err error
		if !turn {
			end, err = t.takeTurn(client.Context(), intent.ID, resource, turnWait(timeout), end)
		}
		if err != nil {
			t.settleUnsent(ctx, x)
			switch {
			case errors.Is(err, context.Canceled):
				clientLeft(x)
			case !errors.Is(err, errResourceBusy):
				t.log.Error("dual write refused: its turn could not be taken in the journal", "route", rt.name, "id", intent.ID, "error", err, "request_id", x.id)
				err = errJournal
			}
			t.writeError(&x.w, req, x, err)
			return
		}
		w.endTurn = end
		defer w.passTurn()
	}
	defer t.settleWrite(ctx, x)
	primary.ServeHTTP(&x.w, req)
}

// pendingWrite is a journaled write whose primary outcome is not yet
// recorded.
type pendingWrite struct {
	intent domain.Intent
	// resumed says the journal holds an earlier try of the write, whose
	// headers may differ from intent's.
	resumed  bool
	recorded bool
	// cancel ends the exchange with the primary.
	cancel context.CancelCauseFunc
	// endTurn, unless nil, ends the write's turn with the primary in
	// this process (takeTurn): once its outcome is recorded, or its
	// exchange ends.
	endTurn func()
}

// passTurn lets the next write to the resource go to the primary. It runs
// on the exchange's goroutine, as recordAnswer does, so at most once.
func (w *pendingWrite) passTurn() {
	if w.endTurn != nil {
		w.endTurn()
		w.endTurn = nil
	}
}

// recordAnswer records the primary's answer to a dual write before the
// client sees any of it (it runs in the reverse proxy's ModifyResponse):
// once the client learns the write succeeded, it is queued for the
// secondary, and in the order the primary answered. The start of the
// answer is read to find the new id; the rest streams on. When that start
// cannot be read (see readHead), the client gets the facade's error
// (the error returned) rather than a part of a success, and the write,
// which the primary answered 2xx, is queued without the id.
func (t *Table) recordAnswer(x *exchange, res *http.Response) error {
	rt, w := x.route, x.dualWrite
	w.recorded = true
	o := domain.Outcome{Status: res.StatusCode, Location: res.Header.Get("Location")}
	success := res.StatusCode >= 200 && res.StatusCode <= 299
	var headErr error
	if success && rt.dualWrite.idField != nil {
		var head []byte
		var whole bool
		head, whole, headErr = t.readHead(x, res)
		if headErr == nil {
			res.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(head), res.Body), res.Body}
			if whole {
				// The id is where the client reads it: in the answer
				// as its Content-Encoding decodes (the client's
				// Accept-Encoding was passed on).
				if doc, err := shadow.DecodeBody(res.Header, head, idCaptureLimit); err == nil {
					o.PrimaryID, _ = rt.dualWrite.idField.Find(doc)
				}
			}
		}
	}
	t.created(rt.pattern, w.intent, &o)
	if success && o.Resource == "" {
		// It stays its intent's resource: named, the journal need not
		// read it back (one query a PUT, PATCH or DELETE).
		o.Resource, o.ResourceView = w.intent.Resource, w.intent.ResourceView
	}
	ctx := context.WithoutCancel(res.Request.Context())
	var err error
	if w.resumed {
		err = t.journal.RecordOutcome(ctx, w.intent.ID, o)
	} else {
		err = t.journal.RecordOutcomeOf(ctx, w.intent, o)
	}
	// Recorded (or, on error, left to become unknown): the next write to
	// the resource may go to the primary; the rest of this answer may
	// stream for long.
	w.passTurn()
	if err != nil {
		t.log.Error("recording a dual write's outcome failed; it becomes unknown when its lease passes",
			"route", rt.name, "id", w.intent.ID, "status", o.Status, "error", err)
		t.metrics.DualWrite(rt.name, "unknown")
		return headErr
	}
	if !success {
		t.metrics.DualWrite(rt.name, "skipped")
		return nil
	}
	t.metrics.DualWrite(rt.name, "queued")
	return headErr
}

// errHeadStalled ends a primary's answer whose start, read for the new id,
// did not come within the backend's timeout.
var errHeadStalled = errors.New("the primary's answer stalled before its id could be read")

// readHead reads the start of a primary's answer, up to idCaptureLimit
// and one byte, for the new id; whole says it is the whole answer, in
// which the id is looked for. The head is held until the exchange ends,
// within replay_budget as a request's body is (a thousand creates
// answered with their bodies echoed would hold a MiB each past any
// bound); past the budget or idCaptureLimit no id is looked for, and the
// answer streams on whole either way.
//
// The client has nothing of the answer yet, so the backend's timeout,
// which ends at the response headers elsewhere, bounds this read too: a
// primary that sends its head and then stalls would otherwise hold the
// client, and the write's outcome, for ever. An answer that stalls (a
// wrapped context.DeadlineExceeded: 504) or breaks (502) fails.
func (t *Table) readHead(x *exchange, res *http.Response) (head []byte, whole bool, err error) {
	w := x.dualWrite
	stall := time.AfterFunc(t.upstreamOf(w.intent.Primary).Timeout(), func() { w.cancel(errHeadStalled) })
	head, err = t.budget.read(res.Body, res.ContentLength, idCaptureLimit, &x.replayHeld)
	if !stall.Stop() {
		return nil, false, fmt.Errorf("%w: %w", errHeadStalled, context.DeadlineExceeded)
	}
	switch {
	case err == nil:
		return head, true, nil
	case errors.Is(err, errReplayBudget), errors.Is(err, errBodyTooLarge), errors.Is(err, errBodyIncomplete):
		return head, false, nil
	}
	return nil, false, fmt.Errorf("reading the primary's answer for its id: %w", err)
}

// created sets in o what a create the primary answered with o made: the
// resource later writes to it wait behind, and how listings show it. A write other than a create answered 2xx
// creates nothing. It is the one rule for an answer the facade records
// and one recovery does.
func (t *Table) created(pattern string, in domain.Intent, o *domain.Outcome) {
	if !creates(in) || o.Status < 200 || o.Status > 299 {
		return
	}
	o.Resource = t.createdResource(in, *o)
	// A create that named nothing is shown as its collection.
	o.ResourceView = t.hasher.Path(pattern, strings.TrimSuffix(o.Resource, "#"+in.ID))
}

// createdResource names what a create made, so that later writes to it
// wait behind the create: the path on the facade its Location names (see
// locationPath), or its collection and the new id, in the canonical form a
// later write to it has as its key (a Location of /records/4/ or
// /records/%34 names /records/4). A create that names neither is a
// resource of its own: no later write can be known to concern it, and
// creates need not queue behind one another.
func (t *Table) createdResource(in domain.Intent, o domain.Outcome) string {
	if path, ok := t.locationPath(in, o.Location); ok {
		if key, ok := canonical.ResourceOf(path); ok {
			return key
		}
	}
	// A new id is one path segment: "." or ".." would name another
	// resource once dot segments are removed.
	if id := o.PrimaryID; id != "" && id != "." && id != ".." {
		if key, ok := canonical.ResourceOf(strings.TrimSuffix(in.Resource, "/") + "/" + url.PathEscape(id)); ok {
			return key
		}
	}
	return in.Resource + "#" + in.ID
}

// locationPath is the escaped path on the facade that a create's
// Location names, if it names one. The Location is resolved against the
// URL the primary was sent (RFC 9110 section 10.2.2: a path, or a path
// relative to the create's, is on the primary), dot segments removed; it
// names a path on the facade when it is then on the primary's host and
// port under its base path (upstream.FacadePath, the rule that turns it
// into the client's Location too), or on the host the client asked for
// (X-Forwarded-Host, from which frameworks such as Rails build their
// URLs). Anything else, another host or a path of the primary's outside
// its base, names nothing the facade serves: taken as a path, a primary's
// Location could queue the create on any resource.
func (t *Table) locationPath(in domain.Intent, loc string) (string, bool) {
	if loc == "" {
		return "", false
	}
	l, err := url.Parse(loc)
	if err != nil {
		return "", false
	}
	target, err := url.ParseRequestURI(in.Target)
	if err != nil {
		return "", false
	}
	up := t.upstreamOf(in.Primary)
	l = up.Target(target).ResolveReference(l)
	if path, ok := up.FacadePath(l); ok {
		return path, true
	}
	if public := in.Header.Get("X-Forwarded-Host"); public != "" && l.User == nil && strings.EqualFold(l.Host, public) {
		return l.EscapedPath(), true
	}
	return "", false
}

// creates reports whether the journaled write in is a create: a POST
// the backends read as one (Intent.StandsFor), whose resource is what
// its answer names. Every other write takes its resource's turn.
func creates(in domain.Intent) bool {
	return in.StandsFor == http.MethodPost
}

// settleUnsent settles a dual write the primary never got: nothing to
// copy.
func (t *Table) settleUnsent(ctx context.Context, x *exchange) {
	rt, w := x.route, x.dualWrite
	w.recorded = true
	if err := t.journal.RecordOutcome(ctx, w.intent.ID, domain.Outcome{Status: http.StatusBadGateway}); err != nil {
		t.log.Error("recording a dual write the primary never got failed", "route", rt.name, "id", w.intent.ID, "error", err)
	}
	t.metrics.DualWrite(rt.name, "skipped")
}

// settleWrite settles a dual write the primary did not answer; it runs
// deferred, so also when the client hung up.
func (t *Table) settleWrite(ctx context.Context, x *exchange) {
	rt, w := x.route, x.dualWrite
	if w.recorded {
		return
	}
	if upstream.Classify(ctx, x.answer.err).NotSent {
		t.settleUnsent(ctx, x)
		return
	}
	// The primary may or may not have applied it. Only an operator, or a
	// primary that honours Idempotency-Key, can settle that.
	t.metrics.DualWrite(rt.name, "unknown")
	if rt.dualWrite.primaryIdempotent {
		// Recovery resends it once its lease passes and records it then:
		// until then it keeps its resource's turn (takeTurn).
		if w.endTurn != nil {
			if err := t.journal.KeepTurn(ctx, w.intent.ID, w.intent.Resource); err != nil {
				t.log.Error("keeping an unanswered dual write's turn failed; a later write to its resource may reach the secondary before it", "route", rt.name, "id", w.intent.ID, "error", err)
			}
		}
		return
	}
	if err := t.journal.MarkUnknown(ctx, w.intent.ID); err != nil {
		t.log.Error("marking a dual write unknown failed; it becomes unknown when its lease passes", "route", rt.name, "id", w.intent.ID, "error", err)
	}
}
