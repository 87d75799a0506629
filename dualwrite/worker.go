// Package dualwrite delivers journaled dual writes to the secondary
// backend after the primary applied them: at once, or later from the
// repair queue; in the order the primary answered writes to the same
// resource; with exponential backoff, dead letters for writes the
// secondary refuses, and recovery of writes whose primary outcome a crash
// lost. The journal itself is the state store's; the request path is the
// router's.
package dualwrite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"strangler/config"
	"strangler/domain"
	"strangler/metrics"
	"strangler/upstream"
)

// Queue is the repair queue as the worker uses it: it is the queue's only
// consumer, claiming, settling and recovering writes, and watching its
// depth, which is why it needs more than a handful of methods.
type Queue interface {
	ClaimRepair(ctx context.Context, id, owner string, lease time.Duration) (domain.Repair, bool, error)
	ClaimRepairs(ctx context.Context, owner string, limit int, lease time.Duration) ([]domain.Repair, error)
	ClaimNextRepair(ctx context.Context, id, owner string, lease time.Duration) (domain.Repair, bool, error)
	CompleteRepair(ctx context.Context, id, owner string) error
	FailRepair(ctx context.Context, id, owner, reason string, retryAfter time.Duration, dead bool) error
	ExpiredWrites(ctx context.Context, limit int) ([]domain.Repair, error)
	MarkUnknown(ctx context.Context, id string) error
	ResendUnanswered(ctx context.Context, id string, attempts int, why string, retryAfter time.Duration, lose bool) (counted bool, err error)
	TakeResendTurn(ctx context.Context, id string, limit time.Duration) (bool, error)
	RecordOutcome(ctx context.Context, id string, o domain.Outcome) error
	RepairDepth(ctx context.Context) (map[string]int, error)
	PurgeRepairs(ctx context.Context, keep time.Duration) (int, error)
	SweepRepairs(ctx context.Context) (int, error)
	ReleaseLeases(ctx context.Context, owner string, keep map[string]bool) (int, error)
}

// Routes tells the worker what the current configuration says: how to
// reach a backend and how a route's primary behaves.
type Routes interface {
	// Backend is the upstream of backend b.
	Backend(b domain.Backend) *upstream.Upstream
	// DualWrite is the route's id_field and primary_idempotent, and
	// whether the route exists.
	DualWrite(route string) (idField domain.FieldPath, primaryIdempotent bool, ok bool)
	// Template is the path template the route matches, for spans; "" if
	// the route is gone.
	Template(route string) string
	// Created sets in o, the primary's answer to a write of route resent
	// by recovery, what a create made, as when the facade recorded the
	// answer itself: later writes to it wait behind it.
	Created(route string, w domain.Repair, o *domain.Outcome)
}

// Worker delivers the repair queue on one replica.
type Worker struct {
	queue  Queue
	routes Routes
	log    *slog.Logger
	// count counts a step of a dual write (strangler_dualwrite_total).
	count func(route, result string)
	depth *prometheus.GaugeVec
	now   func() time.Time
	owner string

	// tracer is nil when tracing is off.
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator

	settings atomic.Pointer[config.Repairs]
	kicks    *Kicks
	// slots bound the deliveries under way. leased carries the writes
	// the request path recorded leased to this worker, at most
	// cap(handOffs) of them at a time until each has a slot.
	slots    chan struct{}
	leased   chan domain.Repair
	handOffs chan struct{}
	// applied carries the writes the secondary applied, freed is
	// signalled for those applied carries no room for; backlog, which
	// only Run's goroutine touches, says the last claim found writes due,
	// so more may be due at once: beyond what it could take, or the next
	// write of a resource it delivered. full, Run's too, says the last
	// claim of due writes took as many as it could (or had no slot), so
	// more may wait than the next writes of the resources under way.
	applied  chan string
	freed    chan struct{}
	backlog  bool
	full     bool
	inflight sync.WaitGroup
	// delivering holds the ids under way; lostClaim says a claim (or a
	// leased record of an outcome) failed and may have leased writes this
	// worker never learned of, to release before the next claim.
	mu         sync.Mutex
	delivering map[string]bool
	lostClaim  atomic.Bool
	// sending holds the ids whose delivery to the secondary has begun:
	// the leases a shutdown keeps until they settle. stopping is set once
	// Run's context ended: the request path leases it no more writes,
	// and handed-over writes not yet sent stay unsent. reservations
	// counts the writes the request path is recording leased to it.
	sending      map[string]bool
	stopping     bool
	reservations sync.WaitGroup
	// work hands a delivery to a runner waiting for one; unbuffered, so
	// that only a runner that is free takes it. quit, closed once stop
	// has waited for the deliveries, ends the waiting runners.
	work chan func()
	quit chan struct{}
	// holds says until when each backend asked for no requests
	// (Retry-After): no delivery goes to it before.
	holds upstream.Holds
}

