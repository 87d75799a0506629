package control

// Four eyes: on a route with approvals: N, a flip, clear or ramp that
// moves it forward is a change request, applied once N-1 other token
// names approved it within 24 hours. Moving a route back (an operator's
// rollback, the guard) needs no approval; a ramp needs it once, when it
// is started, and its steps none.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"strangler/domain"
	"strangler/store"
)

// changeTTL is how long a change request waits for its approvals.
const changeTTL = 24 * time.Hour

// approvals is how many token names must agree to move the route
// forward, its requester included: 1 when it needs no approval.
func (f *Flags) approvals(rf RouteFlags) int { return f.file.Load().ApprovalsFor(rf.Route) }

// ApprovalRequired is a flip that would move a route needing approvals
// forward: it becomes a change request (Rollouts.RequestFlip) instead of
// taking effect.
type ApprovalRequired struct {
	// Needed is how many token names must agree, the requester included.
	Needed int
	// Route is the route as the flip found it.
	Route RouteFlags
	Flip  Flip
	// ToMode and ToPercent are where the flip would take the route.
	ToMode    domain.Mode
	ToPercent *float64
}

func (e *ApprovalRequired) Error() string {
	return fmt.Sprintf("moving %s forward needs %d token names to agree: it is a change request for another to approve",
		e.Route.Route.Name, e.Needed)
}

// RequestFlip makes the flip an approval stopped into a pending change
// request, audited.
func (r *Rollouts) RequestFlip(ctx context.Context, need *ApprovalRequired) (store.Change, error) {
	fl, cur := need.Flip, need.Route
	kind := store.ChangeFlip
	if fl.Clear {
		kind = store.ChangeClear
	}
	return r.request(ctx, store.Change{
		Route: cur.Route.Name, Kind: kind, Mode: need.ToMode, Percent: need.ToPercent, Forced: fl.Force,
		FromMode: cur.Mode, FromPercent: cur.Percent, BaseVersion: cur.Version,
		Requester: fl.Actor, Reason: fl.Reason, Needed: need.Needed - 1,
	})
}

// request stores c as a pending change request, audited; a route with a
// pending request keeps it, and the error names it. A pending request
// past its expiry that the driver has not recorded yet is no longer
// pending (store.Change.StateAt): it is recorded expired, audited, and
// c takes its place.
func (r *Rollouts) request(ctx context.Context, c store.Change) (store.Change, error) {
	r.syncClock(ctx)
	now := r.clock()
	c.CreatedAt, c.ExpiresAt = now, now.Add(changeTTL)
	ctx, cancel := storeCall(ctx)
	defer cancel()
	entry := domain.AuditEntry{
		At: now, Actor: c.Requester, Action: "change_request", Route: c.Route, Reason: c.Reason, Forced: c.Forced,
		FromMode: c.FromMode, FromPercent: c.FromPercent, ToMode: c.Mode, ToPercent: c.Percent,
		Detail: fmt.Sprintf("change request {id} (%s) waits for %s within %g h", changeText(c), approvalsText(c.Needed), changeTTL.Hours()),
	}
	for expired := false; ; expired = true {
		created, err := r.changes.CreateChange(ctx, c, entry)
		if err == nil {
			r.log.Info("change requested", "route", c.Route, "actor", c.Requester, "change_request", created.ID, "kind", string(c.Kind))
			return created, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			r.log.Error("making a change request failed", "route", c.Route, "error", err)
			return created, storeRefused(err)
		}
		pending, perr := r.changes.Changes(ctx, store.ChangeFilter{Route: c.Route, State: store.ChangePending, Limit: 1})
		if perr != nil || len(pending) != 1 {
			return created, conflictf("%s has a pending change request already; approve or reject it first", c.Route)
		}
		if p := pending[0]; expired || p.StateAt(now) == store.ChangePending {
			return created, conflictf("%s has a pending change request already: %d, %s's %s; approve or reject it first",
				c.Route, p.ID, p.Requester, changeText(p))
		}
		r.expireChanges(ctx, now)
	}
}

