package router

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"strangler/config"
	"strangler/shadow"
	"strangler/upstream"
)

// schemaRoute is a shadow or fallback route's schema learning: legacy's
// JSON answers are learned, modern's checked against them, at most
// schemaAnswersPerSecond a second. In shadow mode it runs in the shadow
// job, on the answers the comparison captured; in fallback mode the
// answer the client gets is captured (sampled by compare.sample, up to
// compare.max_body) and learned or checked in a bounded pool
// (compare.max_inflight), never on the request path.
type schemaRoute struct {
	learner  *shadow.SchemaLearner
	rules    *shadow.SchemaRules
	pool     *shadow.Pool
	sampler  shadow.Sampler
	maxBody  int
	captures sync.Pool
	// budget bounds the answers learned or checked each second.
	budget perSecond
}

// schemaAnswersPerSecond is how many answers a route learns from or
// checks each second at most: plenty to learn a shape, and a bound on the
// CPU parsing costs however busy the route is.
const schemaAnswersPerSecond = 20

// perSecond admits at most schemaAnswersPerSecond events in each second,
// with two atomics and no lock; a few events racing with the turn of the
// second may be admitted or refused in excess, which a bound tolerates.
type perSecond struct {
	second atomic.Int64
	used   atomic.Int64
}

func (p *perSecond) allow(now time.Time) bool {
	sec := now.Unix()
	if old := p.second.Load(); old != sec && p.second.CompareAndSwap(old, sec) {
		p.used.Store(0)
	}
	return p.used.Add(1) <= schemaAnswersPerSecond
}

func newSchemaRoute(cr *config.Route, learner *shadow.SchemaLearner) (*schemaRoute, error) {
	var c config.Compare
	if cr.Compare != nil {
		c = *cr.Compare
	}
	c = c.Effective()
	rules, err := shadow.NewSchemaRules(c)
	if err != nil {
		return nil, err
	}
	s := &schemaRoute{learner: learner, rules: rules, pool: shadow.NewPool(c.MaxInflight), sampler: shadow.NewSampler(*c.Sample), maxBody: int(c.MaxBody)}
	s.captures.New = func() any { return shadow.NewCapture(s.maxBody) }
	return s, nil
}

// schemaTimeout bounds loading a route's stored schemas.
const schemaTimeout = 5 * time.Second

// learnAndCheck learns legacy's answer to the request target (its path
// and query) and checks modern's against what legacy's answers to the
// same method with modern's status looked like; a nil answer is skipped.
// method is the one the backends read the request as (readAs): a POST
// standing for a DELETE is answered as a DELETE and learned as one
// (learned as a POST, its answer counted as POST's drift). A request
// whose overrides name several methods ("") teaches nothing. Drift is
// counted by route and kind.
func (t *Table) learnAndCheck(rt *route, method, target string, legacy, modern *shadow.Response) {
	if method == "" {
		return
	}
	sc := rt.schema
	if t.schemaStore != nil {
		ctx, cancel := context.WithTimeout(context.Background(), schemaTimeout)
		if err := sc.learner.Load(ctx, t.schemaStore, t.now()); err != nil {
			t.log.Warn("loading the learned schemas failed; they are learned again", "route", rt.name, "error", err)
		}
		cancel()
	}
	if legacy != nil {
		sc.learner.Learn(shadow.SchemaKey{Method: method, Status: legacy.Status}, shadow.Asked{Pattern: rt.pattern, Target: target}, *legacy, sc.rules)
	}
	if modern != nil {
		for _, f := range sc.learner.Check(shadow.SchemaKey{Method: method, Status: modern.Status}, *modern, sc.rules) {
			t.metrics.schemaDrift.WithLabelValues(rt.name, f.Kind).Inc()
		}
	}
}

// serveFallback serves a fallback route's request from modern or, on a
// trigger, legacy, capturing a sample of the answers for the schema.
func (t *Table) serveFallback(x *exchange, req *http.Request) {
	sc := x.route.schema
	if sc == nil || req.Method == http.MethodHead || !sc.sampler.Sample() || !sc.budget.allow(t.now()) {
		t.toModernOrLegacy.ServeHTTP(&x.w, req)
		return
	}
	capture := sc.captures.Get().(*shadow.Capture)
	capture.Reset(sc.maxBody)
	x.w.tee = capture
	completed := false
	defer func() {
		// Runs on a panic too (the client hung up mid-body).
		x.w.tee = nil
		rt, method, target, served, resp := x.route, x.standsFor, req.URL.RequestURI(), x.served, capture.Response(x.answer.status, x.answer.header)
		if !completed || resp.Status == 0 || served == nil || !sc.pool.TryGo(func() {
			t.learnFallback(rt, method, target, served, resp)
			sc.captures.Put(capture)
		}) {
			sc.captures.Put(capture)
		}
	}()
	t.toModernOrLegacy.ServeHTTP(&x.w, req)
	completed = true
}

// learnFallback learns or checks the answer a fallback route served.
func (t *Table) learnFallback(rt *route, method, target string, served *upstream.Upstream, resp shadow.Response) {
	if served == t.legacy {
		t.learnAndCheck(rt, method, target, &resp, nil)
	} else {
		t.learnAndCheck(rt, method, target, nil, &resp)
	}
}
