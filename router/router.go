// Package router owns the route table and the route modes: it matches each
// request to a route, decides which backend serves it (legacy, modern, a
// percent split, modern with legacy as the fallback, a primary with a
// shadow copy, or a primary with a journaled dual write), forwards it, and
// counts what happened. It reaches backends only through package upstream.
package router

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"strangler/config"
	"strangler/domain"
	"strangler/edge/canonical"
	"strangler/phi"
	"strangler/shadow"
	"strangler/stats"
	"strangler/upstream"
)

// Router is the facade's request handler. It serves every request with the
// current Table and outlives configuration reloads.
type Router struct {
	table   atomic.Pointer[Table]
	deps    Deps
	buffers *bufferPool
	// budget bounds the replay buffers of every table's requests.
	budget *replayBudget

	// mu serialises Build and Swap, which share the upstream cache.
	mu sync.Mutex
	// upstreams are reused by tables whose backend config is unchanged, so
	// a reload keeps warm connection pools.
	upstreams []*upstream.Upstream
	// repairs carries read-repair keys from the request path to RunRepairs.
	repairs *repairKeys
	// sampling is held while a shadow mismatch sample is being stored
	// (keepSample).
	sampling chan struct{}
	// shadowHold says which backends asked for no shadow copies, and
	// until when; it outlives reloads: every table reads it.
	shadowHold *upstream.Holds
	// turns orders the dual writes to one resource; it outlives reloads,
	// so a write through a new table waits for one through the old.
	turns *resourceTurns
	// journaling is entered by each dual write while it checks that its
	// table still serves and journals under it, and held by HoldWrites.
	journaling writeHold
	// stale paces the log of writes served on route flags not known to be
	// current (followed).
	stale staleWrites
	// tunnels are the upgraded connections open through every table, for
	// the drain to close (CloseTunnels).
	tunnels tunnels
}

// Deps are what the router needs besides configuration.
type Deps struct {
	Metrics *Metrics
	Log     *slog.Logger
	// Journal records dual writes; without it dual-write routes are refused.
	Journal Journal
	// Samples keeps shadow mismatch samples; nil keeps them in memory.
	Samples shadow.SampleStore
	// Noise keeps learned noise fields; nil keeps them in memory only.
	Noise NoiseStore
	// Stats counts each route's traffic; nil makes fresh counters.
	Stats *stats.Counters
	// RepairKeys queues entity keys for read repair; nil turns it off.
	RepairKeys RepairKeys
	// Tracer and Propagator trace requests with OpenTelemetry; a nil
	// Tracer turns tracing off.
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
	// Hasher is the keyed hash that stands for patient data in samples and
	// in the repair queue's listings; nil draws a key for this process.
	Hasher *phi.Hasher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// StoreLead is how far the state store's clock, which the replicas
	// share, is ahead of Now (store.Store.LastClockOffset): force values
	// are issued and checked on that clock; nil means none.
	StoreLead func() time.Duration
	// Resync reads the route flags from the state store again and serves
	// them, for a dual write the journal refused as decided under flags
	// another replica changed (control.Flags.Resync); nil answers such a
	// write 503.
	Resync func(ctx context.Context)
	// Follows reports whether the route flags serving may be taken as
	// current for a write sent straight to a backend, unjournaled, having
	// read them again first when the store answers (control.Flags.Follows,
	// which bounds that wait); when not, readAt is when they were read,
	// and the write goes on them, counted and logged (followed). Nil
	// takes them as current: one process.
	Follows func(ctx context.Context) (current bool, readAt time.Time)
	// Schemas keeps the response schemas shadow and fallback routes learn
	// from legacy's answers; nil makes a fresh registry. SchemaStore, when
	// set, is where every replica's learning is loaded from.
	Schemas     *shadow.Schemas
	SchemaStore shadow.SchemaStore
}

