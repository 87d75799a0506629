package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/store"
)

// FlagStore is where overrides and their audit log live.
type FlagStore interface {
	// RouteFlags is the overrides by route, the routes' versions and
	// their fences (store.Store.RouteFlags).
	RouteFlags(ctx context.Context, routes []string) (overrides map[string]domain.Override, versions, fences map[string]int64, err error)
	SetOverride(ctx context.Context, o domain.Override, expectVersion int64, a domain.AuditEntry, linked ...store.Linked) (domain.Override, error)
	ClearOverride(ctx context.Context, route string, expectVersion int64, a domain.AuditEntry, linked ...store.Linked) (version, fence int64, err error)
	AppendAudit(ctx context.Context, a domain.AuditEntry) error
	Watch(ctx context.Context) (<-chan struct{}, error)
	// Shared reports whether other replicas may share the store
	// (store.Store.Shared): their changes are what Follows guards
	// against.
	Shared() bool
	// OpenPrimaries is, per route, the primaries its open journaled
	// writes went to, and how many went to each
	// (store.Store.OpenPrimaries).
	OpenPrimaries(ctx context.Context) (map[string]map[domain.Backend]int, error)
}

// Tables is the router the flags drive.
type Tables interface {
	// Apply builds the table of an effective configuration and serves it.
	Apply(cfg *config.Config) error
	// HoldWrites holds dual writes back from the journal until release is
	// called (router.Router.HoldWrites).
	HoldWrites() (release func())
}

// Flags decides each route's effective mode and percent: the file's,
// unless an override in the state store says otherwise; and it applies
// them to the router whenever the file or an override changes. Overrides
// change only through Flip, Clear and the guard, each audited first.
type Flags struct {
	store FlagStore
	// snapshot keeps the overrides on local disk for a start without the
	// store; nil keeps none.
	snapshot *Snapshot
	// tables serves each effective configuration.
	tables Tables
	log    *slog.Logger
	now    func() time.Time
	rates  Rates

	// mu serialises applying (so tables are built in the order their
	// inputs changed) and saving the snapshot.
	mu        sync.Mutex
	file      atomic.Pointer[config.Config]
	overrides atomic.Pointer[map[string]domain.Override]
	// versions are the routes' versions read with the overrides, each
	// route's ETag (see store.Store.RouteFlags): a route not in it is at
	// 0. Stored after the overrides and loaded before them (flagsNow),
	// so that a version is never read with a state older than the one
	// it names: a change at it could be taken.
	versions atomic.Pointer[map[string]int64]
	// fences are the routes' fences read with the overrides (see
	// config.Route.Fence): empty until they are read, nil when the store
	// keeps none (SQLite).
	fences atomic.Pointer[map[string]int64]
	// reads counts the reads of the store's flags begun (refresh), so
	// that writes the journal refused together share one (Resync).
	reads atomic.Int64
	// storeOK says whether the last read of the overrides worked; when it
	// did not, the facade serves the last known flags and says degraded.
	storeOK    atomic.Bool
	storeSince atomic.Int64
	// read says the store has been read since this replica started;
	// snapshotAt, until then, is when the snapshot served was saved (0:
	// none is served).
	read       atomic.Bool
	snapshotAt atomic.Int64
	// unchecked says the file has not been checked against the journal's
	// open writes: the replica started without the store (see
	// checkStart).
	unchecked atomic.Bool
	// known is closed once the overrides are known, from the store or
	// from the snapshot; until then the replica is not ready.
	known     chan struct{}
	knownOnce sync.Once
	// watching is closed once Run follows other replicas' flips.
	watching chan struct{}
	// resyncEvery is how often Run re-reads the overrides; 0 is
	// followRenew with a store the replicas share, else resyncInterval.
	// This package's tests change it to tell a flip applied on its
	// notification from one the re-read caught.
	resyncEvery time.Duration
	// epoch is when the flags were made, on the monotonic clock that
	// followed counts from.
	epoch time.Time
	// readFrom is when the latest read of the store that worked began
	// (since epoch), under mu; followed is the same once the flags it
	// read serve (see Follows).
	readFrom time.Duration
	followed atomic.Int64
	// readAt is when the latest read of the store that worked began, on
	// the clock now reads: what /readyz and the router say stale writes
	// were served on.
	readAt atomic.Int64
	// renewing is the read that writes waiting for current flags share
	// (renew); nil when none is under way.
	renewing atomic.Pointer[renewal]
}

// renewal is one read of the flags for writes that found the lease
// lapsed (renew): began is when it was asked for (since epoch), done is
// closed once it is over.
type renewal struct {
	began time.Duration
	done  chan struct{}
}

// Rates are a route's recent shadow mismatch and fallback rates, for the
// gates; the flusher keeps them current in the store.
type Rates interface {
	RecentRates(ctx context.Context, route string, now time.Time) (mismatch, fallback domain.Share, err error)
}

// resyncInterval is how often a replica of a store no other replica
// shares (SQLite) re-reads the overrides, which its own changes alone
// move: to say again whether the store answers. A shared store's are
// re-read every followRenew, the safety net under LISTEN/NOTIFY too.
const resyncInterval = 5 * time.Second

