package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"strangler/config"
	"strangler/domain"
	"strangler/edge/canonical"
	"strangler/force"
	"strangler/phi"
	"strangler/shadow"
	"strangler/upstream"
)

// Table is an immutable route table built whole from one configuration.
// A reload builds a new table and swaps it in; a request uses the table it
// started with for its whole life.
type Table struct {
	// exact matches canonical paths; folded matches them folded
	// (canonical.Fold), to find the paths a loose backend would give
	// another route than the facade does.
	exact, folded routeSet
	// foldAll: some pattern changes when folded, so every path is looked
	// up folded too, not only those that change.
	foldAll bool
	// foldsOnto maps a route whose folded pattern another route took
	// first to that route: a path spelled as the route's own pattern
	// bypasses nothing, as the operator declared that spelling.
	foldsOnto map[*route]*route
	byName    map[string]*route
	// unmatched serves requests that match no route.
	unmatched *route

	legacy, modern *upstream.Upstream
	// The three ways to forward a request: to one backend, or to modern
	// with legacy as the fallback.
	toLegacy, toModern, toModernOrLegacy *forwarder

	// policy is what the edge lets through; the headers it lets through
	// with odd names are dropped when dropOddHeaders is set.
	policy         *canonical.Policy
	dropOddHeaders bool
	bodyTimeout    time.Duration
	// budget is the router's, shared by every table; replayBudget is the
	// limit this table sets on it when swapped in.
	budget       *replayBudget
	replayBudget int64
	// turns is the router's: one write at a time per resource is with
	// the primary.
	turns *resourceTurns
	// owner is the router the table was built for: a dual write learns
	// there whether its table still serves (serveDualWrite).
	owner *Router
	// idempotencyScope names the request parts that scope a client's
	// Idempotency-Key.
	idempotencyScope []config.Credential

	trusted    []netip.Prefix
	metrics    *Metrics
	log        *slog.Logger
	buffers    *bufferPool
	rctxPool   sync.Pool
	journal    Journal
	repairs    *repairKeys
	sampling   chan struct{}
	shadowHold *upstream.Holds
	hasher     *phi.Hasher
	samples    shadow.SampleStore
	noise      NoiseStore
	now        func() time.Time
	storeLead  func() time.Duration
	tracing    *tracing
	// force verifies X-Strangler-Force values; nil when force_token_key
	// is not set, which turns them off.
	force *force.Key
	// schemas are the routes' learned response schemas; schemaStore,
	// when set, holds what every replica learned.
	schemas     *shadow.Schemas
	schemaStore shadow.SchemaStore
}

// NoiseStore keeps the fields shadow comparisons learned as noise, so a
// restart or a reload does not forget them.
type NoiseStore interface {
	AddNoise(ctx context.Context, route, path string) error
	Noise(ctx context.Context, route string) ([]domain.NoiseField, error)
}

type routeKey struct{ method, pattern string }

// routeSet is a set of route patterns and the route each pattern serves.
type routeSet struct {
	mux    *chi.Mux
	routes map[routeKey]*route
}

func newRouteSet(n int) routeSet {
	return routeSet{mux: chi.NewMux(), routes: make(map[routeKey]*route, n)}
}

