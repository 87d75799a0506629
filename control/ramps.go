package control

// Scheduled ramps: a route's share to modern raised step by step, every
// so often, each step a flip audited with actor "ramp" and taken only
// while the route's gates pass. The driver (rampdriver.go) takes the
// steps; this file starts, pauses, resumes and cancels ramps.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/internal/human"
	"strangler/store"
)

// Bounds of a ramp's plan.
const (
	maxRampSteps = 20
	// minRampEvery leaves the gates, which look at the last hour's rates
	// flushed every few seconds, time to see a step's traffic.
	minRampEvery = time.Minute
	maxRampEvery = 7 * 24 * time.Hour
)

// RampPlan is a ramp an operator asks for.
type RampPlan struct {
	// Mode is the mode of every step, fallback or modern; empty means the
	// route's own when it splits traffic by percent.
	Mode domain.Mode
	// Steps are the percents sent to modern, rising, each above 0 and at
	// most 100.
	Steps []float64
	// Every is how long the route stays at a step before the next.
	Every time.Duration
}

// plan checks p against the route as it is, filling in the mode; the
// error says what is wrong with it.
func plan(rf RouteFlags, p RampPlan) (RampPlan, error) {
	name := rf.Route.Name
	if p.Mode == "" {
		if !rf.Mode.TakesPercent() {
			return p, invalidf("name the mode to ramp %s in, fallback or modern: it is %s now", name, rf.Mode)
		}
		p.Mode = rf.Mode
	}
	if !p.Mode.TakesPercent() {
		return p, invalidf("a ramp raises the share of fallback or modern, not %s", p.Mode)
	}
	if len(p.Steps) == 0 || len(p.Steps) > maxRampSteps {
		return p, invalidf("a ramp has from 1 to %d steps, such as 1,5,25,50,100; this one has %d", maxRampSteps, len(p.Steps))
	}
	for i, s := range p.Steps {
		if !(s > 0 && s <= 100) {
			return p, invalidf("step %d, %v%%, is not above 0 and at most 100", i+1, s)
		}
		if _, err := domain.CheckPercent(s); err != nil {
			return p, invalidf("step %d, %s%%, %v", i+1, domain.PercentString(s), err)
		}
		if i > 0 && s <= p.Steps[i-1] {
			return p, invalidf("the steps must rise: step %d, %v%%, is not above step %d, %v%%", i+1, s, i, p.Steps[i-1])
		}
	}
	if p.Every < minRampEvery || p.Every > maxRampEvery {
		return p, invalidf("every must be from %s to %s, so that the gates see each step's traffic; not %s", human.Duration(minRampEvery), human.Duration(maxRampEvery), human.Duration(p.Every))
	}
	first := p.Steps[0]
	if !domain.Later(rf.Route.Primary, rf.Mode, rf.Percent, p.Mode, &first) {
		return p, invalidf("the first step, %s, does not move %s forward from %s: a ramp only moves a route forward",
			ModeText(p.Mode, &first), name, ModeText(rf.Mode, rf.Percent))
	}
	return p, nil
}

// RampResult is what starting a ramp did: started it, or, on a route
// that needs approvals, made a change request for it.
type RampResult struct {
	Ramp    *store.Ramp
	Request *store.Change
}

// StartRamp starts a ramp of route by actor, decided on the route's
// version ifMatch. Its first step is due at once. On a route that needs
// approvals the ramp is a change request instead, approved once: its
// steps then need no more approval.
func (r *Rollouts) StartRamp(ctx context.Context, route, actor, reason string, p RampPlan, ifMatch int64) (RampResult, error) {
	rf, ok := r.flags.Get(route)
	if !ok {
		return RampResult{}, ErrNoRoute
	}
	if ifMatch != rf.Version {
		return RampResult{}, ErrStale
	}
	// The ramp is stored with where it found the route, which its store
	// write does not check: a replica behind another's flip took a ramp
	// from a mode the route no longer had, paused at its first look.
	rf, err := r.flags.confirm(ctx, rf)
	if err != nil {
		return RampResult{}, err
	}
	p, err = plan(rf, p)
	if err != nil {
		return RampResult{}, err
	}
	if rp, ok, err := r.ramp(ctx, route); err != nil {
		return RampResult{}, err
	} else if ok && rp.State.Active() {
		return RampResult{}, conflictf("%s is already ramping (%s); cancel that ramp first", route, rampText(rp))
	}
	if n := r.flags.approvals(rf); n > 1 {
		last := p.Steps[len(p.Steps)-1]
		c, err := r.request(ctx, store.Change{
			Route: route, Kind: store.ChangeRamp, Mode: p.Mode, Percent: &last, RampSteps: p.Steps, RampEvery: p.Every,
			FromMode: rf.Mode, FromPercent: rf.Percent, BaseVersion: rf.Version,
			Requester: actor, Reason: reason, Needed: n - 1,
		})
		return RampResult{Request: &c}, err
	}
	rp, err := r.start(ctx, rf, p, actor, reason, "")
	return RampResult{Ramp: &rp}, err
}