// followLease is how long a replica of a shared store trusts the flags it
// serves for writes it sends straight to a backend, unjournaled, after
// the read of the store they came from began (Follows); and how long a
// change of a route into dual-write waits, once committed, before it
// answers (awaitFollowers): by then every replica that reads the store
// has read it or reads it again before such a write; and the longest a
// write waits for that read (renew). The product promises that every
// replica follows a change within a second.
const followLease = time.Second

// followRenew is how often a replica of a shared store reads the flags
// to renew its lease: a few times per lease, so that a read that is slow
// or fails now and then does not let it lapse.
const followRenew = followLease / 4

// A failed re-read is tried again after resyncRetry, doubling up to
// resyncRetryMax while the store stays unreadable: each failure can be
// one of the pool's connections the restarted server closed (up to
// its 8 idle ones), and a replica should catch up within a second of the
// store coming back.
const (
	resyncRetry    = 100 * time.Millisecond
	resyncRetryMax = time.Second
)

// storeTimeout bounds every state store call made by the control plane.
const storeTimeout = 5 * time.Second

// NewFlags returns flags over the file cfg. It reads the overrides once;
// when the store cannot be reached it serves the snapshot's (nil: none
// kept), and without a usable snapshot the file's modes, not ready (see
// Known) until the store has been read.
//
// A file that sends a route's writes straight to a backend its journaled
// writes are still on their way to is refused (an *InFlightError), as a
// reload of it would be: the start knows no earlier configuration, so
// every route is checked, and so are the routes the journal names and the
// file does not (removed or renamed while the facade was down; see
// inFlight). Started without the store, the journal cannot be
// read: Run makes the check once the store answers (checkStart).
func NewFlags(ctx context.Context, cfg *config.Config, fs FlagStore, snapshot *Snapshot, rates Rates, tables Tables, log *slog.Logger, now func() time.Time) (*Flags, error) {
	f := &Flags{
		store: fs, snapshot: snapshot, tables: tables, log: log, now: now, rates: rates,
		known: make(chan struct{}), watching: make(chan struct{}), epoch: time.Now(),
	}
	f.file.Store(cfg)
	empty := map[string]domain.Override{}
	f.overrides.Store(&empty)
	noVersions := map[string]int64{}
	f.versions.Store(&noVersions)
	noFences := map[string]int64{}
	f.fences.Store(&noFences)
	// Nothing read yet: no write goes straight before a read (Follows).
	f.followed.Store(-int64(followLease))
	if _, err := f.refresh(ctx); err != nil {
		f.serveSnapshot(err)
	}
	if f.read.Load() {
		// Nothing serves yet: switchWrites holds no write back.
		err := f.switchWrites(nil, Effective(cfg, *f.overrides.Load()), f.checkAndApply(ctx))
		switch {
		case errors.Is(err, ErrConflict):
			f.log.Error("not serving: the file would let routes overtake their journaled writes; start with the routes as they were until the writes are delivered (the facade delivers them while it serves), or discard them",
				"file", cfg.File, "error", err)
			return nil, fmt.Errorf("%s: %w; start with the route as it was until they are delivered", cfg.File, err)
		case errors.Is(err, ErrUnavailable):
			// inFlight logged the store's own words.
			return nil, errors.New("state store: the journal's open writes could not be read to check that no route of the file overtakes them; start again once the store answers")
		case err != nil:
			return nil, err
		}
	} else {
		if err := f.applyLocked(); err != nil {
			return nil, err
		}
		f.unchecked.Store(true)
		f.log.Warn("the journal's open writes could not be read, so the file's routes are not yet checked against them: a route that sends writes straight to a backend dual writes are still owed to is refused once the store answers, and the facade then exits as a start with the store does",
			"file", cfg.File)
	}
	f.markKnown()
	return f, nil
}

// checkStart makes, once the store answers, the check a start without it
// could not: every route of the file against the journal's open writes
// (switchWrites, as NewFlags does). A route that would overtake them is
// the error a start with the store exits with, which Run returns; the
// store failing again leaves the check for the next read.
func (f *Flags) checkStart(ctx context.Context) error {
	if !f.unchecked.Load() || !f.read.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	file := f.file.Load()
	err := f.switchWrites(nil, Effective(file, *f.overrides.Load()), f.checkAndApply(ctx))
	switch {
	case errors.Is(err, ErrConflict):
		f.log.Error("stopping: the state store answers again, and the file lets routes overtake their journaled writes; start with the routes as they were until the writes are delivered (the facade delivers them while it serves), or discard them",
			"file", file.File, "error", err)
		return fmt.Errorf("%s: %w; start with the route as it was until they are delivered", file.File, err)
	case errors.Is(err, ErrUnavailable):
		return nil // inFlight logged it; the next read tries again
	case err != nil:
		return err
	}
	f.unchecked.Store(false)
	f.log.Info("the file's routes are checked against the journal's open writes now that the store answers", "file", file.File)
	return nil
}

// markKnown closes Known once the overrides served came from the store or
// the snapshot; called after they are applied, so that a replica is never
// ready while its router still has the file's modes.
func (f *Flags) markKnown() {
	if f.read.Load() || f.snapshotAt.Load() != 0 {
		f.knownOnce.Do(func() { close(f.known) })
	}
}

