package dualwrite

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/domain"
	"strangler/metrics"
	"strangler/store"
)

// Journal is the state store's part in a dual write on the request path:
// the intent before the primary is called, the primary's answer after.
type Journal interface {
	BeginWrite(ctx context.Context, in domain.Intent, lease time.Duration) error
	BeginWriteTurn(ctx context.Context, in domain.Intent, lease time.Duration) (bool, error)
	BeginKeyedWrite(ctx context.Context, in domain.Intent, k domain.IdempotencyKey, lease time.Duration) (domain.KeyedWrite, error)
	RecordOutcome(ctx context.Context, id string, o domain.Outcome) error
	RecordOutcomeLeased(ctx context.Context, id string, o domain.Outcome, owner string, lease time.Duration) (bool, error)
	MarkUnknown(ctx context.Context, id string) error
	TakeTurn(ctx context.Context, id, resource string, limit time.Duration) (bool, error)
	KeepTurn(ctx context.Context, id, resource string, limit time.Duration) error
	// Uncertain reports whether a write that failed may have been
	// committed all the same (the connection broke as it committed).
	Uncertain(err error) bool
	// WritesRefused says since when the store refuses every write until
	// a restart, found without writing (zero and nil if it does not).
	WritesRefused() (time.Time, error)
	// ProbeWrites checks whether the store would take a write, writing
	// nothing a reader sees.
	ProbeWrites(ctx context.Context) error
}

// Outcomes is the request path's journal with a memory. Each write whose
// 2xx outcome it recorded goes to the worker at once: leased to it in the
// outcome's own transaction, with the request in hand, when the write is
// its resource's head and the worker has room for it; otherwise kicked,
// for the worker to claim from the queue. An outcome the
// state store cannot take (a full disk, a PostgreSQL failover) is kept in
// memory and retried until the store takes it, and once more at shutdown,
// so the client's answer need not wait and the write ends pending, not
// unknown: only a crash while an outcome is held, or an outage longer
// than the write's lease, leaves its write unknown (recovery has it once
// the lease passes; an answer recorded once the write is unknown settles
// nothing, as later writes to its resource may have gone first, and is
// noted for the operator: store.RecordOutcome). Held outcomes are recorded in
// the order the primary answered, and an outcome that arrives while
// others are held queues behind them when it is for a resource one of
// them is for, so that writes to one resource still take their sequence
// numbers in that order; any other is recorded at once. Were every one
// to queue, a steady write load after an outage would keep the queue as
// long as it was, recorded barely faster than it grew.
//
// Each call is bounded by storeTimeout: a store that does not answer in
// time refuses the intent (503) or has the outcome held, as one that
// refuses it.
//
// Memory stays bounded by the outage: a held outcome belongs to a write
// whose intent the store took, and while the store refuses writes it
// refuses new intents too (the client gets 503).
type Outcomes struct {
	journal Journal
	log     *slog.Logger
	now     func() time.Time
	// kicks hands the writes whose 2xx outcome was recorded to the
	// worker; nil leaves them to the worker's poll.
	kicks  *Kicks
	errors prometheus.Counter

	mu   sync.Mutex
	held []heldOutcome
	// ordered counts the held outcomes that take a sequence number, by
	// their resource ("" when it is not known here).
	ordered map[string]int
	// failingSince is when the store began refusing journal writes, zero
	// while it takes them; lastFailure is its latest refusal.
	failingSince, lastFailure time.Time
	// wake starts the retries: something was held, or the store took a
	// write again.
	wake chan struct{}
}

type heldOutcome struct {
	id string
	o  domain.Outcome
	// resource orders the outcome (see orderOf).
	resource string
	// neverSent is the outcome of an intent whose journaling failed: the
	// primary never got it, and the intent itself may not exist.
	neverSent bool
}

// Retry pacing of held outcomes, and how long the last attempt at
// shutdown may take.
const (
	retryMin     = 50 * time.Millisecond
	retryMax     = 2 * time.Second
	drainTimeout = 5 * time.Second
)

// NewOutcomes returns journal with a memory for outcomes, registering
// strangler_store_write_errors_total with reg. kicks may be nil.
func NewOutcomes(journal Journal, kicks *Kicks, reg prometheus.Registerer, log *slog.Logger) *Outcomes {
	j := &Outcomes{
		journal: journal, kicks: kicks, log: log, now: time.Now,
		errors:  metrics.StoreWriteErrors.Counter(),
		wake:    make(chan struct{}, 1),
		ordered: map[string]int{},
	}
	reg.MustRegister(j.errors)
	return j
}

