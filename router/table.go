package router

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"

	"github.com/go-chi/chi/v5"

	"strangler/config"
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

	trusted  []netip.Prefix
	metrics  *Metrics
	log      *slog.Logger
	buffers  *bufferPool
	rctxPool sync.Pool
}

type routeKey struct{ method, pattern string }

// build compiles cfg into a table. cfg must come from config.Load, which
// has validated it; an error here means a bug, reported rather than served.
func build(cfg *config.Config, r *Router, legacy, modern *upstream.Upstream) (t *Table, err error) {
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
		metrics: r.metrics,
		log:     r.log,
		buffers: r.buffers,
	}
	t.rctxPool.New = func() any { return chi.NewRouteContext() }
	for _, p := range cfg.TrustedProxies {
		t.trusted = append(t.trusted, p.Prefix)
	}
	t.unmatched = &route{
		name:          "default",
		mode:          config.ModeLegacy,
		percent:       fullPercent,
		debugHeaders:  cfg.DebugHeaders,
		maxReplayBody: int64(cfg.MaxReplayBody),
	}
	if cfg.Default == config.Modern {
		t.unmatched.mode = config.ModeModern
	}
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	explicitHead := map[string]bool{}
	for _, r := range cfg.Routes {
		if r.Match.Method == http.MethodHead {
			explicitHead[r.Match.Shape()] = true
		}
	}
	for i := range cfg.Routes {
		cr := &cfg.Routes[i]
		rt := newRoute(cfg, cr)
		t.byName[rt.name] = rt
		m := cr.Match
		if m.Method == "" {
			t.mux.Handle(m.Path, noop)
			t.routes[routeKey{"", m.Path}] = rt
			continue
		}
		t.mux.Method(m.Method, m.Path, noop)
		t.routes[routeKey{m.Method, m.Path}] = rt
		// Like Go's ServeMux, a GET route answers HEAD too, unless a route
		// of its own claims HEAD for the same paths.
		if m.Method == http.MethodGet && !explicitHead[m.Shape()] {
			t.mux.Method(http.MethodHead, m.Path, noop)
			t.routes[routeKey{http.MethodHead, m.Path}] = rt
		}
	}
	t.toLegacy = t.reverseProxy(legacy, legacy)
	t.toModern = t.reverseProxy(modern, modern)
	t.toModernOrLegacy = t.reverseProxy(modern, &fallbackTransport{t: t})
	return t, nil
}

// match finds the route for a request, or the unmatched route.
func (t *Table) match(r *http.Request) *route {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	rctx := t.rctxPool.Get().(*chi.Context)
	rctx.Reset()
	pattern := t.mux.Find(rctx, r.Method, path)
	t.rctxPool.Put(rctx)
	if pattern == "" {
		return t.unmatched
	}
	if rt, ok := t.routes[routeKey{r.Method, pattern}]; ok {
		return rt
	}
	if rt, ok := t.routes[routeKey{"", pattern}]; ok {
		return rt
	}
	return t.unmatched
}