// New returns a router that serves nothing until the first Swap.
func New(d Deps) *Router {
	if d.Samples == nil {
		d.Samples = shadow.NewMemorySamples(defaultSamplesPerRoute)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Hasher == nil {
		d.Hasher = phi.RandomHasher()
	}
	if d.Stats == nil {
		d.Stats = stats.NewCounters()
	}
	if d.Schemas == nil {
		d.Schemas = shadow.NewSchemas()
	}
	budget := &replayBudget{}
	if d.Metrics != nil {
		budget.gauge = d.Metrics.replayBuffered
	}
	return &Router{deps: d, buffers: newBufferPool(), budget: budget, repairs: &repairKeys{ch: make(chan repairKey, repairQueue)},
		sampling: make(chan struct{}, 1), shadowHold: &upstream.Holds{}, turns: newResourceTurns()}
}

// defaultSamplesPerRoute bounds the mismatch samples kept per route.
const defaultSamplesPerRoute = 100

// Build compiles cfg into a table without serving it.
func (r *Router) Build(cfg *config.Config) (*Table, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	legacy, err := r.upstream(domain.Legacy, cfg.Backends.Legacy)
	if err != nil {
		return nil, err
	}
	modern, err := r.upstream(domain.Modern, cfg.Backends.Modern)
	if err != nil {
		return nil, err
	}
	return build(cfg, r, r.table.Load(), legacy, modern)
}

// upstream returns the upstream for backend name as c configures it,
// reusing the current one when nothing changed, a CA bundle's contents
// included.
func (r *Router) upstream(name domain.Backend, c config.Upstream) (*upstream.Upstream, error) {
	uc := upstream.Config{URL: c.URL.URL, Timeout: time.Duration(c.Timeout), IdleTimeout: time.Duration(c.IdleTimeout),
		MaxConnAge: time.Duration(c.MaxConnectionAge)}
	key := fmt.Sprintf("%s %s %s %s %s", name, c.URL.String(), uc.Timeout, uc.IdleTimeout, uc.MaxConnAge)
	if t := c.TLS; t != nil {
		uc.TLS = &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
		key += " " + t.ServerName
		if t.CA != "" {
			pool, pem, err := config.LoadCA(t.CA)
			if err != nil {
				return nil, fmt.Errorf("backends.%s.tls.ca: %w", name, err)
			}
			uc.TLS.RootCAs = pool
			key += fmt.Sprintf(" %x", sha256.Sum256(pem))
		}
	}
	for _, u := range r.upstreams {
		if u.Key() == key {
			return u, nil
		}
	}
	uc.Key = key
	u := upstream.New(string(name), uc)
	r.upstreams = append(r.upstreams, u)
	return u, nil
}

// Swap makes t the table every new request uses. Requests in flight finish
// with the table they started with.
func (r *Router) Swap(t *Table) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.table.Store(t)
	r.budget.limit.Store(t.replayBudget)
	r.deps.Metrics.setModes(t)
	r.deps.Stats.Retain(t.routeNames())
	kept := r.upstreams[:0]
	for _, u := range r.upstreams {
		if u == t.legacy || u == t.modern {
			kept = append(kept, u)
		} else {
			u.CloseIdleConnections()
		}
	}
	r.upstreams = kept
}

// Apply builds the table of cfg and serves it.
func (r *Router) Apply(cfg *config.Config) error {
	t, err := r.Build(cfg)
	if err != nil {
		return err
	}
	r.Swap(t)
	return nil
}

// HoldWrites holds every dual write back from the journal until release
// is called, once those journaling now are journaled. A table swapped in
// meanwhile is the one every write journaled after serves under: one that
// began under an earlier table is routed again by the new one (reroute).
// Whoever changes where a route sends its writes checks the journal and
// swaps the table holding them (control.Flags), so that no write the check
// did not see is journaled under the old route. A write held back longer
// than its primary's timeout is refused (503, Retry-After), reaching no
// backend: the hold lasts as long as the state store takes to answer.
func (r *Router) HoldWrites() (release func()) {
	return r.journaling.hold()
}

// Current returns the table serving new requests.
func (r *Router) Current() *Table { return r.table.Load() }

// ServeHTTP routes one request.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	t := r.table.Load()
	shareTrailer(req)
	x := &exchange{id: requestID(req.Header), start: time.Now()}
	in, refusal := t.admit(req, x)
	rt := x.route
	x.w.ResponseWriter = w
	x.w.sendTimeout = t.bodyTimeout
	ctx := req.Context()
	if t.tracing != nil {
		ctx, x.span = t.startServer(req, rt)
	}
	req = req.WithContext(context.WithValue(ctx, exchangeKey{}, x))
	defer t.finish(x, req)
	switch {
	case refusal != nil:
		t.refuse(x, req, refusal)
		return
	case in.OptionsStar:
		t.answerOptions(x)
		return
	}
	x.useCanonical(req, in.Path)
	if !t.admitBody(x, w, req) || !t.checkFormOverride(x, req) {
		return
	}
	if req.Context().Err() != nil {
		// The client left, or reset its HTTP/2 stream, before any backend
		// was reached: nothing is forwarded (a dual write would otherwise
		// go on without it).
		clientLeft(x)
	}
	t.serve(x, req)
}

