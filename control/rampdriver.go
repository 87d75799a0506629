package control

// The ramp driver: every second, on the one replica holding the ramps'
// lease, it takes the running ramps' due steps and expires old change
// requests. Correctness does not rest on the lease: a step commits only
// if neither the route nor the ramp changed since they were read, so two
// replicas that both think they lead (a lease that lapsed mid-step) take
// a step once.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/store"
)

const (
	// rampLease names the lease of the replica driving the ramps.
	rampLease = "ramps"
	// rampTick is how often the driver looks at the ramps.
	rampTick = time.Second
	// leaseTTL is how long a lease lasts unrenewed: a replica that dies
	// hands the ramps over to another after this long (one that stops
	// hands them over at once). leaseRenew is how often the holder renews
	// it, and the others try to take it.
	leaseTTL   = 15 * time.Second
	leaseRenew = 5 * time.Second
	// waitingRefresh is how often a waiting ramp's reason is brought up
	// to date with the gate's latest number.
	waitingRefresh = time.Minute
	// gatesRecheck is how often a waiting ramp asks its gates again.
	gatesRecheck = 10 * time.Second
)

// Run drives the ramps whenever this replica holds their lease, until
// ctx ends; then it gives the lease up, so that another replica takes
// over at once.
func (r *Rollouts) Run(ctx context.Context) error {
	tick := time.NewTicker(rampTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			r.release()
			return nil
		case <-tick.C:
			r.Check(ctx)
		}
	}
}

// Check does one round of the driver: renew or take the lease, and if
// this replica holds it, expire old change requests and take the running
// ramps' due steps.
func (r *Rollouts) Check(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lead(ctx, r.now()) {
		return
	}
	r.syncClock(ctx)
	now := r.clock()
	r.expireChanges(ctx, now)
	sctx, cancel := storeCall(ctx)
	all, err := r.ramps.Ramps(sctx)
	cancel()
	if err != nil {
		r.log.Warn("reading the ramps failed; no step is taken until the store answers", "error", err)
		return
	}
	routes := make([]string, 0, len(all))
	for route, rp := range all {
		if rp.State == store.RampRunning {
			routes = append(routes, route)
		}
	}
	slices.Sort(routes)
	for _, route := range routes {
		r.advance(ctx, all[route], now)
	}
}

// lead renews or takes the ramps' lease when due, and reports whether
// this replica holds it.
func (r *Rollouts) lead(ctx context.Context, now time.Time) bool {
	if now.Before(r.tryAt) {
		return r.leading
	}
	r.tryAt = now.Add(leaseRenew)
	ctx, cancel := storeCall(ctx)
	defer cancel()
	ok, err := r.ramps.TakeLease(ctx, rampLease, r.owner, leaseTTL)
	if err != nil && !r.leaseFailing {
		// Once per outage: the store's own errors say the rest.
		r.log.Warn("taking the ramps' lease failed; another replica drives them once it lapses", "owner", r.owner, "error", err)
	}
	r.leaseFailing = err != nil
	switch {
	case ok && !r.leading:
		r.log.Info("this replica drives the scheduled ramps", "owner", r.owner)
	case !ok && r.leading:
		r.log.Info("this replica no longer drives the scheduled ramps", "owner", r.owner)
	}
	r.leading = ok
	return ok
}

// Leading reports whether this replica held the ramps' lease at its last
// try. The lease is the cluster's one for work done once for all
// replicas: besides the ramps and the change requests' expiry, the
// counts purge (CountsPurger.Lead) runs only where it is held.
func (r *Rollouts) Leading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
}

// release gives the lease up, if this replica holds it.
func (r *Rollouts) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leading {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.ramps.ReleaseLease(ctx, rampLease, r.owner); err != nil {
		r.log.Warn("giving up the ramps' lease failed; another replica takes over once it lapses", "error", err)
		return
	}
	r.leading = false
}