// build compiles cfg into a table. cfg must come from configfile.Load, which
// has validated it; an error here means a bug, reported rather than served.
func build(cfg *config.Config, r *Router, prev *Table, legacy, modern *upstream.Upstream) (t *Table, err error) {
	defer func() {
		// chi panics on patterns it cannot route; config validation mirrors
		// its rules, so this is a safety net, not a code path.
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("router: %v", p)
		}
	}()
	t = &Table{
		exact:      newRouteSet(len(cfg.Routes)),
		folded:     newRouteSet(len(cfg.Routes)),
		byName:     make(map[string]*route, len(cfg.Routes)),
		legacy:     legacy,
		modern:     modern,
		metrics:    r.deps.Metrics,
		log:        r.deps.Log,
		buffers:    r.buffers,
		budget:     r.budget,
		turns:      r.turns,
		owner:      r,
		journal:    r.deps.Journal,
		repairs:    r.repairs,
		samples:    r.deps.Samples,
		sampling:   r.sampling,
		shadowHold: r.shadowHold,
		noise:      r.deps.Noise,
		now:        r.deps.Now,
		storeLead:  r.deps.StoreLead,
		hasher:     r.deps.Hasher,
		schemas:    r.deps.Schemas,

		schemaStore: r.deps.SchemaStore,
	}
	if r.deps.Tracer != nil {
		t.tracing = &tracing{tracer: r.deps.Tracer, propagator: r.deps.Propagator}
	}
	if key, ok := cfg.ForceKey(); ok {
		t.force = force.NewKey(key)
	}
	t.rctxPool.New = func() any { return chi.NewRouteContext() }
	extra := make([]string, len(cfg.AllowMethods))
	for i, m := range cfg.AllowMethods {
		extra[i] = string(m)
	}
	t.policy = canonical.NewPolicy(extra, cfg.HeadersWithUnderscores == config.HeadersReject)
	t.dropOddHeaders = cfg.HeadersWithUnderscores == config.HeadersDrop
	t.bodyTimeout = time.Duration(cfg.BodyTimeout)
	t.replayBudget = int64(cfg.ReplayBudget)
	t.idempotencyScope = cfg.IdempotencyScope
	for _, p := range cfg.TrustedProxies {
		t.trusted = append(t.trusted, p.Prefix)
	}
	t.unmatched = &route{
		name:          "default",
		mode:          domain.ModeLegacy,
		percent:       fullPercent,
		debugHeaders:  cfg.DebugHeaders,
		maxReplayBody: int64(cfg.MaxReplayBody),
		maxBody:       int64(cfg.MaxBody),
	}
	if cfg.Default == domain.Modern {
		t.unmatched.mode = domain.ModeModern
	}
	t.unmatched.stats = r.deps.Stats.Route(t.unmatched.name)
	explicitHead, shapes := map[string]bool{}, map[string]bool{}
	for _, r := range cfg.Routes {
		if r.Match.Method == http.MethodHead {
			explicitHead[r.Match.Shape()] = true
		}
		shapes[r.Match.Shape()] = true
	}
	for i := range cfg.Routes {
		cr := &cfg.Routes[i]
		rt := newRoute(cfg, cr)
		rt.stats = r.deps.Stats.Route(rt.name)
		if err := t.prepareMode(rt, cr, prev); err != nil {
			return nil, fmt.Errorf("route %s: %w", cr.Name, err)
		}
		t.byName[rt.name] = rt
		t.exact.addRoute(cr.Match, rt, explicitHead, shapes)
	}
	t.addFolded(cfg)
	t.toLegacy = &forwarder{t, legacy, passThrough{t, legacy}}
	t.toModern = &forwarder{t, modern, passThrough{t, modern}}
	t.toModernOrLegacy = &forwarder{t, modern, &fallbackTransport{t: t}}
	return t, nil
}

// routeNames names the routes t counts, the unmatched requests' included.
func (t *Table) routeNames() []string {
	names := make([]string, 0, len(t.byName)+1)
	names = append(names, t.unmatched.name)
	for name := range t.byName {
		names = append(names, name)
	}
	return names
}

// prepareMode builds what the route's mode needs besides its settings.
func (t *Table) prepareMode(rt *route, cr *config.Route, prev *Table) error {
	switch rt.mode {
	case domain.ModeDualWrite:
		if t.journal == nil {
			return errors.New("dual-write needs a state store to journal writes in")
		}
	case domain.ModeFallback:
		sc, err := newSchemaRoute(cr, t.schemas.Route(rt.name))
		if err != nil {
			return err
		}
		rt.schema = sc
	case domain.ModeShadow:
		sc, err := newSchemaRoute(cr, t.schemas.Route(rt.name))
		if err != nil {
			return err
		}
		rt.schema = sc
		var old *shadowRoute
		if prev != nil {
			if p, ok := prev.byName[rt.name]; ok {
				old = p.shadow
			}
		}
		sh, err := newShadowRoute(cr, old, t.hasher)
		if err != nil {
			return err
		}
		if sh != old {
			t.preloadNoise(rt.name, sh)
		}
		rt.shadow = sh
	}
	return nil
}

// upstreamOf is backend b's upstream.
func (t *Table) upstreamOf(b domain.Backend) *upstream.Upstream {
	if b == domain.Modern {
		return t.modern
	}
	return t.legacy
}

// addFolded adds the routes' folded patterns to t.folded: one route per
// folded method and shape, the first, so that two routes only case tells
// apart (/Records, /records) cannot clash; the others fold onto it.
func (t *Table) addFolded(cfg *config.Config) {
	explicitHead, shapes, added := map[string]bool{}, map[string]bool{}, map[string]*route{}
	t.foldsOnto = map[*route]*route{}
	for _, r := range cfg.Routes {
		m := r.Match.Folded()
		if m.Method == http.MethodHead {
			explicitHead[m.Shape()] = true
		}
		shapes[m.Shape()] = true
	}
	for _, r := range cfg.Routes {
		m := r.Match.Folded()
		t.foldAll = t.foldAll || m.Path != r.Match.Path
		rt := t.byName[r.Name]
		key := m.Method + " " + m.Shape()
		if first, ok := added[key]; ok {
			t.foldsOnto[rt] = first
			continue
		}
		added[key] = rt
		t.folded.addRoute(m, rt, explicitHead, shapes)
	}
}