// serveSnapshot takes the overrides from the snapshot when the store
// could not be read at start (err says why).
func (f *Flags) serveSnapshot(err error) {
	if f.snapshot == nil {
		f.log.Error("state store unreachable and no state_snapshot kept; not ready until the store has been read", "error", err)
		return
	}
	o, at, lerr := f.snapshot.Load()
	switch {
	case errors.Is(lerr, errNoSnapshot):
		f.log.Error("state store unreachable and no snapshot yet; not ready until the store has been read",
			"snapshot", f.snapshot.Path(), "error", err)
		return
	case lerr != nil:
		f.log.Error("state store unreachable and the snapshot cannot be served; not ready until the store has been read",
			"snapshot", f.snapshot.Path(), "snapshot_error", lerr, "error", err)
		return
	}
	// The snapshot keeps the overrides' versions; a route without one
	// reads as 0 until the store is read, which no change is taken at
	// once a clear moved it.
	versions := map[string]int64{}
	for route, ov := range o {
		versions[route] = ov.Version
	}
	f.overrides.Store(&o)
	f.versions.Store(&versions)
	f.snapshotAt.Store(at.UnixNano())
	f.log.Warn("state store unreachable; serving the route flags of the snapshot",
		"snapshot", f.snapshot.Path(), "saved_at", at.UTC().Format(time.RFC3339), "overrides", len(o), "error", err)
}

// refresh re-reads the overrides and the routes' fences and reports
// whether they changed. A first read, or a change, is saved to the
// snapshot.
func (f *Flags) refresh(ctx context.Context) (bool, error) {
	f.reads.Add(1)
	from, at := time.Since(f.epoch), f.now()
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	file := f.file.Load()
	routes := make([]string, len(file.Routes))
	for i := range file.Routes {
		routes[i] = file.Routes[i].Name
	}
	o, versions, fences, err := f.store.RouteFlags(ctx, routes)
	if err != nil {
		// NewFlags says what a failure at start means; here, once per
		// outage, that one began.
		if f.storeOK.Swap(false) {
			f.storeSince.Store(f.now().UnixNano())
			f.log.Error("reading route overrides failed; serving the last known flags", "error", err)
		} else if f.storeSince.Load() == 0 {
			f.storeSince.Store(f.now().UnixNano())
		}
		return false, err
	}
	if !f.storeOK.Swap(true) && f.storeSince.Load() != 0 {
		f.log.Info("route overrides readable again; resynced")
	}
	f.storeSince.Store(f.now().UnixNano())
	first := !f.read.Swap(true)
	f.snapshotAt.Store(0)
	old := *f.overrides.Load()
	changed := !sameOverrides(old, o)
	if changed {
		f.overrides.Store(&o)
	}
	if changed || first {
		f.saveSnapshot(o)
	}
	// No route's table holds a version (applyLocked): a new one changes
	// nothing served.
	f.versions.Store(&versions)
	if old := *f.fences.Load(); (old == nil) != (fences == nil) || !maps.Equal(old, fences) {
		f.fences.Store(&fences)
		changed = true
	}
	f.readFrom = from
	f.readAt.Store(at.UnixNano())
	if !changed {
		f.followed.Store(int64(from)) // what serves is what was read
	}
	return changed, nil
}

// saveSnapshot keeps o as the snapshot; a failure is logged, not fatal:
// the replica serves on, only a start without the store would serve
// older flags. Called with mu held, or before Flags is shared.
func (f *Flags) saveSnapshot(o map[string]domain.Override) {
	if f.snapshot == nil {
		return
	}
	if err := f.snapshot.Save(o, f.now()); err != nil {
		f.log.Warn("saving the state snapshot failed; a start without the store would serve older flags",
			"snapshot", f.snapshot.Path(), "error", err)
	}
}

// sameOverrides compares whole overrides, not only versions: a replica
// of a release before store migration 0180 changes an override without
// moving the route's version.
func sameOverrides(a, b map[string]domain.Override) bool {
	return maps.EqualFunc(a, b, func(x, y domain.Override) bool {
		return x.Version == y.Version && x.Mode == y.Mode && samePercent(x.Percent, y.Percent) &&
			x.Actor == y.Actor && x.Reason == y.Reason && x.UpdatedAt.Equal(y.UpdatedAt)
	})
}

func samePercent(a, b *float64) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// StoreOK reports whether the overrides could be read last time, and
// since when that has been so.
func (f *Flags) StoreOK() (bool, time.Time) {
	return f.storeOK.Load(), time.Unix(0, f.storeSince.Load())
}

// SnapshotFrom is when the snapshot this replica serves was saved: set
// while the store has not been read since the start and the overrides
// come from the snapshot; zero otherwise.
func (f *Flags) SnapshotFrom() time.Time {
	if at := f.snapshotAt.Load(); at != 0 {
		return time.Unix(0, at)
	}
	return time.Time{}
}

// Known is closed once the overrides served are known: read from the
// store, or from the snapshot at a start without the store. Until then
// the file's modes serve, and they may be wrong.
func (f *Flags) Known() <-chan struct{} { return f.known }