// advance takes a running ramp's step if it is due and the gates let it,
// or stops the ramp if someone else moved its route.
func (r *Rollouts) advance(ctx context.Context, rp store.Ramp, now time.Time) {
	rf, ok := r.flags.Get(rp.Route)
	if !ok {
		// This replica's file no longer has the route (a reload removed
		// or renamed it, maybe here alone): its ramp waits for it, and
		// says so once a step is due. Before, it waited in silence,
		// running, its step overdue, no alert.
		if !now.Before(rp.NextAt) {
			r.wait(ctx, rp, fmt.Sprintf("the configuration of the replica driving the ramps (%s) has no route %s: a reload removed or renamed it there", r.owner, rp.Route), now)
		}
		return
	}
	if !rampAt(rp, rf) {
		// This replica may not have heard of the latest change yet (the
		// last step, taken by the replica that led before): read again.
		r.flags.resync(ctx)
		if rf, _ = r.flags.Get(rp.Route); !rampAt(rp, rf) {
			r.interrupted(ctx, rp, rf, now)
			return
		}
	}
	if why := r.access(rp); why != "" {
		r.orphaned(ctx, rp, rf, why, now)
		return
	}
	if now.Before(rp.NextAt) {
		return
	}
	if rp.Waiting != "" && now.Sub(r.gatesAsked[rp.Route]) < gatesRecheck {
		return
	}
	r.gatesAsked[rp.Route] = now
	gate, err := r.flags.gateRefusal(ctx, rf)
	if err != nil {
		return // logged; the step waits for the rates
	}
	if gate != nil {
		if rp.Waiting == "" {
			r.log.Info("ramp waiting for its gates", "route", rp.Route, "gate", gate.Gate, "value_percent", gate.Value, "limit_percent", gate.Limit)
		}
		r.wait(ctx, rp, gate.Error(), now)
		return
	}
	mode, target := rp.Mode, rp.Steps[rp.Taken]
	next := rp
	next.Taken++
	next.Waiting, next.WaitingSince, next.UpdatedAt, next.NextAt = "", time.Time{}, now, now.Add(rp.Every)
	next.AtMode, next.AtPercent, next.AtVersion = rp.Mode, &target, rf.Version+1
	if next.Taken == len(rp.Steps) {
		next.State, next.Note = store.RampDone, fmt.Sprintf("reached %s, its last step", ModeText(mode, &target))
	}
	detail := fmt.Sprintf("ramp step %d of %d (%s), started by %s", next.Taken, len(rp.Steps), planText(rp), rp.Actor)
	if rp.ApprovedBy != "" {
		detail += ", approved by " + rp.ApprovedBy
	}
	version := rf.Version
	_, err = r.flags.Apply(ctx, Flip{
		Route: rp.Route, Actor: config.RampActor, Reason: rp.Reason, Mode: &mode, Percent: &target, IfMatch: &version,
		approved: true, detail: detail, linked: []store.Linked{store.LinkRamp(next, rp.Version, domain.AuditEntry{})},
	})
	switch {
	case errors.Is(err, ErrStale):
		// The route or the ramp changed as the step was taken: the next
		// round sees how.
	case errors.Is(err, ErrGate):
		// The rates moved between the two looks; the next round waits.
	case err != nil:
		r.log.Error("a ramp's step failed; it is tried again", "route", rp.Route, "error", err)
	default:
		r.log.Info("ramp stepped", "route", rp.Route, "step", next.Taken, "steps", len(rp.Steps),
			"to_mode", rp.Mode, "to_percent", target, "state", string(next.State))
	}
}

// rampAt reports whether the route is where the ramp left it (or found
// it, before its first step).
func rampAt(rp store.Ramp, rf RouteFlags) bool { return rf.at(rp.AtVersion, rp.AtMode, rp.AtPercent) }