// start stores a running ramp of the route as it is, audited, with the
// linked writes (an approved request).
func (r *Rollouts) start(ctx context.Context, rf RouteFlags, p RampPlan, actor, reason, approvedBy string, linked ...store.Linked) (store.Ramp, error) {
	r.syncClock(ctx)
	now := r.clock()
	name := rf.Route.Name
	rp := store.Ramp{
		Route: name, Mode: p.Mode, Steps: p.Steps, Every: p.Every, State: store.RampRunning, NextAt: now,
		AtMode: rf.Mode, AtPercent: rf.Percent, AtVersion: rf.Version,
		Actor: actor, Reason: reason, ApprovedBy: approvedBy, CreatedAt: now, UpdatedAt: now,
	}
	last := p.Steps[len(p.Steps)-1]
	detail := "ramp " + planText(rp) + "; the first step now"
	if approvedBy != "" {
		detail += "; approved by " + approvedBy
	}
	ctx, cancel := storeCall(ctx)
	defer cancel()
	rp, err := r.ramps.StartRamp(ctx, rp, domain.AuditEntry{
		At: now, Actor: actor, Action: "ramp_start", Route: name, Reason: reason, Detail: detail,
		FromMode: rf.Mode, FromPercent: rf.Percent, ToMode: p.Mode, ToPercent: &last,
	}, linked...)
	switch {
	case errors.Is(err, store.ErrConflict):
		return rp, r.conflictOrStale(ctx, name)
	case err != nil:
		r.log.Error("starting a ramp failed", "route", name, "error", err)
		return rp, storeRefused(err)
	}
	r.log.Info("ramp started", "route", name, "actor", actor, "mode", rp.Mode, "steps", len(rp.Steps), "every", rp.Every.String())
	return rp, nil
}

// conflictOrStale says why a ramp could not start: another one did
// meanwhile, or a linked change request was decided meanwhile.
func (r *Rollouts) conflictOrStale(ctx context.Context, route string) error {
	if rp, ok, err := r.ramp(ctx, route); err == nil && ok && rp.State.Active() {
		return conflictf("%s is already ramping (%s); cancel that ramp first", route, rampText(rp))
	}
	return ErrStale
}

// ramp reads route's latest ramp.
func (r *Rollouts) ramp(ctx context.Context, route string) (store.Ramp, bool, error) {
	ctx, cancel := storeCall(ctx)
	defer cancel()
	all, err := r.ramps.Ramps(ctx)
	if err != nil {
		r.log.Error("reading the ramps failed", "error", err)
		return store.Ramp{}, false, ErrUnavailable
	}
	rp, ok := all[route]
	return rp, ok, nil
}

// RampAction is what an operator does to a ramp under way.
type RampAction string

// The actions on a ramp under way.
const (
	RampPause  RampAction = "pause"
	RampResume RampAction = "resume"
	RampCancel RampAction = "cancel"
)