// SetFile applies a reloaded configuration file under the current
// overrides. An error leaves the previous table serving.
func (f *Flags) SetFile(cfg *config.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	overrides := *f.overrides.Load()
	checked := false
	ctx := context.Background()
	err := f.switchWrites(Effective(f.file.Load(), overrides), Effective(cfg, overrides), func(check journalCheck) error {
		if err := f.readJournal(ctx, check); err != nil {
			return err
		}
		checked = true
		prev := f.file.Swap(cfg)
		if err := f.applyLocked(); err != nil {
			f.file.Store(prev)
			return err
		}
		return nil
	})
	if err != nil && !checked {
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	return err
}

func (f *Flags) applyLocked() error {
	if err := f.tables.Apply(withFences(Effective(f.file.Load(), *f.overrides.Load()), *f.fences.Load())); err != nil {
		return err
	}
	f.followed.Store(int64(f.readFrom))
	return nil
}

// Follows reports whether this replica may send a write straight to a
// backend, unjournaled, on the flags it serves, taking them as current;
// when not, readAt is when they were read (zero: never, the snapshot or
// the file serves). With a store the replicas share they are current
// while read from it less than followLease ago. A change of a route into
// dual-write answers only followLease after it committed
// (awaitFollowers), so a replica that has not followed it by then (its
// notification late, its listening connection broken) does not take its
// flags for current: while the store answers it, they are read again
// first (renew), the write waiting at most followLease for that read.
// A replica that knows it is cut off (its last read failed, or a read
// for writes has been pending for followLease) does not wait: the router
// serves the write on the flags it has and counts it, because refusing
// every write of the API while the facade's own store is down makes an
// outage of the store an outage of every write; a backfill or verify
// catches what the other side missed. The usual answer is an atomic load
// and the monotonic clock, no store.
func (f *Flags) Follows(ctx context.Context) (current bool, readAt time.Time) {
	if f.leased() {
		return true, time.Time{}
	}
	if f.reachable() {
		f.renew(ctx)
		if f.leased() {
			return true, time.Time{}
		}
	}
	return false, f.ReadAt()
}

// ReadAt is when the latest read of the flags from the store that worked
// began; zero before one has.
func (f *Flags) ReadAt() time.Time {
	if at := f.readAt.Load(); at != 0 {
		return time.Unix(0, at)
	}
	return time.Time{}
}

// leased reports whether the flags serving were read less than
// followLease ago, or the store is one process's (SQLite).
func (f *Flags) leased() bool {
	return !f.store.Shared() || time.Since(f.epoch)-time.Duration(f.followed.Load()) < followLease
}

// reachable reports whether the store answered this replica's last read
// of the flags and no read for writes has waited on it for followLease:
// whether a write that found the lease lapsed may wait for a read.
func (f *Flags) reachable() bool {
	if !f.storeOK.Load() {
		return false
	}
	r := f.renewing.Load()
	return r == nil || time.Since(f.epoch)-r.began < followLease
}

// renew reads the flags again for a write that found the lease lapsed,
// and returns once the read is applied, or followLease after the read
// was asked for, or when ctx ends, whichever comes first. Writes that
// wait together share one read (Resync, in its own goroutine so that no
// write waits on mu past the bound while another read holds it).
func (f *Flags) renew(ctx context.Context) {
	r := &renewal{began: time.Since(f.epoch), done: make(chan struct{})}
	if f.renewing.CompareAndSwap(nil, r) {
		go func() {
			defer close(r.done)
			defer f.renewing.Store(nil)
			f.Resync(context.WithoutCancel(ctx))
		}()
	} else if r = f.renewing.Load(); r == nil {
		return // the read just ended: the caller looks at the lease again
	}
	wait := time.NewTimer(followLease - (time.Since(f.epoch) - r.began))
	defer wait.Stop()
	select {
	case <-r.done:
	case <-wait.C:
	case <-ctx.Done():
	}
}

// withFences is cfg with each route's fence from fences, -1 for a route
// without one (see config.Route.Fence); cfg itself when fences is nil:
// the store keeps none.
func withFences(cfg *config.Config, fences map[string]int64) *config.Config {
	if fences == nil {
		return cfg
	}
	out := *cfg
	out.Routes = slices.Clone(cfg.Routes)
	for i := range out.Routes {
		fence, ok := fences[out.Routes[i].Name]
		if !ok {
			fence = -1
		}
		out.Routes[i].Fence = fence
	}
	return &out
}

// Run follows override changes made by other replicas (LISTEN/NOTIFY on
// PostgreSQL, with a periodic re-read as a safety net and to resync after
// an outage) until ctx ends.
func (f *Flags) Run(ctx context.Context) error {
	changes, err := f.store.Watch(ctx)
	if err != nil {
		f.log.Warn("watching route overrides failed; re-reading them periodically", "error", err)
	}
	// A flip committed between the first read and the watch's start sent
	// its notification to nobody: read again now that one is listening.
	ok := f.resync(ctx)
	close(f.watching)
	if err := f.checkStart(ctx); err != nil {
		return err
	}
	// A failed read is tried again soon: the read the watcher asks for
	// once it listens again after the store restarted or failed over can
	// fail on a pooled connection the server closed, and a flip made
	// while it was away would otherwise wait a whole interval.
	retry := resyncRetry
	next := time.NewTimer(f.every())
	defer next.Stop()
	for {
		if ok {
			retry = resyncRetry
			next.Reset(f.every())
		} else {
			next.Reset(retry)
			retry = min(2*retry, resyncRetryMax, f.every())
		}
		select {
		case <-ctx.Done():
			return nil
		case _, open := <-changes:
			if !open {
				changes = nil
				continue
			}
		case <-next.C:
		}
		ok = f.resync(ctx)
		if err := f.checkStart(ctx); err != nil {
			return err
		}
	}
}

// every is how often Run re-reads the overrides (resyncEvery): with a
// store the replicas share, often enough to renew the lease Follows
// checks, so that a healthy replica's writes never wait for a read.
func (f *Flags) every() time.Duration {
	switch {
	case f.resyncEvery != 0:
		return f.resyncEvery
	case f.store.Shared():
		return followRenew
	}
	return resyncInterval
}

// Watching is closed once this replica follows other replicas' flips.
func (f *Flags) Watching() <-chan struct{} { return f.watching }

// resync re-reads the overrides, applies them if they changed, and
// reports whether the read worked.
func (f *Flags) resync(ctx context.Context) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.resyncLocked(ctx)
	return err == nil
}