// BeginWrite journals an intent; a refusal is the caller's to answer
// (503, and the primary never sees the write). When the refusal may have
// been committed all the same (the connection broke as it committed, in a
// failover), the intent would sit there as sent and later be taken for a
// write whose outcome a crash lost: an outcome saying the primary never
// got it is held for it, which settles it once the store takes writes.
func (j *Outcomes) BeginWrite(ctx context.Context, in domain.Intent, lease time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	err := j.journal.BeginWrite(ctx, in, lease)
	j.began(in.ID, err)
	return err
}

// BeginWriteTurn is BeginWrite that also gives the write its resource's
// turn with the primary when no other write holds it (Store.BeginWriteTurn).
func (j *Outcomes) BeginWriteTurn(ctx context.Context, in domain.Intent, lease time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	turn, err := j.journal.BeginWriteTurn(ctx, in, lease)
	j.began(in.ID, err)
	return turn, err
}

// BeginKeyedWrite is BeginWrite for a write with a client's
// Idempotency-Key; a refusal that may have been committed is settled the
// same way, so that a retry with the key is not told that the write is
// in flight until its lease passes.
func (j *Outcomes) BeginKeyedWrite(ctx context.Context, in domain.Intent, k domain.IdempotencyKey, lease time.Duration) (domain.KeyedWrite, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	kw, err := j.journal.BeginKeyedWrite(ctx, in, k, lease)
	j.began(in.ID, err)
	return kw, err
}

// began notes how journaling the intent id went.
func (j *Outcomes) began(id string, err error) {
	j.note(err)
	if err != nil && j.journal.Uncertain(err) {
		j.mu.Lock()
		j.holdLocked(heldOutcome{id: id, o: domain.Outcome{Status: http.StatusServiceUnavailable}, neverSent: true})
		j.mu.Unlock()
	}
}

// MarkUnknown marks a write whose primary outcome is not known; when the
// store refuses, recovery marks it once its lease passes.
func (j *Outcomes) MarkUnknown(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	err := j.journal.MarkUnknown(ctx, id)
	j.note(err)
	return err
}

// TakeTurn gives the sent write id to resource its turn with the primary
// among the replicas sharing the store; a store that does not answer
// within storeTimeout refuses it, as one that fails. The store bounds
// the statement itself: an embedded store mostly runs none, and a timer
// each write would be garbage for nothing.
func (j *Outcomes) TakeTurn(ctx context.Context, id, resource string) (bool, error) {
	taken, err := j.journal.TakeTurn(ctx, id, resource, storeTimeout)
	if ctx.Err() == nil { // a client that left is no store failing
		j.note(err)
	}
	return taken, err
}

// KeepTurn keeps the turn of the sent write id to resource, which its
// primary left unanswered, until recovery settles it (Store.KeepTurn).
func (j *Outcomes) KeepTurn(ctx context.Context, id, resource string) error {
	err := j.journal.KeepTurn(ctx, id, resource, storeTimeout)
	j.note(err)
	return err
}

// RecordOutcome records the primary's answer to the write id, or holds it
// in memory when the store cannot take it now: nil means the write will
// be recorded unless the process dies first. An error means the store
// answered that this outcome can never be recorded (the write is not
// there, or no longer sent).
func (j *Outcomes) RecordOutcome(ctx context.Context, id string, o domain.Outcome) error {
	return j.record(ctx, id, o.Resource, o, func(ctx context.Context) error {
		err := j.journal.RecordOutcome(ctx, id, o)
		if err == nil {
			j.queued(id, o)
		}
		return err
	})
}