// Changes lists change requests, newest first: the pending ones, or all
// of them, each as it stands now (store.Change.StateAt): a pending
// request past its expiry is expired, and not among the pending ones,
// before the driver records it so.
func (r *Rollouts) Changes(ctx context.Context, f store.ChangeFilter) ([]store.Change, error) {
	r.syncClock(ctx)
	ctx, cancel := storeCall(ctx)
	defer cancel()
	list, err := r.changes.Changes(ctx, f)
	if err != nil {
		r.log.Error("reading the change requests failed", "error", err)
		return nil, ErrUnavailable
	}
	now := r.clock()
	out := list[:0]
	for _, c := range list {
		if c.State = c.StateAt(now); f.State == "" || c.State == f.State {
			out = append(out, c)
		}
	}
	return out, nil
}

// Change returns one change request, as Changes shows it.
func (r *Rollouts) Change(ctx context.Context, id int64) (store.Change, error) {
	r.syncClock(ctx)
	sctx, cancel := storeCall(ctx)
	defer cancel()
	c, err := r.changes.Change(sctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return c, apiError(http.StatusNotFound, "no change request %d", id)
	case err != nil:
		r.log.Error("reading a change request failed", "change_request", id, "error", err)
		return c, ErrUnavailable
	}
	c.State = c.StateAt(r.clock())
	return c, nil
}

// decidable reads a pending change request for actor to decide on; an
// expired one is recorded as such, audited, and refused.
func (r *Rollouts) decidable(ctx context.Context, id int64) (store.Change, error) {
	c, err := r.Change(ctx, id)
	if err != nil {
		return c, err
	}
	switch {
	case c.State == store.ChangeExpired:
		return c, r.expired(ctx, c)
	case c.State != store.ChangePending:
		return c, conflictf("change request %d is %s%s: there is nothing left to decide", id, c.State, decidedText(c))
	}
	return c, nil
}

// Approve adds approver's approval to change request id. Its requester
// may not approve it, nor may anyone twice. The last approval it needs
// applies it, as the requester's flip (or ramp) naming the approvers, in
// one transaction with the request; if the route changed since the
// request was made, nothing is applied and the request is void (stale).
// So it is, too, when its requester may no longer change routes:
// whyNot says why the token named so may not ("" when it may).
func (r *Rollouts) Approve(ctx context.Context, id int64, approver, reason string, whyNot func(requester string) string) (store.Change, error) {
	// A reason is optional here, and bounded as everywhere.
	if err := checkReasonText(reason); err != nil {
		return store.Change{}, err
	}
	c, err := r.decidable(ctx, id)
	if err != nil {
		return c, err
	}
	switch {
	case approver == c.Requester:
		return c, forbiddenError(fmt.Sprintf("%s requested change request %d: another token name must approve it (four eyes)", approver, id))
	case slices.Contains(c.Approvers, approver):
		return c, conflictf("%s approved change request %d already; it waits for %s", approver, id, approvalsText(c.Needed-len(c.Approvers)))
	}
	if why := whyNot(c.Requester); why != "" {
		// Approving it would make the change as theirs.
		return c, r.void(ctx, c, fmt.Sprintf("%s, who asked for it, may no longer change routes: %s", c.Requester, why))
	}
	now := r.clock()
	next := c
	next.Approvers = append(slices.Clone(c.Approvers), approver)
	audit := domain.AuditEntry{
		At: now, Actor: approver, Action: "change_approve", Route: c.Route, Reason: reason, Forced: c.Forced,
		FromMode: c.FromMode, FromPercent: c.FromPercent, ToMode: c.Mode, ToPercent: c.Percent,
		Detail: fmt.Sprintf("change request %d (%s's %s): approval %d of %d", id, c.Requester, changeText(c), len(next.Approvers), c.Needed),
	}
	if len(next.Approvers) < c.Needed {
		sctx, cancel := storeCall(ctx)
		defer cancel()
		next, err = r.changes.UpdateChange(sctx, next, c.Version, r.clock, audit)
		return next, r.changeFailed(ctx, id, err)
	}
	next.State, next.DecidedBy, next.DecidedAt = store.ChangeApplied, approver, now
	link := store.LinkChange(next, c.Version, r.clock, audit)
	if err := r.apply(ctx, next, link); err != nil {
		return c, err
	}
	next.Version = c.Version + 1
	r.log.Info("change request applied", "route", c.Route, "change_request", id, "actor", approver, "requester", c.Requester)
	return next, nil
}