// resyncLocked is resync with mu held; it reports whether the flags
// changed, and the read's error.
func (f *Flags) resyncLocked(ctx context.Context) (bool, error) {
	changed, err := f.refresh(ctx)
	if changed {
		if err := f.applyLocked(); err != nil {
			f.log.Error("applying changed route overrides failed", "error", err)
		}
	}
	f.markKnown()
	return changed, err
}

// Resync re-reads the flags and serves them at once, for a dual write
// the journal refused as decided under flags older than the store's
// (domain.ErrStaleFlags): another replica changed its route and this one
// has not followed yet (the notification is late, or the connection
// listening for it broke); and, through renew, for a write to be sent
// straight to a backend while the flags serving are not known to be
// current (Follows). It returns once a read begun after it was called is
// applied, so writes that wait together share one read.
func (f *Flags) Resync(ctx context.Context) {
	called := f.reads.Load()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reads.Load() != called {
		return // a read begun since is applied: mu was held for it
	}
	if changed, _ := f.resyncLocked(ctx); changed {
		f.log.Info("route flags read again at once for a write: another replica had changed them")
	}
}

// Effective is the configuration with overrides applied: each overridden
// route's mode and percent replaced. Overrides of routes the file no
// longer has are ignored.
func Effective(cfg *config.Config, overrides map[string]domain.Override) *config.Config {
	if len(overrides) == 0 {
		return cfg
	}
	out := *cfg
	out.Routes = make([]config.Route, len(cfg.Routes))
	copy(out.Routes, cfg.Routes)
	for i := range out.Routes {
		o, ok := overrides[out.Routes[i].Name]
		if !ok {
			continue
		}
		out.Routes[i].Mode = o.Mode
		out.Routes[i].Percent = nil
		if o.Percent != nil {
			p := config.Percent(*o.Percent)
			out.Routes[i].Percent = &p
		}
	}
	return &out
}

// Errors of flips, each mapped to a status by the admin API.
var (
	// ErrNoRoute: the configuration has no route of that name.
	ErrNoRoute = errors.New("no such route")
	// ErrStale: the route changed since the caller read it (If-Match).
	ErrStale = errors.New("the route changed since you read it; read it again and retry")
	// ErrGate: a gate refused the flip; the error says which number failed.
	ErrGate = errors.New("refused by the route's gates")
	// ErrUnavailable: the state store, and with it the audit log, cannot
	// be written, so nothing changes.
	ErrUnavailable = errors.New("the state store is unavailable, so the flip cannot be audited and is refused")
	// ErrUnconfirmed: a change's commit (a flip's, a ramp's, a change
	// request's, a repair's) went out and its answer was lost (a
	// failover, a restart), and the store could not be read since to tell
	// whether it was made (store.ErrUnconfirmed). One whose outcome the
	// store read back is answered as made, or as refused.
	ErrUnconfirmed = errors.New("the state store did not confirm the change: its commit was sent and the answer lost, so it may have been made and audited; read what you changed (or the audit log) again before you retry")
	// ErrInvalid: the flip itself is wrong (unknown mode, bad percent).
	ErrInvalid = errors.New("invalid flip")
	// ErrUnchanged: the flip asks for the mode and share the route has,
	// or clears the override of a route that has none;
	// nothing was stored, audited or sent to the replicas. Not a
	// failure: the admin API answers 200 with the route as it is.
	ErrUnchanged = errors.New("the route is already so; nothing was changed")
)

// storeRefused is what a change the state store failed answers:
// ErrUnconfirmed when its commit lost its answer and the store could not
// be read back to tell whether it was made, else ErrUnavailable: nothing
// was written. (A change whose commit lost its answer and was read back
// fails only when it was not made: see store.ErrUnconfirmed.)
func storeRefused(err error) error {
	if errors.Is(err, store.ErrUnconfirmed) {
		return ErrUnconfirmed
	}
	return ErrUnavailable
}

// invalidError is an ErrInvalid whose message says only what is wrong.
type invalidError string

func (e invalidError) Error() string        { return string(e) }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error { return invalidError(fmt.Sprintf(format, args...)) }