// RecordOutcomeOf is RecordOutcome for the write journaled as in, which
// the caller still holds: a write the secondary is to get goes to the
// worker with it, so that the worker need not claim it from the queue
// and read it back.
func (j *Outcomes) RecordOutcomeOf(ctx context.Context, in domain.Intent, o domain.Outcome) error {
	resource := in.Resource
	if o.Resource != "" {
		resource = o.Resource // a create: what it made
	}
	return j.record(ctx, in.ID, resource, o, func(ctx context.Context) error {
		var w *Worker
		var owner string
		var lease time.Duration
		var until time.Time
		ok := false
		if j.kicks != nil && queues(o) {
			w, owner, lease, until, ok = j.kicks.reserve()
		}
		if !ok {
			err := j.journal.RecordOutcome(ctx, in.ID, o)
			if err == nil {
				j.queued(in.ID, o)
			}
			return err
		}
		leased, err := j.journal.RecordOutcomeLeased(ctx, in.ID, o, owner, lease)
		if leased {
			w.handOff(leasedRepair(in, o, owner, until, j.now()))
			return nil
		}
		w.unreserve()
		switch {
		case err == nil:
			j.queued(in.ID, o) // an earlier write to its resource goes first
		case j.journal.Uncertain(err):
			w.lostClaim.Store(true) // it may be leased all the same
		}
		return err
	})
}

// record runs the recording of id's outcome o, for resource ("" if not
// known), unless it must wait behind held outcomes, and holds o if the
// store cannot take it now.
func (j *Outcomes) record(ctx context.Context, id, resource string, o domain.Outcome, recordNow func(context.Context) error) error {
	h := heldOutcome{id: id, o: o, resource: resource}
	j.mu.Lock()
	if j.waitsLocked(h) {
		j.holdLocked(h)
		j.mu.Unlock()
		return nil
	}
	j.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err := recordNow(ctx)
	cancel()
	j.note(err)
	if err == nil || final(err) {
		return err
	}
	j.log.Warn("recording a dual write's outcome failed; kept in memory and retried until the state store takes it",
		"id", id, "status", o.Status, "error", err)
	j.mu.Lock()
	j.holdLocked(h)
	j.mu.Unlock()
	return nil
}

// waitsLocked reports whether h must wait behind a held outcome: both
// take a sequence number (a 2xx, see queues) for the same resource, or
// for one not known here. Any other outcome orders nothing.
func (j *Outcomes) waitsLocked(h heldOutcome) bool {
	if len(j.held) == 0 || !queues(h.o) {
		return false
	}
	if h.resource == "" || j.ordered[""] > 0 {
		return len(j.ordered) > 0
	}
	return j.ordered[h.resource] > 0
}

// queued hands the write id, recorded with outcome o, to the worker if o
// queued it for the secondary.
func (j *Outcomes) queued(id string, o domain.Outcome) {
	if j.kicks != nil && queues(o) {
		j.kicks.Kick(id)
	}
}

// queues reports whether the primary's answer o queues its write for the
// secondary: a 2xx one.
func queues(o domain.Outcome) bool { return o.Status >= 200 && o.Status <= 299 }

// leasedRepair is the write journaled as in, whose outcome o the store
// recorded leased to owner until leaseUntil at now, as a claim would
// have returned it.
func leasedRepair(in domain.Intent, o domain.Outcome, owner string, leaseUntil, now time.Time) domain.Repair {
	return domain.Repair{
		RepairSummary: domain.RepairSummary{
			ID: in.ID, Route: in.Route, Method: in.Method, StandsFor: in.StandsFor, Primary: in.Primary,
			State: domain.StatePending, Outcome: domain.Outcome{Status: o.Status, Location: o.Location, PrimaryID: o.PrimaryID},
			NextAttemptAt: now, LeaseOwner: owner, LeaseUntil: leaseUntil, CreatedAt: in.CreatedAt, UpdatedAt: now,
		},
		Target: in.Target, Header: in.Header, Body: in.Body,
		PrimaryIdempotent: domain.Journaled{Value: in.PrimaryIdempotent, Known: true},
	}
}

func (j *Outcomes) holdLocked(h heldOutcome) {
	j.held = append(j.held, h)
	if queues(h.o) {
		j.ordered[h.resource]++
	}
	signal(j.wake)
}

// unholdLocked takes the oldest held outcome, h, off the list.
func (j *Outcomes) unholdLocked(h heldOutcome) {
	j.held = j.held[1:]
	if queues(h.o) {
		if j.ordered[h.resource]--; j.ordered[h.resource] == 0 {
			delete(j.ordered, h.resource)
		}
	}
}

// final reports whether the store refused a write for good: it answered,
// and the answer will not change.
func final(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidState) || errors.Is(err, store.ErrConflict) ||
		errors.Is(err, domain.ErrStaleFlags)
}

