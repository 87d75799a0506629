package router

import (
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"slices"

	"strangler/config"
	"strangler/domain"
	"strangler/stats"
)

// route is one configured route, compiled for the request path.
type route struct {
	name string
	// pattern is the path template the route matches ("/patients/{id}"),
	// http.route in spans and what samples and the repair queue's listings
	// show, parameters hashed; "" for requests no route matched.
	pattern string
	mode    domain.Mode
	// percent is the share of requests sent to modern, in basis points.
	percent int
	sticky  config.Sticky
	// triggers are the fallback_on reasons that make a fallback happen.
	triggers        triggerSet
	fallbackMethods []string
	debugHeaders    bool
	maxReplayBody   int64
	// maxBody caps the request body (0: unlimited).
	maxBody int64
	// allowEncodedSlash lets %2F through inside the route's parameters.
	allowEncodedSlash bool
	logPath           bool
	// primary answers the client in shadow and dual-write modes.
	primary domain.Backend
	// needsParams is set when the path parameters' values are kept for the
	// request: read repair keys an entity by one of them.
	needsParams bool
	shadow      *shadowRoute
	// schema learns legacy's answers and checks modern's, in shadow and
	// fallback modes; nil in the others.
	schema    *schemaRoute
	dualWrite dualWriteRoute
	// stats counts the route's traffic for the guard, gates and report.
	stats *stats.Route
	// repairEntity, when set, queues the key of a not_found fallback for
	// the backfill; repairParam is the key's index among the parameters.
	repairEntity string
	repairParam  int
	// series are the route's handles on its metric series.
	series routeSeries
}

const fullPercent = domain.PercentSlots

func newRoute(c *config.Config, r *config.Route) *route {
	rt := &route{
		name:              r.Name,
		pattern:           r.Match.Path,
		mode:              r.Mode,
		percent:           fullPercent,
		sticky:            r.Sticky,
		triggers:          newTriggerSet(r.FallbackOn),
		debugHeaders:      c.DebugHeadersFor(r),
		maxReplayBody:     c.ReplayLimit(r),
		maxBody:           c.BodyLimit(r),
		allowEncodedSlash: r.AllowEncodedSlash,
		logPath:           r.LogPath,
		fallbackMethods:   make([]string, len(r.FallbackMethods)),
		primary:           r.PrimaryBackend(),
		needsParams:       r.ReadRepair,
		dualWrite:         newDualWriteRoute(r),
	}
	for i, m := range r.FallbackMethods {
		rt.fallbackMethods[i] = string(m)
	}
	if r.Percent != nil {
		rt.percent = domain.PercentInSlots(float64(*r.Percent))
	}
	if r.ReadRepair {
		rt.repairEntity = r.Entity
		rt.repairParam = slices.Index(r.Match.Params(), r.EntityParam())
	}
	return rt
}

// toModern decides whether this request goes to modern under the route's
// percent. With a sticky key the same client always lands on the same side,
// and raising the percent only ever moves clients from legacy to modern.
func (rt *route) toModern(r *http.Request) bool {
	switch rt.percent {
	case fullPercent:
		return true
	case 0:
		return false
	}
	if key := rt.stickyKey(r); key != "" {
		return bucket(rt.name, key) < rt.percent
	}
	return rand.IntN(fullPercent) < rt.percent
}

func (rt *route) stickyKey(r *http.Request) string { return partOf(r, rt.sticky) }

// partOf is the value of the header or cookie p names in r, "" if r has
// none.
func partOf(r *http.Request, p config.Sticky) string {
	switch {
	case p.Header != "":
		return r.Header.Get(p.Header)
	case p.Cookie != "":
		if c, err := r.Cookie(p.Cookie); err == nil {
			return c.Value
		}
	}
	return ""
}

// bucket maps a client key to 0…9999, stable across restarts and replicas
// and independent per route (like a feature-flag salt).
func bucket(routeName, key string) int {
	h := fnv.New64a()
	h.Write([]byte(routeName))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return int(mix64(h.Sum64()) % fullPercent)
}

// mix64 is the murmur3 finalizer: FNV alone leaves the low bits of similar
// keys (user-1, user-2, …) correlated.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// replayable reports whether a request with this method may be sent to
// legacy after modern received it: idempotent methods, and those the route
// lists in fallback_methods.
func (rt *route) replayable(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return slices.Contains(rt.fallbackMethods, method)
}

// triggerSet is a route's fallback_on as bits.
type triggerSet uint8

const (
	onNotFound triggerSet = 1 << iota
	onServerError
	onTimeout
	onError
)

func newTriggerSet(ts []config.Trigger) triggerSet {
	var s triggerSet
	for _, t := range ts {
		switch t {
		case config.TriggerNotFound:
			s |= onNotFound
		case config.TriggerServerError:
			s |= onServerError
		case config.TriggerTimeout:
			s |= onTimeout
		case config.TriggerError:
			s |= onError
		}
	}
	return s
}