// Flip is a requested change to a route's flags.
type Flip struct {
	Route string
	// Actor is the named token, or "guard".
	Actor  string
	Reason string
	// Mode and Percent are the new values; nil keeps the current one.
	// Percent 100 (or nil with a new mode) means all of the traffic.
	Mode    *domain.Mode
	Percent *float64
	// Clear removes the override: the file's flags apply again.
	Clear bool
	// Force skips the gates (not the approvals); the audit entry says
	// so.
	Force bool
	// IfMatch is the version the caller read; nil skips the check.
	IfMatch *int64
	// action overrides the audit action (the guard's "rollback").
	action string
	// detail goes into the audit entry: which ramp step, which approval.
	detail string
	// approved says the flip needs no (more) approval: it is a ramp's
	// step, approved with the ramp, or an approved change request.
	approved bool
	// linked commit with the flip or not at all: the ramp taking its
	// step, the change request being applied.
	linked []store.Linked
}

// RouteFlags are a route's flags as the file sets them and as they are.
type RouteFlags struct {
	Route       *config.Route
	FileMode    domain.Mode
	FilePercent *float64
	Mode        domain.Mode
	Percent     *float64
	Override    *domain.Override
	// Version is the route's version, the ETag: every change moves it, a
	// clear too, and it never comes back (store.Store.RouteFlags); 0 for
	// a route never changed.
	Version int64
}

// flagsNow loads the routes' versions, then the overrides (see
// Flags.versions).
func (f *Flags) flagsNow() (map[string]int64, map[string]domain.Override) {
	versions := *f.versions.Load()
	return versions, *f.overrides.Load()
}

// Get returns a route's flags, or false if there is no such route.
func (f *Flags) Get(name string) (RouteFlags, bool) {
	file := f.file.Load()
	for i := range file.Routes {
		if file.Routes[i].Name == name {
			versions, overrides := f.flagsNow()
			return flagsOf(&file.Routes[i], overrides, versions), true
		}
	}
	return RouteFlags{}, false
}

// All returns every route's flags in file order.
func (f *Flags) All() []RouteFlags {
	file := f.file.Load()
	versions, overrides := f.flagsNow()
	out := make([]RouteFlags, len(file.Routes))
	for i := range file.Routes {
		out[i] = flagsOf(&file.Routes[i], overrides, versions)
	}
	return out
}

// Guarded returns the flags of the routes that have a guard.
func (f *Flags) Guarded() []RouteFlags {
	file := f.file.Load()
	versions, overrides := f.flagsNow()
	var out []RouteFlags
	for i := range file.Routes {
		if file.Routes[i].Guard != nil {
			out = append(out, flagsOf(&file.Routes[i], overrides, versions))
		}
	}
	return out
}