// reroute serves through t, the table serving now, a write that began
// under an earlier one and reached the journal only after t was swapped
// in: no backend has seen a byte of it, and its route may send writes
// elsewhere now. It is matched again and admitted as admit and
// checkFormOverride admit a request; its body is read already.
func (t *Table) reroute(x *exchange, req *http.Request) {
	// The canonical path holds %2F exactly when it was sent encoded
	// (canonical.Path.EncodedSlash).
	if err := t.admitRoute(req, x, strings.Contains(x.key, "%2F")); err != nil {
		t.refuse(x, req, err)
		return
	}
	if t.checkFormOverride(x, req) {
		t.serve(x, req)
	}
}

// serve serves an admitted request as its route's mode says.
func (t *Table) serve(x *exchange, req *http.Request) {
	rt := x.route
	if b := t.forced(x, req); b != "" {
		t.proxyTo(b).ServeHTTP(&x.w, req)
		return
	}
	if rt.mode != domain.ModeDualWrite && !isSafe(req.Method) && !t.followed(x, req) {
		return
	}
	switch rt.mode {
	case domain.ModeModern:
		if rt.toModern(req) {
			t.toModern.ServeHTTP(&x.w, req)
			return
		}
	case domain.ModeFallback:
		if rt.toModern(req) {
			if !t.decideReplay(x, req) {
				return
			}
			t.serveFallback(x, req)
			return
		}
	case domain.ModeShadow:
		t.serveShadow(x, req)
		return
	case domain.ModeDualWrite:
		t.serveDualWrite(x, req)
		return
	}
	t.toLegacy.ServeHTTP(&x.w, req)
}

// proxyTo is the pass-through proxy of backend b.
func (t *Table) proxyTo(b domain.Backend) http.Handler {
	if b == domain.Modern {
		return t.toModern
	}
	return t.toLegacy
}

// clientLeft ends an exchange whose client left before any answer began:
// it is counted as 499 and the connection (or HTTP/2 stream) is cut.
// Returning instead would let net/http complete the exchange with an
// empty 200 that no backend gave, which a client that had only
// half-closed its side would read as the answer (found by the red team).
func clientLeft(x *exchange) {
	x.clientGone = true
	panic(http.ErrAbortHandler)
}

// bufferForReplay reads a body that may have to be sent twice, up to the
// route's max_replay_body and within replay_budget (readReplay). A larger
// one (413), one the budget has no room for (503), or one that cannot be
// read whole (400: broken chunked encoding, an early end; 408:
// body_timeout; 413: max_body), is refused before any backend sees a
// byte of it; a shadow route's too large or over the budget goes to its
// primary alone, with no copy (x.noCopy). It reports whether to go on.
//
// Trailer fields (a checksum or a signature after the body) must not be
// lost silently. The journal and a fallback's replay carry the body alone,
// so a dual-write or fallback route refuses them (400), before any backend
// sees a byte; a shadow route sends the request, trailer fields and all,
// to its primary alone, and serveShadow skips the copy.
func (t *Table) bufferForReplay(x *exchange, req *http.Request) bool {
	if x.replay != nil {
		return true // read already, for a form's _method (checkFormOverride)
	}
	keepTrailer := x.route.mode == domain.ModeShadow
	// Refused before a byte of the body is read: a client that sent
	// Expect: 100-continue is spared sending it (RFC 9110 section
	// 10.1.1), as net/http sends 100 only once the body is read.
	switch {
	case req.ContentLength > x.route.maxReplayBody && keepTrailer:
		// A shadow route's client never pays for the copy: its body goes
		// to the primary unread, and no copy is sent. It got 413 here,
		// and was served when the budget happened to be full (found by
		// the red team).
		x.noCopy = true
		return true
	case req.ContentLength > x.route.maxReplayBody:
		t.refuse(x, req, errBodyTooLarge)
		return false
	case len(req.Trailer) > 0 && !keepTrailer: // declared in a Trailer header
		t.refuse(x, req, errTrailerNotReplayed)
		return false
	}
	body, err := t.readReplay(x, req)
	switch {
	case (err == errReplayBudget || err == errBodyTooLarge) && keepTrailer:
		// Nor when the budget has no room for the copy's body, or the
		// body turns out too large for one: its request goes on to the
		// primary, the bytes read first and the rest still unread.
		t.budget.give(x.replayHeld)
		x.replayHeld, x.noCopy = 0, true
		req.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), req.Body), req.Body}
		return true
	case err != nil:
		t.refuse(x, req, err)
		return false
	case len(req.Trailer) > 0 && !keepTrailer: // sent without a declaration
		t.refuse(x, req, errTrailerNotReplayed)
		return false
	}
	x.replay = body
	req.Body = upstream.Held(body)
	if len(req.Trailer) > 0 {
		// Only chunked encoding carries trailer fields.
		req.ContentLength, req.TransferEncoding = -1, []string{"chunked"}
		return true
	}
	req.ContentLength = int64(len(body))
	req.TransferEncoding = nil
	return true
}