// note follows whether the store takes journal writes. A write refused
// for its own size (domain.TooLargeForRoomError) says neither: counted
// as the store refusing, one client's oversized writes in a loop kept
// strangler_store_up at 0 and /readyz degraded while every other write
// was taken.
func (j *Outcomes) note(err error) {
	if err != nil && domain.TooLargeForRoom(err) != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case err != nil && !final(err):
		j.errors.Inc()
		j.lastFailure = j.now()
		if j.failingSince.IsZero() {
			j.failingSince = j.lastFailure
		}
	case len(j.held) > 0:
		signal(j.wake) // the store takes writes again: retry now
	default:
		j.failingSince = time.Time{}
	}
}

// failingWindow is how long a refused write counts as the store refusing
// writes when no write has been tried since.
const failingWindow = 30 * time.Second

// WritesFailing says since when the store refuses journal writes (zero
// while it takes them, or has refused none for failingWindow with
// nothing held, unless it refuses every write until a restart) and how
// many outcomes wait in memory for it.
func (j *Outcomes) WritesFailing() (since time.Time, held int) {
	refusedSince, refused := j.journal.WritesRefused()
	j.mu.Lock()
	defer j.mu.Unlock()
	since, held = j.failingSince, len(j.held)
	if held == 0 && j.now().Sub(j.lastFailure) >= failingWindow {
		since = time.Time{}
	}
	if refused != nil && (since.IsZero() || refusedSince.Before(since)) {
		since = refusedSince
	}
	return since, held
}

// probeInterval is how often Probe checks that the store takes writes.
const probeInterval = 5 * time.Second

// Probe checks every probeInterval, until ctx ends, whether the store
// takes writes, and counts a refusal as a refused journal write: a full
// disk or a read-only store shows on WritesFailing (so on /readyz and
// strangler_store_up) before a client's write is refused, and clears once
// the store takes writes again. probeInterval is well inside
// failingWindow, so a lasting refusal is reported without a gap.
func (j *Outcomes) Probe(ctx context.Context) error {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	refusing := false // logged once when it starts and once when it ends
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := j.journal.ProbeWrites(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil && !refusing:
			j.log.Warn("the state store refuses writes", "error", err)
		case err == nil && refusing:
			j.log.Info("the state store takes writes again")
		}
		refusing = err != nil
		j.note(err)
	}
}

// Run retries held outcomes until ctx ends, then tries once more for a
// few seconds, so a shutdown while the store is briefly away loses none.
func (j *Outcomes) Run(ctx context.Context) error {
	defer j.drain()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-j.wake:
		}
		for backoff := retryMin; !j.flush(ctx); backoff = min(2*backoff, retryMax) {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-j.wake:
				t.Stop()
			case <-t.C:
			}
		}
	}
}

// flush records held outcomes, oldest first, until none is left (true) or
// the store refuses one (false).
func (j *Outcomes) flush(ctx context.Context) bool {
	recorded := 0
	defer func() {
		if recorded > 0 {
			j.log.Info("held dual-write outcomes recorded", "count", recorded)
		}
	}()
	for {
		j.mu.Lock()
		if len(j.held) == 0 {
			j.failingSince = time.Time{}
			j.mu.Unlock()
			return true
		}
		h := j.held[0]
		j.mu.Unlock()
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := j.journal.RecordOutcome(sctx, h.id, h.o)
		cancel()
		if err != nil && !final(err) {
			if ctx.Err() == nil {
				j.errors.Inc()
			}
			return false
		}
		j.mu.Lock()
		j.unholdLocked(h)
		j.mu.Unlock()
		switch {
		case err != nil && h.neverSent:
			continue // the intent was not journaled after all
		case err != nil:
			// Settled meanwhile: recovery resent it to a primary that
			// honours Idempotency-Key, or made it unknown (the store
			// notes the answer for the operator).
			j.log.Warn("a held dual-write outcome was settled meanwhile; left as it is", "id", h.id, "status", h.o.Status, "error", err)
			continue
		}
		recorded++
		j.queued(h.id, h.o)
	}
}

// drain is the last attempt at shutdown, bounded by drainTimeout.
func (j *Outcomes) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	for backoff := retryMin; !j.flush(ctx); backoff = min(2*backoff, retryMax) {
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			_, held := j.WritesFailing()
			j.log.Error("dual-write outcomes could not be recorded before shutdown; their writes become unknown for an operator when their leases pass",
				"count", held)
			return
		case <-t.C:
		}
	}
}

// signal sends on ch unless a signal is already waiting there.
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