// Hold is a route the guard rolled back and holds: it does not act on
// the route again until an operator flips or clears it.
type Hold struct {
	// Reason is the guard's: which rate passed which bound.
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// Hold says whether the guard holds the route, and why; nil if not. The
// override the guard's rollback set is the hold: an operator's flip or
// clear replaces it, and every replica reads it from the store.
func (rf RouteFlags) Hold() *Hold {
	if rf.Override == nil || rf.Override.Actor != guardActor {
		return nil
	}
	return &Hold{Reason: rf.Override.Reason, Since: rf.Override.UpdatedAt}
}

// at reports whether the route is where someone (a ramp, a change
// request) found it: at that version, mode and percent. The version
// alone does not say so: a reload moves a route without an override,
// whose version stays.
func (rf RouteFlags) at(version int64, mode domain.Mode, percent *float64) bool {
	return rf.Version == version && rf.Mode == mode && samePercent(rf.Percent, percent)
}

// already reports whether a flip to mode and percent would leave the
// route as it is: in that mode, sending modern the same share (no
// percent is all of the traffic), and not held by the guard, whose hold
// an operator's flip releases. It is the one rule behind the admin API's
// and the status page's "nothing was changed": like a no-op update in
// LaunchDarkly or Envoy, such a flip is answered, not recorded as a
// change. A route without an override stays so: the override would only
// repeat the file.
func (rf RouteFlags) already(mode domain.Mode, percent *float64) bool {
	return rf.Hold() == nil && rf.Mode == mode && domain.FullPercent(rf.Percent) == domain.FullPercent(percent)
}

func flagsOf(r *config.Route, overrides map[string]domain.Override, versions map[string]int64) RouteFlags {
	rf := RouteFlags{Route: r, FileMode: r.Mode, Mode: r.Mode, FilePercent: percentOf(r.Percent), Version: versions[r.Name]}
	rf.Percent = rf.FilePercent
	if o, ok := overrides[r.Name]; ok {
		rf.Override = &o
		rf.Mode, rf.Percent = o.Mode, o.Percent
	}
	return rf
}

func percentOf(p *config.Percent) *float64 {
	if p == nil {
		return nil
	}
	v := float64(*p)
	return &v
}

// Apply performs a flip: checked, audited, stored, then served by this
// replica before it returns (other replicas follow through the store).
func (f *Flags) Apply(ctx context.Context, fl Flip) (RouteFlags, error) {
	cur, ok := f.Get(fl.Route)
	if !ok {
		return RouteFlags{}, ErrNoRoute
	}
	if fl.IfMatch != nil && *fl.IfMatch != cur.Version {
		return cur, ErrStale
	}
	entry := domain.AuditEntry{
		At: f.now(), Actor: fl.Actor, Route: fl.Route, Reason: fl.Reason, Forced: fl.Force,
		FromMode: cur.Mode, FromPercent: cur.Percent, Detail: fl.detail,
	}
	var next domain.Override
	if fl.Clear {
		entry.Action = "clear"
		entry.ToMode, entry.ToPercent = cur.FileMode, cur.FilePercent
	} else {
		next = domain.Override{Route: fl.Route, Mode: cur.Mode, Percent: cur.Percent, Actor: fl.Actor, Reason: fl.Reason, UpdatedAt: f.now()}
		if fl.Mode != nil {
			next.Mode, next.Percent = *fl.Mode, nil
		}
		if fl.Percent != nil {
			pct, err := domain.CheckPercent(*fl.Percent)
			if err != nil {
				return cur, invalidf("percent %s %v", domain.PercentString(*fl.Percent), err)
			}
			if m := next.Mode; !m.TakesPercent() {
				return cur, invalidf("percent applies to fallback and modern, not %s", m)
			}
			next.Percent = &pct
		}
		if fl.Mode != nil && !slices.Contains(domain.Modes, *fl.Mode) {
			return cur, invalidf("unknown mode %q", *fl.Mode)
		}
		entry.Action = "flip"
		if fl.action != "" {
			entry.Action = fl.action
		}
		entry.ToMode, entry.ToPercent = next.Mode, next.Percent
	}
	if fl.Reason == "" {
		return cur, invalidf("a reason is required; it goes into the audit log")
	}
	// A ramp's step and an approved request commit records of their own
	// with the flip, and the guard's rollback sets its hold: none is left
	// out, whatever the route's mode.
	if fl.Clear && cur.Override == nil || !fl.Clear && fl.linked == nil && fl.action == "" && cur.already(entry.ToMode, entry.ToPercent) {
		return f.unchanged(ctx, cur)
	}
	forward := domain.Later(cur.Route.Primary, cur.Mode, cur.Percent, entry.ToMode, entry.ToPercent)
	if !fl.Force && forward {
		if err := f.checkGates(ctx, cur, entry); err != nil {
			return cur, err
		}
	}
	if forward && !fl.approved {
		if n := f.approvals(cur); n > 1 {
			return cur, &ApprovalRequired{Needed: n, Route: cur, Flip: fl, ToMode: entry.ToMode, ToPercent: entry.ToPercent}
		}
	}
	f.mu.Lock()
	o := maps.Clone(*f.overrides.Load())
	var committed time.Time
	if fl.Clear {
		delete(o, fl.Route)
	} else {
		o[fl.Route] = next
	}
	err := f.switchWrites(Effective(f.file.Load(), *f.overrides.Load()), Effective(f.file.Load(), o), func(check journalCheck) error {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		linked := fl.linked
		if check != nil {
			// In the change's transaction, once the route's fence moved:
			// no other replica journals a write under the flags it
			// replaces that the check does not see.
			linked = append(slices.Clip(linked), store.CheckJournal(check))
		}
		var err error
		var stored domain.Override
		if fl.Clear {
			stored.Version, stored.Fence, err = f.store.ClearOverride(sctx, fl.Route, cur.Version, entry, linked...)
		} else {
			stored, err = f.store.SetOverride(sctx, next, cur.Version, entry, linked...)
		}
		var inFlight *InFlightError
		switch {
		case errors.As(err, &inFlight):
			return inFlight
		case errors.Is(err, store.ErrConflict):
			return ErrStale
		case err != nil:
			f.log.Error("the state store did not take the flip, or did not confirm it", "route", fl.Route, "actor", fl.Actor, "error", err)
			return storeRefused(err)
		}
		committed = time.Now()
		if !fl.Clear {
			o[fl.Route] = stored // as stored: its version
		}
		f.overrides.Store(&o)
		versions := maps.Clone(*f.versions.Load())
		versions[fl.Route] = stored.Version
		f.versions.Store(&versions)
		if fences := *f.fences.Load(); fences != nil {
			fences = maps.Clone(fences)
			fences[fl.Route] = stored.Fence
			f.fences.Store(&fences)
		}
		f.saveSnapshot(o)
		if err := f.applyLocked(); err != nil {
			f.log.Error("applying a flip failed; the previous table keeps serving", "route", fl.Route, "error", err)
		}
		return nil
	})
	if errors.Is(err, ErrStale) {
		// The store refused it: this replica may be behind the store (its
		// notification late). It reads the store now, with no write held
		// back, so that the caller is told the route as it is, and the
		// guard's next look judges that.
		if changed, _ := f.refresh(ctx); changed {
			if err := f.applyLocked(); err != nil {
				f.log.Error("applying changed route overrides failed", "error", err)
			}
		}
		cur, _ = f.Get(fl.Route)
	}
	f.mu.Unlock()
	if err != nil {
		return cur, err
	}
	if cur.Mode != domain.ModeDualWrite && entry.ToMode == domain.ModeDualWrite {
		f.awaitFollowers(ctx, committed)
	}
	f.log.Info("route flipped", "route", fl.Route, "actor", fl.Actor, "action", entry.Action,
		"from_mode", entry.FromMode, "to_mode", entry.ToMode, "forced", fl.Force)
	rf, _ := f.Get(fl.Route)
	return rf, nil
}

// awaitFollowers returns followLease after a change that moved a route
// into dual-write committed (at committed), with a store the replicas
// share: by then every other replica that reads the store either serves
// it, or reads the flags again before it sends a write straight to a
// backend (Follows); one cut off from the store serves and counts such
// writes on its last flags (strangler_stale_flags_writes_total).
// Without the wait, a replica whose notification was late would go on
// sending the route's writes straight to the backend it sent them to
// before, unjournaled, after the change answered: the other side would
// never get them. A caller that leaves ends the wait; the change is made.
func (f *Flags) awaitFollowers(ctx context.Context, committed time.Time) {
	if !f.store.Shared() {
		return
	}
	wait := time.NewTimer(time.Until(committed.Add(followLease)))
	defer wait.Stop()
	select {
	case <-wait.C:
	case <-ctx.Done():
	}
}

// unchanged answers a flip that would leave route cur as this replica
// has it: ErrUnchanged once the store says the route is so (confirm).
// Such a flip writes nothing, so nothing else asks the store: before, a
// replica that had missed another's flip (its notification late, the
// store out of its reach) answered from memory that the route already
// was what the caller asked for, while every other replica served
// another mode.
func (f *Flags) unchanged(ctx context.Context, cur RouteFlags) (RouteFlags, error) {
	now, err := f.confirm(ctx, cur)
	if err != nil {
		return now, err
	}
	return now, ErrUnchanged
}

// confirm reads the flags from the store and returns route cur as it
// is there: ErrStale if this replica had it otherwise (the caller
// decided on what it showed), ErrUnavailable if the store cannot be read.
// For a decision the store's own write does not check against the route.
func (f *Flags) confirm(ctx context.Context, cur RouteFlags) (RouteFlags, error) {
	f.mu.Lock()
	_, err := f.resyncLocked(ctx)
	f.mu.Unlock()
	if err != nil {
		return cur, ErrUnavailable
	}
	now, _ := f.Get(cur.Route.Name)
	if !now.at(cur.Version, cur.Mode, cur.Percent) {
		return now, ErrStale
	}
	return now, nil
}

// Deny audits a refused attempt to change a route (a bad token, a gate).
func (f *Flags) Deny(ctx context.Context, route, actor, detail string) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	err := f.store.AppendAudit(ctx, domain.AuditEntry{At: f.now(), Actor: actor, Action: "denied", Route: route, Detail: detail})
	if err != nil {
		f.log.Error("auditing a denied flip failed", "route", route, "error", err)
	}
}