// addRoute adds the patterns of m to rs, for rt.
func (rs routeSet) addRoute(m config.Match, rt *route, explicitHead, shapes map[string]bool) {
	rs.add(m.Method, m.Path, rt, explicitHead[m.Shape()])
	// Routes are matched without the trailing slash, so /files/* takes
	// /files itself, as it takes /files/ (like Envoy's
	// path_separated_prefix), unless a route claims /files.
	if prefix, ok := strings.CutSuffix(m.Path, "/*"); ok && prefix != "" {
		if p := (config.Match{Path: prefix}); !shapes[p.Shape()] {
			rs.add(m.Method, prefix, rt, explicitHead[p.Shape()])
		}
	}
}

// add routes method (every method if "") and pattern to rt.
func (rs routeSet) add(method, pattern string, rt *route, explicitHead bool) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if method == "" {
		rs.mux.Handle(pattern, noop)
		rs.routes[routeKey{"", pattern}] = rt
		return
	}
	rs.mux.Method(method, pattern, noop)
	rs.routes[routeKey{method, pattern}] = rt
	// Like Go's ServeMux, a GET route answers HEAD too, unless a route of
	// its own claims HEAD for the same paths.
	if method == http.MethodGet && !explicitHead {
		rs.mux.Method(http.MethodHead, pattern, noop)
		rs.routes[routeKey{http.MethodHead, pattern}] = rt
	}
}

// anyMethod stands in for a method chi does not know (one from
// allow_methods): no route names CONNECT, which the configuration refuses,
// so chi then finds only the routes for every method.
const anyMethod = http.MethodConnect

// match finds the route for a method and route key (the canonical path
// without its trailing slash), or the unmatched route, and the values of
// its path parameters, still percent-encoded, when the route needs them.
func (t *Table) match(method, key string) (*route, []string) {
	rctx := t.rctxPool.Get().(*chi.Context)
	defer t.rctxPool.Put(rctx)
	rt := t.exact.find(rctx, method, key)
	if rt == nil {
		return t.unmatched, nil
	}
	if !rt.needsParams {
		return rt, nil
	}
	return rt, slices.Clone(rctx.URLParams.Values)
}

// loosePath is a route key and, once asked for, its folded form
// (canonical.Fold), which costs a pass over the path: a request's checks
// fold it once.
type loosePath struct {
	key    string
	folded string
	err    error
	done   bool
}

func (p *loosePath) fold() (string, error) {
	if !p.done {
		p.folded, p.err = canonical.Fold(p.key)
		p.done = true
	}
	return p.folded, p.err
}

// matchFolded finds the route a backend reading paths loosely
// (canonical.Fold) would give the request, and reports whether it is
// another than rt, the route the facade gave it: the route the path
// would bypass. A path whose folded form no route takes bypasses none.
func (t *Table) matchFolded(method string, p *loosePath, rt *route) (*route, error) {
	folded, err := p.fold()
	if err != nil || folded == p.key && !t.foldAll {
		return nil, err
	}
	rctx := t.rctxPool.Get().(*chi.Context)
	defer t.rctxPool.Put(rctx)
	if other := t.folded.find(rctx, method, folded); other != nil && other != rt && t.foldsOnto[rt] != other {
		return other, nil
	}
	return nil, nil
}

// otherRoute is the route other than rt that a request of method on path
// p reaches, as sent or as a backend reading paths loosely reads it; nil
// if there is none.
func (t *Table) otherRoute(method string, p *loosePath, rt *route) (*route, error) {
	if other, _ := t.match(method, p.key); other != rt && !rt.sameAs(other) {
		return other, nil
	}
	other, err := t.matchFolded(method, p, rt)
	if other != nil && rt.sameAs(other) {
		return nil, err
	}
	return other, err
}

// sameAs reports whether routes rt and other pass every request through
// untouched to one and the same backend (legacy mode, modern mode at 0% or
// 100%, the default route): a request one takes for the other's method
// reaches what it would have reached, and bypasses nothing. Without it a
// POST with a JSON body on a legacy route was read whole, to look for a
// _method naming a method of the default route, which sends to legacy too.
func (rt *route) sameAs(other *route) bool {
	only := func(r *route) domain.Backend {
		switch {
		case r.mode == domain.ModeLegacy, r.mode == domain.ModeModern && r.percent == 0:
			return domain.Legacy
		case r.mode == domain.ModeModern && r.percent == fullPercent:
			return domain.Modern
		}
		return ""
	}
	b := only(rt)
	return b != "" && b == only(other)
}

// find returns the route rs gives a method and route key, nil if none,
// with its parameters in rctx.
func (rs routeSet) find(rctx *chi.Context, method, key string) *route {
	rctx.Reset()
	find := anyMethod
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		find = method
	}
	pattern := rs.mux.Find(rctx, find, key)
	if pattern == "" {
		return nil
	}
	if rt, ok := rs.routes[routeKey{method, pattern}]; ok {
		return rt
	}
	return rs.routes[routeKey{"", pattern}]
}