// apply makes the change c asks for, linked with the request's update:
// the requester's flip, clear or ramp, now approved by c.Approvers.
func (r *Rollouts) apply(ctx context.Context, c store.Change, link store.Linked) error {
	rf, ok := r.flags.Get(c.Route)
	approvers := strings.Join(c.Approvers, ", ")
	var err error
	switch {
	case r.staleWhy(c, rf, ok) != "":
		err = ErrStale
	case c.Kind == store.ChangeRamp:
		var p RampPlan
		if p, err = plan(rf, RampPlan{Mode: c.Mode, Steps: c.RampSteps, Every: c.RampEvery}); err == nil {
			_, err = r.start(ctx, rf, p, c.Requester, c.Reason, approvers, link)
		}
	default:
		fl := Flip{
			Route: c.Route, Actor: c.Requester, Reason: c.Reason, Force: c.Forced, IfMatch: &c.BaseVersion,
			Clear: c.Kind == store.ChangeClear, approved: true, linked: []store.Linked{link},
			detail: fmt.Sprintf("change request %d, approved by %s", c.ID, approvers),
		}
		if !fl.Clear {
			mode := c.Mode
			fl.Mode, fl.Percent = &mode, c.Percent
		}
		_, err = r.flags.Apply(ctx, fl)
	}
	if !errors.Is(err, ErrStale) {
		return err
	}
	// The route, or the request, changed since it was read. This replica
	// may not have heard of a change made on another yet: read again.
	r.flags.resync(ctx)
	rf, ok = r.flags.Get(c.Route)
	why := r.staleWhy(c, rf, ok)
	if why == "" {
		return r.changeFailed(ctx, c.ID, store.ErrConflict) // the request changed: someone decided it meanwhile
	}
	return r.void(ctx, c, why)
}

// staleWhy says how the route (rf; ok false when the configuration no
// longer has it) is no longer where change request c found it, so that
// applying c would do something nobody approved; "" when it is where c
// found it (RouteFlags.at), and, for a clear, the file's mode it goes
// back to is still the one asked for: a reload may move that. A reload
// that raised the route's approvals voids it too: it got fewer than the
// configuration asks for now.
func (r *Rollouts) staleWhy(c store.Change, rf RouteFlags, ok bool) string {
	switch {
	case !ok:
		return fmt.Sprintf("%s is no longer in the configuration", c.Route)
	case r.flags.approvals(rf)-1 > c.Needed:
		return fmt.Sprintf("%s now needs %d token names to agree, the requester included, and the request asked for %d",
			c.Route, r.flags.approvals(rf), c.Needed+1)
	case !rf.at(c.BaseVersion, c.FromMode, c.FromPercent):
		why := fmt.Sprintf("%s changed since the request was made: it is %s", c.Route, ModeText(rf.Mode, rf.Percent))
		if o := rf.Override; o != nil {
			why += ", set by " + o.Actor
		}
		return why
	case c.Kind == store.ChangeClear && (rf.FileMode != c.Mode || !samePercent(rf.FilePercent, c.Percent)):
		return fmt.Sprintf("%s changed since the request was made: the configuration file now says %s, so clearing it would move it there",
			c.Route, ModeText(rf.FileMode, rf.FilePercent))
	}
	return ""
}

// void records that change request c cannot be applied any more: its
// route changed since it was made, as why says.
func (r *Rollouts) void(ctx context.Context, c store.Change, why string) error {
	next := c
	next.State, next.Decision, next.DecidedAt = store.ChangeStale, why, r.clock()
	sctx, cancel := storeCall(ctx)
	defer cancel()
	_, err := r.changes.UpdateChange(sctx, next, c.Version, r.clock, domain.AuditEntry{
		At: next.DecidedAt, Actor: c.Requester, Action: "change_stale", Route: c.Route, Reason: c.Reason,
		Detail: fmt.Sprintf("change request %d (%s) is void: %s; nothing was applied", c.ID, changeText(c), why),
	})
	if err := r.changeFailed(ctx, c.ID, err); err != nil {
		return err
	}
	return conflictf("nothing was applied: %s; change request %d is void, ask for a new one", why, c.ID)
}