func (f *Flags) checkGates(ctx context.Context, cur RouteFlags, entry domain.AuditEntry) error {
	gerr, err := f.gateRefusal(ctx, cur)
	if err != nil || gerr == nil {
		return err
	}
	f.Deny(ctx, cur.Route.Name, entry.Actor, fmt.Sprintf("flip to %s refused: %s", entry.ToMode, gerr.Error()))
	return gerr
}

// gateRefusal is the gate that refuses moving the route forward now, nil
// if none does; unaudited, so that a ramp can ask every second.
func (f *Flags) gateRefusal(ctx context.Context, cur RouteFlags) (*GateError, error) {
	g := cur.Route.Gates
	if g.IsZero() {
		return nil, nil
	}
	mismatch, fallback, err := f.rates.RecentRates(ctx, cur.Route.Name, f.now())
	if err != nil {
		f.log.Error("reading the rates for the gates failed", "route", cur.Route.Name, "error", err)
		return nil, ErrUnavailable
	}
	for _, gc := range gateChecks(g, mismatch, fallback) {
		if !gc.Passes {
			return &GateError{Gate: gc.Gate, Rate: gc.Rate, Value: gc.ValuePercent, Limit: gc.LimitPercent}, nil
		}
	}
	return nil, nil
}

// GateCheck is one configured gate judged at a route's recent rates.
type GateCheck struct {
	// Gate is the setting (max_mismatch_rate), Rate what it bounds.
	Gate string `json:"gate"`
	Rate string `json:"rate"`
	// ValuePercent is the rate now, LimitPercent the gate's bound.
	ValuePercent float64 `json:"value_percent"`
	LimitPercent float64 `json:"limit_percent"`
	// Passes is false when the gate refuses a flip to a later stage.
	Passes bool `json:"passes"`
}

// gateChecks judges each configured gate at the recent mismatch and
// fallback rates, the mismatch gate first: the one rule behind both a
// refused flip and the report's blockers.
func gateChecks(g config.Gates, mismatch, fallback domain.Share) []GateCheck {
	var out []GateCheck
	if g.MaxMismatchRate != nil {
		out = append(out, GateCheck{Gate: "max_mismatch_rate", Rate: "shadow mismatch rate",
			ValuePercent: mismatch.Percent(), LimitPercent: float64(*g.MaxMismatchRate), Passes: !mismatch.Past(float64(*g.MaxMismatchRate))})
	}
	if g.MaxFallbackRate != nil {
		out = append(out, GateCheck{Gate: "max_fallback_rate", Rate: "fallback rate",
			ValuePercent: fallback.Percent(), LimitPercent: float64(*g.MaxFallbackRate), Passes: !fallback.Past(float64(*g.MaxFallbackRate))})
	}
	return out
}

// GateError is a flip a gate refused: which rate failed, its value and the
// bound, both in percent.
type GateError struct {
	Gate, Rate   string
	Value, Limit float64
}

func (e *GateError) Error() string {
	return fmt.Sprintf("refused by the route's gates: %s %.3g%% is above the gate's %v%%", e.Rate, e.Value, e.Limit)
}

// Is makes errors.Is(err, ErrGate) true.
func (e *GateError) Is(target error) bool { return target == ErrGate }