// Intervals of the worker's housekeeping.
const (
	pollInterval     = time.Second
	recoveryInterval = 5 * time.Second
	depthInterval    = 5 * time.Second
	purgeInterval    = time.Hour
	// storeTimeout bounds each call to the state store, the request
	// path's too (Outcomes): a store that takes a statement and never
	// answers (a lock another session holds, a server gone silent, a
	// pool whose connections all wait) fails the call instead of
	// holding it, and the client's request with it, for ever.
	storeTimeout = 10 * time.Second
	// handOffsPerWorker bounds the writes handed over by the request path
	// that wait for a slot, each holding its request in memory: the
	// rest the worker claims from the queue.
	handOffsPerWorker = 16
)

// New returns a worker for the queue that delivers the writes kicks
// hands it at once (nil: kicks of its own, fed by Kick). count is called
// for each step of a dual write; the queue depth is registered with reg.
func New(q Queue, routes Routes, kicks *Kicks, settings config.Repairs, reg prometheus.Registerer, count func(route, result string), log *slog.Logger) *Worker {
	w := &Worker{
		queue:    q,
		routes:   routes,
		log:      log,
		count:    count,
		now:      time.Now,
		owner:    ownerName(),
		depth:    metrics.RepairQueueDepth.GaugeVec(),
		kicks:    kicks,
		slots:    make(chan struct{}, settings.Workers),
		leased:   make(chan domain.Repair, handOffsPerWorker*settings.Workers),
		handOffs: make(chan struct{}, handOffsPerWorker*settings.Workers),
		applied:  make(chan string, settings.Workers),
		freed:    make(chan struct{}, 1),
		work:     make(chan func()),
		quit:     make(chan struct{}),

		delivering: map[string]bool{},
		sending:    map[string]bool{},
	}
	if w.kicks == nil {
		w.kicks = NewKicks()
	}
	w.settings.Store(&settings)
	reg.MustRegister(w.depth)
	w.kicks.worker.Store(w)
	return w
}

// ownerName identifies this replica's worker in leases: unique per process.
func ownerName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// SetSettings applies a reloaded repairs section; workers takes effect on
// restart.
func (w *Worker) SetSettings(s config.Repairs) { w.settings.Store(&s) }

// Kick asks for the write with id to be delivered now, if it is its
// resource's next one. It never blocks.
func (w *Worker) Kick(id string) { w.kicks.Kick(id) }

// Run delivers until ctx ends, then stops as stop says.
func (w *Worker) Run(ctx context.Context) error {
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	recovery := time.NewTicker(recoveryInterval)
	defer recovery.Stop()
	depth := time.NewTicker(depthInterval)
	defer depth.Stop()
	purge := time.NewTicker(purgeInterval)
	defer purge.Stop()
	w.recover(ctx)
	w.updateDepth(ctx)
	// At once too, not only after an hour: what passed its time while the
	// facade was down (or restarting more often than hourly) goes now.
	w.purge(ctx)
	// What is due (the writes a stopping facade released among them) goes
	// at once, not after the first poll.
	w.claimDue(ctx)
	for {
		select {
		case <-ctx.Done():
			w.stop(ctx)
			return nil
		case r := <-w.leased:
			w.startHandedOff(ctx, r)
		case id := <-w.kicks.ids:
			w.claimOne(ctx, id)
		case <-poll.C:
			w.claimDue(ctx)
		case id := <-w.applied:
			// While writes wait, the next write of id's resource takes
			// its place at once, found by its resource rather than by
			// walking the queue past all that waits behind it
			// (claimNext); unless the last claim could not take all
			// that was due: then the queue's order decides, as after
			// any other delivery. Whatever else comes due meanwhile is
			// handed over, kicked, or found by the poll.
			switch {
			case !w.backlog:
			case w.full:
				w.claimDue(ctx)
			default:
				w.claimNext(ctx, id)
			}
		case <-w.freed:
			// A backlog (a secondary back after an outage) drains as fast
			// as the secondary takes it, not one batch per poll; while
			// deliveries fail, the poll paces the retries.
			if w.backlog {
				w.claimDue(ctx)
			}
		case <-recovery.C:
			w.recover(ctx)
		case <-depth.C:
			w.updateDepth(ctx)
		case <-purge.C:
			w.purge(ctx)
		}
	}
}

// claimOne claims and starts the write id, kicked as it was journaled.
func (w *Worker) claimOne(ctx context.Context, id string) {
	w.claimWrite(ctx, id, w.queue.ClaimRepair)
}

