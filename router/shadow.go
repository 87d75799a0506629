package router

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/phi"
	"strangler/shadow"
	"strangler/upstream"
)

// shadowRoute is a shadow route's comparison state. A reload that leaves
// the route's compare section as it was keeps it, so learned noise and the
// bound on shadow calls carry over.
type shadowRoute struct {
	compare  config.Compare
	comparer *shadow.Comparer
	pool     *shadow.Pool
	sampler  shadow.Sampler
	// noise picks the shadowed requests also sent a second time to the
	// primary to learn noisy fields; nil when compare.noise is off.
	noise    *shadow.Sampler
	writes   bool
	captures sync.Pool
	waiters  sync.Pool
}

// noiseShare is the share of shadowed requests sent twice to the primary
// when compare.noise is on: enough to learn a noisy field within a few
// dozen requests, at a tenth of the extra load Diffy's always-twice costs.
const noiseShare = 0.1

func newShadowRoute(r *config.Route, prev *shadowRoute, h *phi.Hasher) (*shadowRoute, error) {
	var c config.Compare
	if r.Compare != nil {
		c = *r.Compare
	}
	c = c.Effective()
	if prev != nil && reflect.DeepEqual(prev.compare, c) && prev.writes == r.ShadowWrites {
		return prev, nil
	}
	cmp, err := shadow.NewComparer(c, h)
	if err != nil {
		return nil, err
	}
	s := &shadowRoute{
		compare:  c,
		comparer: cmp,
		pool:     shadow.NewPool(c.MaxInflight),
		sampler:  shadow.NewSampler(*c.Sample),
		writes:   r.ShadowWrites,
	}
	if c.Noise {
		n := shadow.NewSampler(noiseShare)
		s.noise = &n
	}
	maxBody := int(c.MaxBody)
	s.captures.New = func() any { return shadow.NewCapture(maxBody) }
	s.waiters.New = newWaiter
	return s, nil
}

func (s *shadowRoute) capture() *shadow.Capture {
	c := s.captures.Get().(*shadow.Capture)
	c.Reset(int(s.compare.MaxBody))
	return c
}

// serveShadow serves the client from the route's primary, exactly as a
// plain proxy would, while a copy of the request goes to the other backend
// from the route's bounded pool. Nothing the copy does (its latency, its
// failure, a full pool) can change or delay what the client gets.
func (t *Table) serveShadow(x *exchange, req *http.Request) {
	rt := x.route
	sh := rt.shadow
	primary := t.proxyTo(rt.primary)
	if !sh.writes && !isSafe(req.Method) || !sh.sampler.Sample() {
		primary.ServeHTTP(&x.w, req)
		return
	}
	other := t.modern
	if rt.primary == domain.Modern {
		other = t.legacy
	}
	if _, held := t.shadowHold.Held(other.Name, t.now()); held {
		// The other side asked for no requests for now (Retry-After):
		// a copy is load it can do without.
		t.metrics.shadowResult(rt, "dropped")
		primary.ServeHTTP(&x.w, req)
		return
	}
	if asksWebSocket(req.Header) {
		// The copy would go without the upgrade (the facade opens no
		// tunnel for it) and differ from the primary's 101 for that alone:
		// every WebSocket handshake counted as a mismatch, and a shadowed
		// write's copy was applied while what the client sent through
		// the primary's tunnel was not (found by the red team).
		t.metrics.shadowResult(rt, "dropped")
		primary.ServeHTTP(&x.w, req)
		return
	}
	if req.ContentLength != 0 && !t.bufferForReplay(x, req) {
		return
	}
	if len(req.Trailer) > 0 || x.noCopy {
		// The copy would go without them and differ for that alone, or
		// its body is over max_replay_body or replay_budget has no room
		// for it.
		t.metrics.shadowResult(rt, "dropped")
		primary.ServeHTTP(&x.w, req)
		return
	}
	// The copy's slot is taken now, so that a full pool costs no capture,
	// but its job goes to a worker only once the primary's answer has gone
	// to the client (see run).
	if !sh.pool.Reserve() {
		t.metrics.shadowResult(rt, "dropped")
		primary.ServeHTTP(&x.w, req)
		return
	}
	job := t.newShadowJob(x, req)
	// The copy's body stays in memory until the job ends: the job gives
	// its replay budget back then, not the exchange.
	job.held, x.replayHeld = x.replayHeld, 0
	capture := sh.capture()
	x.w.tee = capture
	job.watch()
	completed := false
	defer func() {
		// Runs on a panic too (the client hung up mid-body), so the slot
		// is never held for good.
		x.w.tee = nil
		if !job.answered() {
			// The job ended when the primary's answer went on too long
			// (see expire); the capture is the request's alone.
			sh.captures.Put(capture)
			return
		}
		job.primary = primaryAnswer{
			resp:     capture.Response(x.answer.status, x.answer.header),
			answered: completed && x.answer.status != 0,
			capture:  capture,
		}
		sh.pool.GoTask(job)
	}()
	primary.ServeHTTP(&x.w, req)
	completed = true
}

