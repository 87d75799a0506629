package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
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
	mux    *chi.Mux
	routes map[routeKey]*route
	byName map[string]*route
	// unmatched serves requests that match no route.
	unmatched *route

	legacy, modern *upstream.Upstream
	// The three ways to forward a request: to one backend, or to modern
	// with legacy as the fallback.
	toLegacy, toModern, toModernOrLegacy *httputil.ReverseProxy

	// policy is what the edge lets through; the headers it lets through
	// with odd names are dropped when dropOddHeaders is set.
	policy         *canonical.Policy
	dropOddHeaders bool
	bodyTimeout    time.Duration

	trusted  []netip.Prefix
	metrics  *Metrics
	log      *slog.Logger
	buffers  *bufferPool
	rctxPool sync.Pool
	journal  Journal
	repairs  chan repairKey
	hasher   *phi.Hasher
	samples  shadow.SampleStore
	noise    NoiseStore
	now      func() time.Time
	tracing  *tracing
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
		mux:     chi.NewMux(),
		routes:  make(map[routeKey]*route, len(cfg.Routes)),
		byName:  make(map[string]*route, len(cfg.Routes)),
		legacy:  legacy,
		modern:  modern,
		metrics: r.deps.Metrics,
		log:     r.deps.Log,
		buffers: r.buffers,
		journal: r.deps.Journal,
		repairs: r.repairs,
		samples: r.deps.Samples,
		noise:   r.deps.Noise,
		now:     r.deps.Now,
		hasher:  r.deps.Hasher,
		schemas: r.deps.Schemas,

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
		m := cr.Match
		t.add(m.Method, m.Path, rt, explicitHead[m.Shape()])
		// Routes are matched without the trailing slash, so /files/* takes
		// /files itself, as it takes /files/ (like Envoy's
		// path_separated_prefix), unless a route claims /files.
		if prefix, ok := strings.CutSuffix(m.Path, "/*"); ok && prefix != "" {
			if p := (config.Match{Path: prefix}); !shapes[p.Shape()] {
				t.add(m.Method, prefix, rt, explicitHead[p.Shape()])
			}
		}
	}
	t.toLegacy = t.reverseProxy(legacy, passThrough{t, legacy})
	t.toModern = t.reverseProxy(modern, passThrough{t, modern})
	t.toModernOrLegacy = t.reverseProxy(modern, &fallbackTransport{t: t})
	return t, nil
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

// add routes method (every method if "") and pattern to rt.
func (t *Table) add(method, pattern string, rt *route, explicitHead bool) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if method == "" {
		t.mux.Handle(pattern, noop)
		t.routes[routeKey{"", pattern}] = rt
		return
	}
	t.mux.Method(method, pattern, noop)
	t.routes[routeKey{method, pattern}] = rt
	// Like Go's ServeMux, a GET route answers HEAD too, unless a route of
	// its own claims HEAD for the same paths.
	if method == http.MethodGet && !explicitHead {
		t.mux.Method(http.MethodHead, pattern, noop)
		t.routes[routeKey{http.MethodHead, pattern}] = rt
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
	rctx.Reset()
	find := anyMethod
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		find = method
	}
	pattern := t.mux.Find(rctx, find, key)
	if pattern == "" {
		return t.unmatched, nil
	}
	rt, ok := t.routes[routeKey{method, pattern}]
	if !ok {
		if rt, ok = t.routes[routeKey{"", pattern}]; !ok {
			return t.unmatched, nil
		}
	}
	if !rt.needsParams {
		return rt, nil
	}
	return rt, slices.Clone(rctx.URLParams.Values)
}