// interrupted stops a running ramp whose route someone else moved: the
// guard's rollback holds it, anyone else's change pauses it. Either way
// an operator resumes it from where the route is then, or cancels it.
func (r *Rollouts) interrupted(ctx context.Context, rp store.Ramp, rf RouteFlags, now time.Time) {
	next := rp
	next.UpdatedAt, next.Waiting, next.WaitingSince = now, "", time.Time{}
	action, at := "ramp_pause", ModeText(rf.Mode, rf.Percent)
	switch {
	case rf.Hold() != nil:
		action, next.State = "ramp_hold", store.RampHeld
		next.Note = fmt.Sprintf("the guard stepped %s back to %s and holds it: %s", rp.Route, at, rf.Hold().Reason)
	case rf.Override == nil:
		next.State = store.RampPaused
		next.Note = fmt.Sprintf("%s's override was cleared: it is back to the file's %s; resume to go on from there, or cancel", rp.Route, at)
	default:
		next.State = store.RampPaused
		next.Note = fmt.Sprintf("%s moved %s by hand to %s; resume to go on from there, or cancel", rf.Override.Actor, rp.Route, at)
	}
	sctx, cancel := storeCall(ctx)
	defer cancel()
	_, err := r.ramps.UpdateRamp(sctx, next, rp.Version, domain.AuditEntry{
		At: now, Actor: config.RampActor, Action: action, Route: rp.Route, Reason: rp.Reason,
		Detail: "ramp " + rampText(next) + ": " + next.Note,
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		r.log.Error("stopping a ramp whose route was moved failed; it is tried again", "route", rp.Route, "error", err)
		return
	}
	if err == nil {
		r.log.Warn("ramp stopped: its route was moved", "route", rp.Route, "state", string(next.State), "mode", string(rf.Mode))
	}
}

// wait records that a due step waits (for a gate, for its route), and
// why: audited once when the wait begins, its reason brought up to date
// every minute.
func (r *Rollouts) wait(ctx context.Context, rp store.Ramp, why string, now time.Time) {
	if rp.Waiting != "" && now.Sub(rp.UpdatedAt) < waitingRefresh {
		return
	}
	target := rp.Steps[rp.Taken]
	next := rp
	next.Waiting, next.UpdatedAt = why, now
	if rp.Waiting == "" {
		next.WaitingSince = now
		r.flags.Deny(ctx, rp.Route, config.RampActor,
			fmt.Sprintf("ramp step %d of %d, to %s, waits: %s", rp.Taken+1, len(rp.Steps), ModeText(rp.Mode, &target), why))
	}
	sctx, cancel := storeCall(ctx)
	defer cancel()
	if _, err := r.ramps.UpdateRamp(sctx, next, rp.Version, domain.AuditEntry{}); err != nil && !errors.Is(err, store.ErrConflict) {
		r.log.Warn("recording why a ramp waits failed", "route", rp.Route, "error", err)
	}
}

// access says why the ramp may no longer go on as it was started, "" when
// it may: whoever started or approved it may no longer change routes
// (their token removed or renamed, expired or made a viewer since). A
// step is a flip in their names; the approval of a four-eyes ramp was
// theirs, and they no longer have access.
func (r *Rollouts) access(rp store.Ramp) string {
	if r.tokens == nil {
		return ""
	}
	now := r.now()
	if why := r.tokens.whyMayNotChange(rp.Actor, now); why != "" {
		return fmt.Sprintf("%s, who started it, may no longer change routes: %s", rp.Actor, why)
	}
	for _, name := range approvers(rp) {
		if why := r.tokens.whyMayNotChange(name, now); why != "" {
			return fmt.Sprintf("%s, who approved it, may no longer change routes: %s", name, why)
		}
	}
	return ""
}

// approvers are the token names that approved the ramp, none when its
// route needed no approval.
func approvers(rp store.Ramp) []string {
	if rp.ApprovedBy == "" {
		return nil
	}
	return strings.Split(rp.ApprovedBy, ", ")
}

// orphaned pauses a running ramp that may no longer go on as it was
// started (access says why), audited as ramp_pause by ramp and logged.
// An operator resumes it, as theirs, or cancels it; a four-eyes ramp is
// cancelled and asked for again, approval included (ActOnRamp).
func (r *Rollouts) orphaned(ctx context.Context, rp store.Ramp, rf RouteFlags, why string, now time.Time) {
	next := rp
	next.UpdatedAt, next.Waiting, next.WaitingSince = now, "", time.Time{}
	next.State = store.RampPaused
	next.Note = why + "; " + resumeAdvice(rp, r.flags.approvals(rf))
	sctx, cancel := storeCall(ctx)
	defer cancel()
	_, err := r.ramps.UpdateRamp(sctx, next, rp.Version, domain.AuditEntry{
		At: now, Actor: config.RampActor, Action: "ramp_pause", Route: rp.Route, Reason: rp.Reason,
		Detail: "ramp " + rampText(next) + ": " + next.Note,
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		r.log.Error("pausing a ramp whose starter or approver lost access failed; it is tried again", "route", rp.Route, "error", err)
		return
	}
	if err == nil {
		r.log.Warn("ramp paused: who started or approved it may no longer change routes", "route", rp.Route, "why", why)
	}
}

// resumeAdvice says what an operator does with a ramp paused because
// whoever started or approved it lost access, on a route that needs
// approvals approvals.
func resumeAdvice(rp store.Ramp, approvals int) string {
	if approvals > 1 {
		return "its approval was given to people who no longer have it: cancel it and start it again, which asks for approval again"
	}
	return "resume it to go on as yours, or cancel it"
}
