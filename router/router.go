// Package router owns the route table and the route modes: it matches each
// request to a route, decides which backend serves it (legacy, modern, a
// percent split, or modern with legacy as the fallback), forwards it, and
// counts what happened. It reaches backends only through package upstream.
package router

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"strangler/config"
	"strangler/upstream"
)

// Router is the facade's request handler. It serves every request with the
// current Table and outlives configuration reloads.
type Router struct {
	table   atomic.Pointer[Table]
	metrics *Metrics
	log     *slog.Logger
	buffers *bufferPool

	// mu serialises Build and Swap, which share the upstream cache.
	mu sync.Mutex
	// upstreams are reused by tables whose backend config is unchanged, so
	// a reload keeps warm connection pools.
	upstreams []*upstream.Upstream
}

// New returns a router that serves nothing until the first Swap.
func New(m *Metrics, log *slog.Logger) *Router {
	return &Router{metrics: m, log: log, buffers: newBufferPool()}
}

// Build compiles cfg into a table without serving it.
func (r *Router) Build(cfg *config.Config) (*Table, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return build(cfg, r, r.upstream(config.Legacy, cfg.Backends.Legacy), r.upstream(config.Modern, cfg.Backends.Modern))
}

func (r *Router) upstream(name config.Backend, c config.Upstream) *upstream.Upstream {
	for _, u := range r.upstreams {
		if u.Name == string(name) && u.Equal(c.URL.URL, time.Duration(c.Timeout)) {
			return u
		}
	}
	u := upstream.New(string(name), c.URL.URL, time.Duration(c.Timeout))
	r.upstreams = append(r.upstreams, u)
	return u
}

// Swap makes t the table every new request uses. Requests in flight finish
// with the table they started with.
func (r *Router) Swap(t *Table) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.table.Store(t)
	r.metrics.setModes(t)
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

// ServeHTTP routes one request.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	t := r.table.Load()
	rt := t.match(req)
	x := &exchange{route: rt, id: requestID(req.Header), start: time.Now()}
	x.w.ResponseWriter = w
	req = req.WithContext(context.WithValue(req.Context(), exchangeKey{}, x))
	defer t.finish(x)

	proxy := t.toLegacy
	switch rt.mode {
	case config.ModeModern:
		if rt.toModern(req) {
			proxy = t.toModern
		}
	case config.ModeFallback:
		if rt.toModern(req) {
			proxy = t.toModernOrLegacy
			if rt.replayable(req.Method) && req.ContentLength != 0 && !t.bufferForReplay(x, req) {
				return
			}
		}
	}
	proxy.ServeHTTP(&x.w, req)
}

// bufferForReplay reads a body that may have to be sent to both backends,
// up to the route's max_replay_body; a larger one is refused with 413
// before any backend sees it. It reports whether to go on.
func (t *Table) bufferForReplay(x *exchange, req *http.Request) bool {
	body, err := io.ReadAll(io.LimitReader(req.Body, x.route.maxReplayBody+1))
	switch {
	case err != nil:
		x.clientGone = true
		return false
	case int64(len(body)) > x.route.maxReplayBody:
		t.writeError(&x.w, req, x, errBodyTooLarge)
		return false
	}
	x.replay = body
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.TransferEncoding = nil
	return true
}

// finish counts the exchange the client saw.
func (t *Table) finish(x *exchange) {
	backend := "none"
	if x.served != nil {
		backend = x.served.Name
	}
	code := x.w.status
	if x.clientGone || code == 0 {
		code = statusClientClosed
	}
	t.metrics.exchange(x.route.name, backend, code, time.Since(x.start))
}