// Reject turns change request id down, audited with actor's reason. Its
// requester may reject it too: that withdraws it.
func (r *Rollouts) Reject(ctx context.Context, id int64, actor, reason string) (store.Change, error) {
	c, err := r.decidable(ctx, id)
	if err != nil {
		return c, err
	}
	now := r.clock()
	next := c
	next.State, next.DecidedBy, next.Decision, next.DecidedAt = store.ChangeRejected, actor, reason, now
	what := "rejected"
	if actor == c.Requester {
		what = "withdrawn by its requester"
	}
	sctx, cancel := storeCall(ctx)
	defer cancel()
	next, err = r.changes.UpdateChange(sctx, next, c.Version, r.clock, domain.AuditEntry{
		At: now, Actor: actor, Action: "change_reject", Route: c.Route, Reason: reason,
		FromMode: c.FromMode, FromPercent: c.FromPercent, ToMode: c.Mode, ToPercent: c.Percent,
		Detail: fmt.Sprintf("change request %d (%s's %s) %s", id, c.Requester, changeText(c), what),
	})
	if err := r.changeFailed(ctx, id, err); err != nil {
		return c, err
	}
	r.log.Info("change request rejected", "route", c.Route, "change_request", id, "actor", actor)
	return next, nil
}

// changeFailed says why a change request could not be updated. On a
// conflict it says how the request stands now: decided by another
// operator or replica meanwhile, expired, or still pending with another
// approval that came first.
func (r *Rollouts) changeFailed(ctx context.Context, id int64, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrConflict):
		c, cerr := r.Change(ctx, id)
		if cerr == nil && c.State == store.ChangeExpired {
			// It expired before the decision reached the store.
			return r.expired(ctx, c)
		}
		if cerr == nil && c.State != store.ChangePending {
			return conflictf("change request %d is %s%s, settled as you decided: there is nothing left to decide", id, c.State, decidedText(c))
		}
		return conflictf("change request %d changed as you decided (another approval came first); read it again", id)
	}
	r.log.Error("updating a change request failed", "change_request", id, "error", err)
	return storeRefused(err)
}

// expired records the change requests that expired by now, c among
// them, and says that c expired.
func (r *Rollouts) expired(ctx context.Context, c store.Change) error {
	r.expireChanges(ctx, r.clock())
	return conflictf("change request %d expired at %s without enough approvals; ask for a new one",
		c.ID, c.ExpiresAt.UTC().Format(time.RFC3339))
}

// expireChanges records the change requests that expired by now, each
// audited once whichever replica gets there first.
func (r *Rollouts) expireChanges(ctx context.Context, now time.Time) {
	ctx, cancel := storeCall(ctx)
	defer cancel()
	expired, err := r.changes.ExpireChanges(ctx, now, func(c store.Change) domain.AuditEntry {
		return domain.AuditEntry{
			At: now, Actor: c.Requester, Action: "change_expired", Route: c.Route, Reason: c.Reason,
			Detail: fmt.Sprintf("change request %d (%s) expired after %g h with %d of %d approvals; nothing was applied",
				c.ID, changeText(c), changeTTL.Hours(), len(c.Approvers), c.Needed),
		}
	})
	if err != nil {
		r.log.Warn("expiring old change requests failed; tried again shortly", "error", err)
	}
	for _, c := range expired {
		r.log.Info("change request expired", "route", c.Route, "change_request", c.ID)
	}
}

// changeText says what a change request asks for: "fallback 25% →
// modern", "clear: shadow → legacy", "ramp to fallback at 1%, 5% every
// 30m".
func changeText(c store.Change) string {
	switch c.Kind {
	case store.ChangeRamp:
		return "ramp " + planText(store.Ramp{Mode: c.Mode, Steps: c.RampSteps, Every: c.RampEvery})
	case store.ChangeClear:
		return "clear: " + ModeText(c.FromMode, c.FromPercent) + " → " + ModeText(c.Mode, c.Percent)
	}
	s := ModeText(c.FromMode, c.FromPercent) + " → " + ModeText(c.Mode, c.Percent)
	if c.Forced {
		s += ", forced past the gates"
	}
	return s
}

// approvalsText says how many approvals: "1 approval", "2 approvals".
func approvalsText(n int) string {
	if n == 1 {
		return "1 approval"
	}
	return fmt.Sprintf("%d approvals", n)
}

// decidedText says who decided a request and why: " by bob: too early".
func decidedText(c store.Change) string {
	s := ""
	if c.DecidedBy != "" {
		s = " by " + c.DecidedBy
	}
	if c.Decision != "" {
		s += ": " + c.Decision
	}
	return s
}