// finish counts the exchange the client saw.
func (t *Table) finish(x *exchange, req *http.Request) {
	x.w.ended()
	x.body.end()
	t.budget.give(x.replayHeld)
	backend, served := "none", ""
	if x.served != nil {
		backend, served = x.served.Name, x.served.Name
	}
	code := x.w.status
	if x.clientGone || code == 0 {
		code = codeClientLeft
	}
	took := time.Since(x.start)
	if x.switched > 0 {
		took = x.switched
	}
	t.metrics.exchange(x.route, backend, code, took)
	x.endServer()
	rt := x.route
	if x.forced != "" {
		// A tester's request is no evidence: it moves neither the gates,
		// the guard nor the report.
		return
	}
	if x.fellBack && served != "" {
		// Legacy answering what modern failed is no traffic legacy
		// serves on its own: the verdict tells the two apart.
		served = "fallback"
	}
	// Counts are of when an outcome was known, not when the request
	// began: a guard's window shorter than modern's timeout would never
	// see a timeout otherwise.
	now := time.Now()
	rt.stats.Request(now, served, req)
	// Modern's answer the client got counts here, once its body has
	// ended: an answer that broke off is a failure whatever its status
	// said. The fallback transport counts the attempts that fell back.
	switch {
	case served != "modern":
	case code != codeClientLeft:
		rt.stats.ModernAnswered(now, code >= 500 || x.broken)
	case x.gaveUpOnModern(now):
		rt.stats.ModernAnswered(now, true)
	default:
		// Modern answered no one: no request served toward retiring
		// legacy, whatever the reason its client left.
		rt.stats.ModernUnanswered()
	}
}

// gaveUpShare is the share of modern's timeout (1/gaveUpShare) a client
// must have waited for modern's answer before its leaving counts as
// modern failing: a quarter, so that a backend timeout of 30 s sees
// mobile clients that give up after 10 to 15 s.
const gaveUpShare = 4

// gaveUpOnModern reports whether a client that left at now gave up on
// modern: modern had had the whole request (no body, or its end read)
// for at least a quarter of its timeout and had not begun its answer.
// Such a client counts as modern failing, for the guard and the verdict
// alike: counted as a plain 499, a modern that hung while every client
// gave up before its timeout was never rolled back (Envoy's outlier
// detection counts such local-origin timeouts too). One that left
// sooner, or while still sending its body, is no evidence against
// modern: a hostile client that connects and leaves at once, or sends
// slowly, must not roll a route back; to make its leaving count it must
// wait as long as any client modern is too slow for.
func (x *exchange) gaveUpOnModern(now time.Time) bool {
	if !x.clientGone || x.answer.status != 0 || x.served == nil {
		return false
	}
	from := x.start
	if x.body.body != nil {
		end, whole := x.body.readWhole()
		if !whole {
			return false
		}
		from = end
	}
	timeout := x.served.Timeout()
	return timeout > 0 && now.Sub(from) >= timeout/gaveUpShare
}

// Backend is the current upstream of backend b.
func (r *Router) Backend(b domain.Backend) *upstream.Upstream {
	return r.table.Load().upstreamOf(b)
}

// Template is the path template route matches in the current table, ""
// if there is no such route.
func (r *Router) Template(route string) string {
	if rt, ok := r.table.Load().byName[route]; ok {
		return rt.pattern
	}
	return ""
}

// Created sets in o, the answer of a primary to a journaled write of
// route resent by recovery, what a create made, by the rule the facade
// follows when it records an answer itself (Table.created).
func (r *Router) Created(route string, w domain.Repair, o *domain.Outcome) {
	t := r.table.Load()
	target, err := url.ParseRequestURI(w.Target)
	if err != nil {
		return
	}
	in := domain.Intent{ID: w.ID, Route: route, Method: w.Method, StandsFor: w.StandsFor, Target: w.Target, Header: w.Header, Primary: w.Primary,
		Resource: canonical.Resource(target.EscapedPath())}
	pattern := ""
	if rt, ok := t.byName[route]; ok {
		pattern = rt.pattern
	}
	t.created(pattern, in, o)
}

// DualWrite is the route's id_field and primary_idempotent in the current
// table, and whether the route exists.
func (r *Router) DualWrite(route string) (domain.FieldPath, bool, bool) {
	rt, ok := r.table.Load().byName[route]
	if !ok {
		return nil, false, false
	}
	return rt.dualWrite.idField, rt.dualWrite.primaryIdempotent, true
}