// isSafe reports whether a method is one that only reads, which shadow and
// dual-write treat as safe to send twice.
func isSafe(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// primaryAnswer is what the client got from the primary.
type primaryAnswer struct {
	resp shadow.Response
	// answered is false when the primary failed or the response broke off;
	// nothing is compared then.
	answered bool
	capture  *shadow.Capture
}

// shadowJob is one shadow comparison, run off the request path.
type shadowJob struct {
	t     *Table
	route *route
	ctx   context.Context
	copy  shadow.RequestCopy
	// target is the request URL the copy is addressed from.
	target url.URL
	// primary is the primary's answer, set before the job runs.
	primary primaryAnswer
	// held is the replay budget the copy's body holds, given back when
	// the job ends.
	held int64
	// state says whether the primary's answer ended in time (see watch).
	state atomic.Int32
	// bound ends the job if the primary's answer does not end in time.
	bound *waiter
	// captures are the job's own captures, returned to the pool at its
	// end: the other backend's answer and, when learning noise, the
	// primary's second one.
	captures []*shadow.Capture
	// primaryUp and otherUp are the backends compared.
	primaryUp, otherUp *upstream.Upstream
	// The storage of the captures' list, of the copy's
	// X-Strangler-Shadow value and of the reader capping the answers it
	// reads, kept here so that they cost no allocation of their own.
	captureBuf [2]*shadow.Capture
	shadowFlag [1]string
	body       io.LimitedReader
}

func (t *Table) newShadowJob(x *exchange, req *http.Request) *shadowJob {
	rt := x.route
	j := &shadowJob{
		t:          t,
		route:      rt,
		ctx:        context.WithoutCancel(req.Context()),
		target:     *req.URL,
		shadowFlag: [1]string{"1"},
	}
	h := t.outboundHeader(req, x)
	h["X-Strangler-Shadow"] = j.shadowFlag[:] // spelled canonically, as forwardHeaders sets its own
	j.copy = shadow.RequestCopy{Method: req.Method, Target: req.URL.RequestURI(), Pattern: rt.pattern, Header: h, Body: x.replay}
	j.captures = j.captureBuf[:0]
	j.primaryUp, j.otherUp = t.legacy, t.modern
	if rt.primary == domain.Modern {
		j.primaryUp, j.otherUp = t.modern, t.legacy
	}
	return j
}

// Run runs the job in its pool slot (see run); the job is handed to the
// pool as a shadow.Task, which costs no allocation.
func (j *shadowJob) Run() { j.run() }

// run sends the copy and compares its answer with the primary's, in the
// job's pool slot, which it frees when it returns. The copy leaves once
// the primary's answer has gone to the client: sent alongside, its
// exchange and the comparison took the CPU the client's answer was
// waiting for, and lengthened the tail of the clients' latency (shadow
// p99 1.22x legacy's at a paced load).
func (j *shadowJob) run() {
	rt, sh, m := j.route, j.route.shadow, j.t.metrics
	defer j.t.budget.give(j.held)
	p := &j.primary
	defer func() {
		sh.captures.Put(p.capture)
		for _, c := range j.captures {
			sh.captures.Put(c)
		}
	}()
	start := time.Now()
	other, err := j.send(j.otherUp)
	m.shadowDuration(rt, time.Since(start))
	var again *shadow.Response
	// Learning noise sends the request to the primary a second time: only
	// ever a request that cannot change anything.
	if sh.noise != nil && isSafe(j.copy.Method) && sh.noise.Sample() {
		if r, err := j.send(j.primaryUp); err == nil {
			again = &r
		}
	}
	if err != nil || !p.answered {
		m.shadowResult(rt, "error")
		return
	}
	if again != nil {
		if learned := sh.comparer.Noise().Learn(shadow.Asked{Pattern: j.copy.Pattern, Target: j.copy.Target}, p.resp, *again); len(learned) > 0 {
			j.t.learnedNoise(rt.name, learned)
		}
	}
	if rt.schema.budget.allow(j.t.now()) {
		legacy, modern := &p.resp, &other
		if j.primaryUp != j.t.legacy {
			legacy, modern = modern, legacy
		}
		c := &j.copy
		j.t.learnAndCheck(rt, j.t.readAs(c.Method, c.Header, c.Target, c.Body), c.Target, legacy, modern)
	}
	res := sh.comparer.Compare(p.resp, other)
	m.shadowResult(rt, res.Outcome.String())
	if res.Outcome != shadow.TooLarge {
		rt.stats.Shadow(j.t.now(), res.Outcome == shadow.Mismatch)
	}
	// Without the store's hash key (the store not reached yet) a sample
	// could not be told apart from others, nor stored: none is kept.
	if res.Outcome == shadow.Mismatch && j.t.hasher.Ready() {
		j.keepSample(res)
	}
}

// Job states: the primary's answer is on its way, it ended in time, or
// it did not.
const (
	jobWaiting int32 = iota
	jobAnswered
	jobExpired
)

// watch bounds the wait for the primary's answer by copyDeadline of the
// primary: a copy's slot in the pool is held by nothing unbounded.
func (j *shadowJob) watch() {
	w := j.route.shadow.waiters.Get().(*waiter)
	j.bound = w
	w.job.Store(j)
	w.timer.Reset(copyDeadline(j.primaryUp))
}

// answered reports, once the primary's answer has ended, whether it did in
// time, so that the job is to run; else expire ended it.
func (j *shadowJob) answered() bool {
	if !j.state.CompareAndSwap(jobWaiting, jobAnswered) {
		return false
	}
	// A timer that fired meanwhile found the job answered and did
	// nothing; its waiter is left to it, never handed to another job.
	if w := j.bound; w.timer.Stop() {
		w.job.Store(nil)
		j.route.shadow.waiters.Put(w)
	}
	return true
}

// waiter bounds a shadow job's wait for its primary's answer. Waiters are
// pooled: a timer made for every shadowed request costs allocations.
type waiter struct {
	timer *time.Timer // runs expire
	job   atomic.Pointer[shadowJob]
}

func newWaiter() any {
	w := &waiter{}
	w.timer = time.AfterFunc(time.Hour, w.expire)
	w.timer.Stop()
	return w
}

// expire ends the job whose primary's answer is still streaming at the
// bound (server-sent events, a long poll, a slow download): holding the
// slot until it ends would let a few streams take the pool and drop every
// other copy of the route for as long as they last. Too long to compare,
// as a body past max_body is; no copy is sent.
func (w *waiter) expire() {
	j := w.job.Load()
	if j == nil || !j.state.CompareAndSwap(jobWaiting, jobExpired) {
		return
	}
	j.t.metrics.shadowResult(j.route, "too_large")
	j.t.budget.give(j.held)
	j.route.shadow.pool.Release()
}

// copyDeadline is how long a shadow job waits on a backend's answer: the
// primary's to the client, and the copy's exchange with the other side.
// Twice the backend's timeout, so a slow body is not cut off too eagerly,
// and never less than five seconds.
func copyDeadline(up *upstream.Upstream) time.Duration {
	return max(2*up.Timeout(), 5*time.Second)
}

// sampleTimeout bounds the storing of one mismatch sample, its wait for
// its turn included.
const sampleTimeout = 5 * time.Second

// keepSample stores a sample of the mismatch res. Samples are written one
// at a time per replica, and each gets sampleTimeout to wait for its turn
// and be written: a store that is slow, or whose samples table is locked,
// then holds one of its connections for samples, never all of them (the
// dual-write journal needs them), and every shadow copy ends within that
// bound. A sample that could not be written in time is not kept; the
// mismatch is counted all the same, and the one being written logs why.
func (j *shadowJob) keepSample(res shadow.Result) {
	ctx, cancel := context.WithTimeout(j.ctx, sampleTimeout)
	defer cancel()
	select {
	case j.t.sampling <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-j.t.sampling }()
	rt, sh := j.route, j.route.shadow
	sample := shadow.NewSample(rt.name, j.t.now(), j.copy, j.primaryUp.URL.String(), j.otherUp.URL.String(), res, sh.comparer.Redactor())
	if err := j.t.samples.Add(ctx, sample); err != nil {
		j.t.log.Warn("storing a shadow mismatch sample failed", "route", rt.name, "error", err)
	}
}

// send sends the copy to up and captures its answer up to the route's
// max_body, within its own deadline (copyDeadline).
func (j *shadowJob) send(up *upstream.Upstream) (shadow.Response, error) {
	ctx, cancel := context.WithTimeout(j.ctx, copyDeadline(up))
	defer cancel()
	h := j.copy.Header
	if j.t.tracing != nil {
		// roundTrip writes the call's trace context into the header: the
		// copy's own, which a mismatch sample shows, stays as it was.
		h = h.Clone()
	}
	req := upstream.NewRequest(ctx, j.copy.Method, up.Target(&j.target), h, j.copy.Body)
	resp, err := j.t.roundTrip(up, req, "shadow", "")
	if err != nil {
		return shadow.Response{}, err
	}
	defer resp.Body.Close()
	// As the client gets the primary's: two backends that each redirect
	// to their own address then agree.
	j.t.localLocations(resp.Header)
	if up == j.otherUp {
		now := j.t.now()
		if wait := upstream.RetryAfter(resp.StatusCode, resp.Header.Get("Retry-After"), now); wait > 0 {
			if until, began := j.t.shadowHold.Hold(up.Name, now, min(wait, maxShadowHold)); began {
				j.t.log.Warn("a shadow backend asked for no requests for a while (Retry-After); shadow copies to it are dropped until then",
					"backend", up.Name, "status", resp.StatusCode, "until", until.UTC())
			}
		}
	}
	// Read one byte past the cap, so that a body exactly at the cap is not
	// taken for a longer one, and no further.
	c := j.route.shadow.capture()
	j.captures = append(j.captures, c)
	j.body = io.LimitedReader{R: resp.Body, N: int64(j.route.shadow.compare.MaxBody) + 1}
	if _, err := c.ReadFrom(&j.body); err != nil {
		return shadow.Response{}, err
	}
	return c.Response(resp.StatusCode, resp.Header), nil
}

// noiseTimeout bounds the state store calls that load and keep noise.
const noiseTimeout = 5 * time.Second

// preloadNoise gives a new comparer the noise fields learned before.
func (t *Table) preloadNoise(route string, sh *shadowRoute) {
	if t.noise == nil || sh.comparer.Noise() == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), noiseTimeout)
	defer cancel()
	fields, err := t.noise.Noise(ctx, route)
	if err != nil {
		t.log.Warn("loading learned noise failed; it is learned again", "route", route, "error", err)
		return
	}
	paths := make([]string, len(fields))
	for i, f := range fields {
		paths[i] = f.Path
	}
	if err := sh.comparer.Noise().Preload(paths); err != nil {
		t.log.Warn("stored noise fields are invalid", "route", route, "error", err)
	}
}

// learnedNoise keeps newly learned noise fields.
func (t *Table) learnedNoise(route string, fields []string) {
	t.log.Info("shadow noise learned", "route", route, "fields", fields)
	if t.noise == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), noiseTimeout)
	defer cancel()
	for _, f := range fields {
		if err := t.noise.AddNoise(ctx, route, f); err != nil {
			t.log.Warn("keeping a learned noise field failed", "route", route, "error", err)
			return
		}
	}
}

// maxShadowHold bounds how long a backend's Retry-After stops shadow
// copies to it: a copy is optional load, but a day of no comparisons
// because of one odd header would go unnoticed.
const maxShadowHold = 5 * time.Minute