func (w *Worker) claimDue(ctx context.Context) {
	// The slots are taken before the claim: the request path takes them
	// too, for the writes it hands over (Kicks.reserve).
	free := 0
take:
	for free < cap(w.slots) {
		select {
		case w.slots <- struct{}{}:
			free++
		default:
			break take
		}
	}
	if free == 0 {
		w.backlog, w.full = true, true
		return
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	w.releaseLost(sctx)
	lease, until := w.leaseFromNow()
	repairs, err := w.queue.ClaimRepairs(sctx, w.owner, free, lease)
	if err != nil {
		repairs = nil
		w.lostClaim.Store(true)
		w.log.Warn("claiming due dual writes failed", "error", err)
	}
	w.backlog = len(repairs) > 0
	w.full = len(repairs) == free
	for range free - len(repairs) {
		<-w.slots
	}
	for _, r := range repairs {
		r.LeaseUntil = until
		w.start(ctx, r)
	}
}

// claimNext claims and starts the next write of the resource that the
// write id, which the secondary just applied, is to.
func (w *Worker) claimNext(ctx context.Context, id string) {
	w.claimWrite(ctx, id, w.queue.ClaimNextRepair)
}

// claimWrite claims, by claim, the write id or the one after it, and
// starts it. Without a free slot it leaves the write to the claim of due
// writes after the next delivery, or the poll; a write not claimable now
// most often waits behind an earlier write to its resource, whose
// delivery is to be followed by it.
func (w *Worker) claimWrite(ctx context.Context, id string, claim func(ctx context.Context, id, owner string, lease time.Duration) (domain.Repair, bool, error)) {
	select {
	case w.slots <- struct{}{}:
	default:
		w.backlog, w.full = true, true
		return
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	w.releaseLost(sctx)
	lease, until := w.leaseFromNow()
	r, ok, err := claim(sctx, id, w.owner, lease)
	if err != nil || !ok {
		<-w.slots
		if err != nil {
			w.lostClaim.Store(true)
			w.log.Warn("claiming a dual write failed", "id", id, "error", err)
		} else {
			w.backlog = true
		}
		return
	}
	r.LeaseUntil = until
	w.start(ctx, r)
}

// appliedOne tells Run that the secondary applied the write id: its
// resource's next write may be due.
func (w *Worker) appliedOne(id string) {
	select {
	case w.applied <- id:
	default:
		signal(w.freed)
	}
}

// leaseFromNow is the lease a claim asks for, and until when it runs at
// least on this worker's clock: the store runs leases on its own clock
// (the server's, with PostgreSQL) and takes this one after now, so the
// worker times its own steps against this end, never against the one
// the store wrote down in another clock.
func (w *Worker) leaseFromNow() (time.Duration, time.Time) {
	lease := w.maxLease()
	return lease, w.now().Add(lease)
}

// maxLease is how long a claimed write is this worker's: longer than a
// delivery to either backend can take, so it never runs out mid-delivery.
func (w *Worker) maxLease() time.Duration {
	d := max(deliveryTimeout(w.routes.Backend(domain.Legacy)), deliveryTimeout(w.routes.Backend(domain.Modern)))
	return d + 30*time.Second
}

// start delivers r in its own goroutine, with the slot taken for it;
// ctx is the worker's, which ends only the retries of recording the
// delivery, never the delivery.
func (w *Worker) start(ctx context.Context, r domain.Repair) {
	w.mu.Lock()
	w.sending[r.ID] = true
	w.mu.Unlock()
	w.run(r, func() {
		if w.deliver(ctx, r) {
			w.appliedOne(r.ID)
		}
	})
}

// startHandedOff delivers r, handed over leased to this worker, once a
// slot is free, unless its lease would then end before the delivery
// could (the queue has it once the lease passed) or the worker stops
// first (stop releases it).
func (w *Worker) startHandedOff(ctx context.Context, r domain.Repair) {
	w.run(r, func() {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			<-w.handOffs
			return
		}
		<-w.handOffs
		w.mu.Lock()
		late := w.stopping || !w.now().Add(deliveryTimeout(w.routes.Backend(other(r.Primary)))).Before(r.LeaseUntil)
		if !late {
			w.sending[r.ID] = true
		}
		w.mu.Unlock()
		if late {
			<-w.slots
			return
		}
		if w.deliver(ctx, r) {
			w.appliedOne(r.ID)
		}
	})
}

// stop ends the worker's part at shutdown. The request path leases it no
// more writes (they stay pending, for whoever claims them next), and what
// it holds leased without having begun to send it is released at once:
// a restarted facade, or another replica, delivers those writes now
// instead of after their leases pass. The deliveries under way keep
// their leases and are waited for; whatever is still leased to it after
// them (a result the store would not take) is released too. A process
// that dies instead (SIGKILL) releases nothing: its leases pass.
func (w *Worker) stop(ctx context.Context) {
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	// Outcomes being recorded leased to this worker: each is bounded by
	// storeTimeout.
	w.reservations.Wait()
	for drained := false; !drained; {
		select {
		case r := <-w.leased:
			<-w.handOffs
			w.mu.Lock()
			delete(w.delivering, r.ID)
			w.mu.Unlock()
		default:
			drained = true
		}
	}
	w.mu.Lock()
	keep := maps.Clone(w.sending)
	w.mu.Unlock()
	w.releaseAtStop(ctx, keep)
	w.inflight.Wait()
	close(w.quit)
	w.releaseAtStop(ctx, nil)
}

// releaseAtStop releases this worker's leases but those in keep.
func (w *Worker) releaseAtStop(ctx context.Context, keep map[string]bool) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	n, err := w.queue.ReleaseLeases(sctx, w.owner, keep)
	switch {
	case err != nil:
		w.log.Warn("releasing the leases of dual writes not delivered before shutdown failed; they are delivered when their leases pass", "error", err)
	case n > 0:
		w.log.Info("released the leases of dual writes not delivered before shutdown", "count", n)
	}
}