// ActOnRamp pauses, resumes or cancels route's ramp, audited as actor's,
// decided on the route's version ifMatch. A resumed ramp goes on from
// where the route is then (the guard, or someone's flip, may have moved
// it): its next step is the first that moves the route forward, taken
// Every after the resume, with no approval: it is the approved plan. One
// whose starter or approver may no longer change routes (access) goes on
// as the resumer's; on a route that needs approvals it is not resumed:
// the approval was theirs. A cancelled ramp leaves the route where it is.
func (r *Rollouts) ActOnRamp(ctx context.Context, route, actor, reason string, action RampAction, ifMatch int64) (store.Ramp, error) {
	rf, ok := r.flags.Get(route)
	if !ok {
		return store.Ramp{}, ErrNoRoute
	}
	if ifMatch != rf.Version {
		return store.Ramp{}, ErrStale
	}
	rp, ok, err := r.ramp(ctx, route)
	if err != nil {
		return store.Ramp{}, err
	}
	if !ok || !rp.State.Active() {
		return store.Ramp{}, conflictf("%s has no ramp under way to %s", route, action)
	}
	r.syncClock(ctx)
	now := r.clock()
	next := rp
	next.UpdatedAt, next.Waiting, next.WaitingSince = now, "", time.Time{}
	takenOver := "" // a resumed ramp whose starter lost access: whose it is now, and why
	switch action {
	case RampPause:
		if rp.State != store.RampRunning {
			return rp, conflictf("%s's ramp is %s, not running: there is nothing to pause", route, rp.State)
		}
		next.State, next.Note = store.RampPaused, fmt.Sprintf("paused by %s: %s", actor, reason)
	case RampResume:
		if rp.State == store.RampRunning {
			return rp, conflictf("%s's ramp is running already", route)
		}
		// It goes on from where the route is, which its store write does
		// not check: a replica behind another's flip ended a ramp as past
		// every step at a share the route no longer had.
		if rf, err = r.flags.confirm(ctx, rf); err != nil {
			return rp, err
		}
		if why := r.access(rp); why != "" {
			// Its steps are flips in its starter's name, approved by its
			// approvers: without them it goes on as the resumer's, where
			// one token may change the route alone.
			if r.flags.approvals(rf) > 1 {
				return rp, conflictf("%s's ramp cannot be resumed: %s; %s", route, why, resumeAdvice(rp, r.flags.approvals(rf)))
			}
			next.Actor, next.ApprovedBy = actor, ""
			takenOver = fmt.Sprintf(", now %s's: %s", actor, why)
		}
		next.State, next.Note, next.NextAt = store.RampRunning, "", now.Add(rp.Every)
		next.AtMode, next.AtPercent, next.AtVersion = rf.Mode, rf.Percent, rf.Version
		next.Taken = slices.IndexFunc(rp.Steps, func(s float64) bool { return domain.Later(rf.Route.Primary, rf.Mode, rf.Percent, rp.Mode, &s) })
		if next.Taken < 0 {
			next.Taken, next.State = len(rp.Steps), store.RampDone
			next.Note = fmt.Sprintf("resumed by %s with no step left: %s is at %s, past every step", actor, route, ModeText(rf.Mode, rf.Percent))
		}
	case RampCancel:
		next.State, next.Note = store.RampCancelled, fmt.Sprintf("cancelled by %s: %s", actor, reason)
	default:
		return rp, invalidf("unknown ramp action %q; want pause, resume or cancel", action)
	}
	ctx, cancel := storeCall(ctx)
	defer cancel()
	next, err = r.ramps.UpdateRamp(ctx, next, rp.Version, domain.AuditEntry{
		At: now, Actor: actor, Action: "ramp_" + string(action), Route: route, Reason: reason,
		Detail: "ramp " + planText(rp) + ", " + progressText(next) + takenOver,
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return rp, ErrStale
	case err != nil:
		r.log.Error("changing a ramp failed", "route", route, "action", string(action), "error", err)
		return rp, storeRefused(err)
	}
	r.log.Info("ramp changed", "route", route, "actor", actor, "action", string(action), "state", string(next.State))
	return next, nil
}

// planText says a ramp's plan: "to fallback at 1%, 5%, 25% every 30m".
func planText(rp store.Ramp) string {
	return stepsPlanText(rp.Mode, rp.Steps, human.Duration(rp.Every))
}

// stepsPlanText says a ramp's plan from its parts, every as
// human.Duration writes it; planText and RampJSON.PlanText both say it so.
func stepsPlanText(mode domain.Mode, steps []float64, every string) string {
	pcts := make([]string, len(steps))
	for i, s := range steps {
		pcts[i] = PercentText(s)
	}
	return fmt.Sprintf("to %s at %s every %s", mode, strings.Join(pcts, ", "), every)
}

// progressText says how far a ramp got: "2 of 5 steps taken, running".
func progressText(rp store.Ramp) string {
	return stepsTakenText(rp.Taken, len(rp.Steps)) + ", " + string(rp.State)
}

// stepsTakenText is "2 of 5 steps taken".
func stepsTakenText(taken, steps int) string {
	return fmt.Sprintf("%d of %d steps taken", taken, steps)
}

// rampText says a ramp's plan and progress.
func rampText(rp store.Ramp) string { return planText(rp) + ", " + progressText(rp) }

// ParseSteps reads a ramp's steps as people write them: percents
// separated by commas, "1,5,25,50,100" (spaces and % signs allowed). It
// checks only that each is a number; plan checks the rest.
func ParseSteps(s string) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, invalidf("no steps: write the percents to ramp through, such as 1,5,25,50,100")
	}
	var out []float64
	for i, f := range strings.Split(s, ",") {
		var v config.Percent
		if err := v.UnmarshalText([]byte(f)); err != nil {
			return nil, invalidf("step %d, %q, is not a percent: write the steps like 1,5,25,50,100", i+1, strings.TrimSpace(f))
		}
		out = append(out, float64(v))
	}
	return out, nil
}
