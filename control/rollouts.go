package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"strangler/domain"
	"strangler/stats"
	"strangler/store"
)

// RampStore keeps scheduled ramps, and the lease that lets one replica
// at a time drive them.
type RampStore interface {
	Ramps(ctx context.Context) (map[string]store.Ramp, error)
	StartRamp(ctx context.Context, r store.Ramp, a domain.AuditEntry, linked ...store.Linked) (store.Ramp, error)
	UpdateRamp(ctx context.Context, r store.Ramp, expectVersion int64, a domain.AuditEntry) (store.Ramp, error)
	TakeLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error
}

// ChangeStore keeps change requests.
type ChangeStore interface {
	CreateChange(ctx context.Context, c store.Change, a domain.AuditEntry) (store.Change, error)
	Change(ctx context.Context, id int64) (store.Change, error)
	Changes(ctx context.Context, f store.ChangeFilter) ([]store.Change, error)
	UpdateChange(ctx context.Context, c store.Change, expectVersion int64, now func() time.Time, a domain.AuditEntry) (store.Change, error)
	ExpireChanges(ctx context.Context, now time.Time, audit func(store.Change) domain.AuditEntry) ([]store.Change, error)
}

// Rollouts are the changes of routing that take more than one flip or
// more than one person: scheduled ramps (ramps.go, driven by rampdriver.go)
// and change requests on routes that need approvals (approvals.go). Their
// state lives in the store, so every replica shows it and any one of
// them can drive the ramps; one at a time does, under a lease.
type Rollouts struct {
	flags   *Flags
	ramps   RampStore
	changes ChangeStore
	// tokens are the admin tokens as configured now (reloads replace
	// them): a running ramp pauses when whoever started or approved it
	// may no longer change routes (see access).
	tokens *Tokens
	log    *slog.Logger
	now    func() time.Time
	// owner names this replica on the ramps' lease.
	owner string
	// offset is the store's clock's lead on now's, in nanoseconds, as
	// last measured (syncClock).
	offset atomic.Int64

	// mu serialises the driver's checks; the fields after it are theirs.
	mu sync.Mutex
	// leading says this replica held the lease at its last try, and
	// tryAt is when to renew (or try to take) it next.
	leading bool
	tryAt   time.Time
	// leaseFailing says the last try could not reach the store.
	leaseFailing bool
	// gatesAsked is when the driver last asked a waiting ramp's gates,
	// by route: each asking flushes this replica's counts to the store.
	gatesAsked map[string]time.Time
}

// NewRollouts returns the ramps and change requests of the routes flags
// serves, kept in ramps and changes (one store, in practice), started and
// approved by the admin tokens in tokens.
func NewRollouts(flags *Flags, ramps RampStore, changes ChangeStore, tokens *Tokens, log *slog.Logger, now func() time.Time) *Rollouts {
	return &Rollouts{flags: flags, ramps: ramps, changes: changes, tokens: tokens, log: log, now: now, owner: replicaName(),
		gatesAsked: map[string]time.Time{}}
}

// syncClock measures how far the store's clock is ahead of this
// replica's (store.Store.ClockOffset); if it cannot tell now, clock keeps
// the lead last measured. Change requests and ramps are timed by clock:
// a request's expiry and a ramp's next step are set by one replica and
// tested by others, and replicas' own clocks may be hours apart.
func (r *Rollouts) syncClock(ctx context.Context) {
	clk, ok := r.changes.(stats.Clock)
	if !ok {
		return
	}
	sctx, cancel := storeCall(ctx)
	defer cancel()
	if off, err := clk.ClockOffset(sctx); err == nil {
		r.offset.Store(int64(off))
	}
}

// clock is now on the store's clock, by the lead syncClock last measured.
func (r *Rollouts) clock() time.Time { return r.now().Add(time.Duration(r.offset.Load())) }

// replicaName names this process among the replicas: host, process id
// and a random suffix, since containers often share both.
func replicaName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Errors of ramps and change requests that the admin API answers with
// their own status; each is returned with a message saying what to do.
var (
	// ErrConflict: the action does not fit the ramp or request as it is
	// (409), such as a second ramp of a route.
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the action is not this token's to take (403), such
	// as approving one's own request.
	ErrForbidden = errors.New("forbidden")
)

// conflictError is an ErrConflict whose message says what is wrong.
type conflictError string

func (e conflictError) Error() string        { return string(e) }
func (e conflictError) Is(target error) bool { return target == ErrConflict }

func conflictf(format string, args ...any) error { return conflictError(fmt.Sprintf(format, args...)) }

// forbiddenError is an ErrForbidden whose message says why.
type forbiddenError string

func (e forbiddenError) Error() string        { return string(e) }
func (e forbiddenError) Is(target error) bool { return target == ErrForbidden }

// storeCall gives a store call of the control plane its deadline.
func storeCall(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, storeTimeout)
}
