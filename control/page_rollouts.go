package control

// The status page's ramps and change requests: what each route row says
// of them, the ramp form, and the approve and reject forms.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"strangler/config"
	"strangler/internal/human"
	"strangler/store"
)

// rampView is a route's latest ramp on the page.
type rampView struct {
	State, Plan, Progress string
	// Next says when the next step is due, while the ramp runs.
	Next                    string
	Waiting, WaitingSince   string
	Note, StartedBy, Reason string
	ApprovedBy              string
	// Active says the ramp is under way: the form pauses, resumes or
	// cancels it rather than starting another.
	Active, Running bool
}

// changeView is a pending change request on the page.
type changeView struct {
	ID                          int64
	Route, Summary, RequestedBy string
	Reason, Ago, Expires        string
	// Approvals says how many it has of how many it needs.
	Approvals string
	// Mine says the session's token requested it: it may withdraw it, not
	// approve it; Approved says it approved it already.
	Mine, Approved bool
}

func toRampView(rp store.Ramp, now time.Time) *rampView {
	v := &rampView{
		State: string(rp.State), Plan: planText(rp), Progress: progressText(rp),
		Waiting: rp.Waiting, Note: rp.Note, StartedBy: rp.Actor, Reason: rp.Reason, ApprovedBy: rp.ApprovedBy,
		Active: rp.State.Active(), Running: rp.State == store.RampRunning,
	}
	if rp.Taken > 0 {
		v.Progress += ", at " + ModeText(rp.Mode, &rp.Steps[rp.Taken-1])
	}
	if v.Running && rp.Taken < len(rp.Steps) {
		when := "now"
		switch d := rp.NextAt.Sub(now).Round(time.Minute); {
		case d > 0:
			when = "in " + human.Duration(d) + " (" + rp.NextAt.UTC().Format("15:04 UTC") + ")"
		case rp.NextAt.After(now):
			when = "within a minute"
		}
		v.Next = fmt.Sprintf("next: %s, %s", ModeText(rp.Mode, &rp.Steps[rp.Taken]), when)
	}
	if !rp.WaitingSince.IsZero() {
		v.WaitingSince = human.Age(now.Sub(rp.WaitingSince)) + " ago"
	}
	return v
}

func toChangeView(c store.Change, actor string, now time.Time) changeView {
	return changeView{
		ID: c.ID, Route: c.Route, Summary: changeText(c), RequestedBy: c.Requester, Reason: c.Reason,
		Ago: human.Age(now.Sub(c.CreatedAt)) + " ago", Expires: human.Minute(c.ExpiresAt),
		Approvals: fmt.Sprintf("%d of %d", len(c.Approvers), c.Needed),
		Mine:      c.Requester == actor, Approved: slices.Contains(c.Approvers, actor),
	}
}

// addRollouts fills in the page's ramps and change requests; a store
// that cannot be read leaves them out and says so.
func (p *statusPage) addRollouts(ctx context.Context, v *statusView, actor string) {
	if p.Rollouts == nil {
		return
	}
	ramps, pending, err := p.Rollouts.byRoute(ctx)
	if err != nil {
		v.RolloutsError = "Ramps and change requests cannot be read from the state store right now."
		return
	}
	now := p.Rollouts.clock() // the ramps' and requests' times are on it
	for i := range v.Routes {
		rv := &v.Routes[i]
		if rp, ok := ramps[rv.Name]; ok {
			rv.Ramp = toRampView(rp, now)
		}
		if c, ok := pending[rv.Name]; ok {
			cv := toChangeView(c, actor, now)
			rv.Pending = &cv
			v.Changes = append(v.Changes, cv)
		}
	}
}