// run runs the delivery of r on a goroutine of its own: one that waits
// for work after an earlier delivery (runner), else a new one.
func (w *Worker) run(r domain.Repair, deliver func()) {
	w.inflight.Add(1)
	w.mu.Lock()
	w.delivering[r.ID] = true
	w.mu.Unlock()
	job := func() {
		defer w.inflight.Done()
		defer func() {
			w.mu.Lock()
			delete(w.delivering, r.ID)
			delete(w.sending, r.ID)
			w.mu.Unlock()
		}()
		deliver()
	}
	select {
	case w.work <- job:
	default:
		go w.runner(job)
	}
}

// runnerIdle is how long a delivery's goroutine waits for the next one
// before it ends.
const runnerIdle = 2 * time.Second

// runner runs job, then the deliveries handed to it, until none came for
// runnerIdle or the worker stopped. A new goroutine starts with a small
// stack and grew it twice (copying it) in each delivery, through the
// send and the store: about 40k instructions of a dual write's 770k
// (BenchmarkDualWriteDelivered). The shadow pool's workers wait so too.
func (w *Worker) runner(job func()) {
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		job()
		idle.Reset(runnerIdle)
		select {
		case job = <-w.work:
		case <-idle.C:
			return
		case <-w.quit:
			return
		}
	}
}

// releaseLost releases the leases a failed claim may have taken (its
// commit may have gone through, its answer not), so those writes need not
// wait for their leases to pass.
func (w *Worker) releaseLost(ctx context.Context) {
	if !w.lostClaim.Load() {
		return
	}
	w.mu.Lock()
	keep := maps.Clone(w.delivering)
	w.mu.Unlock()
	n, err := w.queue.ReleaseLeases(ctx, w.owner, keep)
	if err != nil {
		return // the claim that follows fails too, and says why
	}
	w.lostClaim.Store(false)
	if n > 0 {
		w.log.Info("released dual writes a failed claim had leased", "count", n)
	}
}

func (w *Worker) updateDepth(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	depth, err := w.queue.RepairDepth(sctx)
	if err != nil {
		w.log.Warn("reading the repair queue depth failed", "error", err)
		return
	}
	for state, n := range depth {
		w.depth.WithLabelValues(state).Set(float64(n))
	}
}

// purge erases what settled writes still hold of their requests, then
// deletes settled writes older than repairs.keep.
func (w *Worker) purge(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if n, err := w.queue.SweepRepairs(sctx); err != nil {
		w.log.Warn("erasing the requests of settled dual writes failed", "error", err)
	} else if n > 0 {
		w.log.Info("erased the requests of settled dual writes", "count", n)
	}
	keep := time.Duration(w.settings.Load().Keep)
	if n, err := w.queue.PurgeRepairs(sctx, keep); err != nil {
		w.log.Warn("purging delivered dual writes failed", "error", err)
	} else if n > 0 {
		w.log.Info("purged delivered dual writes", "count", n)
	}
}

// pause holds back the deliveries to backend for wait (up to
// repairs.max_backoff), as its answer with status asked: a secondary that
// is overloaded or in maintenance says when to come back, and every write
// sent to it meanwhile would only add to its load.
func (w *Worker) pause(backend string, status int, wait time.Duration) {
	until, began := w.holds.Hold(backend, w.now(), min(wait, time.Duration(w.settings.Load().MaxBackoff)))
	if began {
		w.log.Warn("the secondary asked for no requests for a while (Retry-After); dual writes to it wait until then",
			"backend", backend, "status", status, "until", until.UTC())
	}
}