// applyRampForm is POST /ui/routes/{name}/ramp: start a ramp, or pause,
// resume or cancel the one under way; checked as the admin API's PATCH.
func (p *statusPage) applyRampForm(r *http.Request, actor string) (string, error) {
	name := r.PathValue("name")
	if _, ok := p.Flags.Get(name); !ok {
		return fmt.Sprintf("There is no route %q; nothing was changed.", name), ErrNoRoute
	}
	if p.Rollouts == nil {
		return "Ramps are not available on this admin listener; nothing was changed.", ErrUnavailable
	}
	action := r.PostFormValue("action")
	if action == "start" && r.PostFormValue("confirm") != "yes" {
		return name + " was not changed: tick “I understand this changes live traffic” to confirm.", ErrInvalid
	}
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil {
		return name + " was not changed: the form has no route version; reload the page and try again.", errNoIfMatch
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if err := checkReason(reason); err != nil {
		_, msg := statusFor(err)
		return name + " was not changed: " + msg + ".", err
	}
	switch action {
	case "start":
		var pl RampPlan
		if pl.Steps, err = ParseSteps(r.PostFormValue("steps")); err != nil {
			return name + " was not changed: " + err.Error() + ".", err
		}
		var every config.Duration
		if err := every.UnmarshalText([]byte(strings.TrimSpace(r.PostFormValue("every")))); err != nil {
			return name + " was not changed: " + err.Error() + ".", ErrInvalid
		}
		pl.Every = time.Duration(every)
		if m := r.PostFormValue("mode"); m != "" {
			if err := pl.Mode.UnmarshalText([]byte(m)); err != nil {
				return name + " was not changed: " + err.Error() + ".", ErrInvalid
			}
		}
		res, err := p.Rollouts.StartRamp(r.Context(), name, actor, reason, pl, version)
		switch {
		case err != nil:
			return p.notChanged(name, err), err
		case res.Request != nil:
			return requestedText(*res.Request), nil
		}
		return fmt.Sprintf("%s ramps %s; the first step is due now. Audited as %s.", name, planText(*res.Ramp), actor), nil
	case string(RampPause), string(RampResume), string(RampCancel):
		rp, err := p.Rollouts.ActOnRamp(r.Context(), name, actor, reason, RampAction(action), version)
		if err != nil {
			return p.notChanged(name, err), err
		}
		return fmt.Sprintf("%s's ramp is %s (%s). Audited as %s.", name, rp.State, progressText(rp), actor), nil
	}
	return name + " was not changed: the form's action is not start, pause, resume or cancel.", ErrInvalid
}

// notChanged says why a form changed nothing.
func (p *statusPage) notChanged(name string, err error) string {
	if errors.Is(err, ErrStale) {
		return name + " was not changed: someone else changed it since you loaded this page. Review it and try again."
	}
	status, msg := statusFor(err)
	if status == http.StatusInternalServerError {
		p.log.Error("status page form failed", "route", name, "error", err)
	}
	return name + " was not changed: " + msg
}

// requestedText says that a change became a change request.
func requestedText(c store.Change) string {
	return fmt.Sprintf("%s needs %s by another token name: change request %d (%s) waits for it until %s.",
		c.Route, approvalsText(c.Needed), c.ID, changeText(c), human.Minute(c.ExpiresAt))
}

// requestForm makes a flip the approvals stopped into a change request.
func (p *statusPage) requestForm(r *http.Request, need *ApprovalRequired) (string, error) {
	name := need.Route.Route.Name
	if p.Rollouts == nil {
		return name + " needs approvals, and change requests are not available here; nothing was changed.", ErrUnavailable
	}
	c, err := p.Rollouts.RequestFlip(r.Context(), need)
	if err != nil {
		return p.notChanged(name, err), err
	}
	return requestedText(c), nil
}

// applyChangeForm is POST /ui/changes/{change}: approve or reject a
// change request (its requester may reject it: that withdraws it).
func (p *statusPage) applyChangeForm(r *http.Request, actor string) (string, error) {
	if p.Rollouts == nil {
		return "Change requests are not available on this admin listener.", ErrUnavailable
	}
	id, err := changeID(r)
	if err != nil {
		_, msg := statusFor(err)
		return msg + ".", err
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	var c store.Change
	switch r.PostFormValue("action") {
	case "approve":
		if r.PostFormValue("confirm") != "yes" {
			return fmt.Sprintf("Change request %d was not approved: tick “I understand this changes live traffic” to confirm.", id), ErrInvalid
		}
		c, err = p.Rollouts.Approve(r.Context(), id, actor, reason, p.whyMayNotChange)
	case "reject":
		if err := checkReason(reason); err != nil {
			_, msg := statusFor(err)
			return fmt.Sprintf("Change request %d was not rejected: %s.", id, msg), err
		}
		c, err = p.Rollouts.Reject(r.Context(), id, actor, reason)
	default:
		return "The form's action is not approve or reject; nothing was changed.", ErrInvalid
	}
	if err != nil {
		_, msg := statusFor(err)
		if errors.Is(err, ErrStale) {
			msg = "someone else changed the route or the request as you did; review it and try again"
		}
		return fmt.Sprintf("Change request %d: %s.", id, strings.TrimSuffix(msg, ".")), err
	}
	switch c.State {
	case store.ChangeApplied:
		rf, _ := p.Flags.Get(c.Route)
		what := c.Route + " is now " + ModeText(rf.Mode, rf.Percent)
		if c.Kind == store.ChangeRamp {
			what = c.Route + " ramps " + strings.TrimPrefix(changeText(c), "ramp ")
		}
		return fmt.Sprintf("Change request %d is approved and applied: %s. Audited as %s's, approved by %s.",
			id, what, c.Requester, strings.Join(c.Approvers, ", ")), nil
	case store.ChangeRejected:
		return fmt.Sprintf("Change request %d (%s's %s) is rejected.", id, c.Requester, changeText(c)), nil
	}
	return fmt.Sprintf("Change request %d has your approval; it waits for %s more.", id, approvalsText(c.Needed-len(c.Approvers))), nil
}
