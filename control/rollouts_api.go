package control

// The admin API of ramps and change requests: the ramp of PATCH
// /admin/routes/{name}, a flip that becomes a change request, and
// /admin/changes.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/internal/human"
	"strangler/store"
)

// rampRequest is the ramp of PATCH /admin/routes/{name}: a plan to start
// ({"steps": [1, 5, 25], "every": "30m", "mode": "fallback"}), or an
// action on the ramp under way ({"action": "pause"}).
type rampRequest struct {
	// Action is start (the default with steps), pause, resume or cancel.
	Action string           `json:"action"`
	Mode   *domain.Mode     `json:"mode"`
	Steps  []float64        `json:"steps"`
	Every  *config.Duration `json:"every"`
}

// RampJSON is a route's latest ramp as the admin API shows it.
type RampJSON struct {
	State string    `json:"state"`
	Mode  string    `json:"mode"`
	Steps []float64 `json:"steps"`
	Every string    `json:"every"`
	// Taken is how many steps were taken; NextPercent and NextAt are the
	// next step's, while it runs.
	Taken       int        `json:"taken"`
	NextPercent *float64   `json:"next_percent,omitempty"`
	NextAt      *time.Time `json:"next_at,omitempty"`
	// NextInSeconds is how long until NextAt by the store's clock (0:
	// due), so that a client's own clock does not matter.
	NextInSeconds *float64 `json:"next_in_seconds,omitempty"`
	// Waiting says why the due step is not taken (a gate), since
	// WaitingSince.
	Waiting      string     `json:"waiting,omitempty"`
	WaitingSince *time.Time `json:"waiting_since,omitempty"`
	// Note says why it is paused, held, done or cancelled.
	Note       string    `json:"note,omitempty"`
	StartedBy  string    `json:"started_by"`
	Reason     string    `json:"reason"`
	ApprovedBy string    `json:"approved_by,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Active reports whether the ramp is under way: running, paused or held.
func (j *RampJSON) Active() bool { return store.RampState(j.State).Active() }

// PlanText says the ramp's plan: "to fallback at 1%, 5%, 25% every 30m",
// as the status page and the audit log say it.
func (j *RampJSON) PlanText() string { return stepsPlanText(domain.Mode(j.Mode), j.Steps, j.Every) }

// ProgressText says where the ramp is: "running, 2 of 5 steps taken,
// next fallback at 25% in 12m", and what the due step waits for.
func (j *RampJSON) ProgressText() string {
	s := j.State + ", " + stepsTakenText(j.Taken, len(j.Steps))
	if j.NextPercent != nil && j.NextInSeconds != nil {
		when := "now"
		if d := time.Duration(*j.NextInSeconds * float64(time.Second)); d > 0 {
			when = "in " + human.Age(d)
		}
		s += ", next " + ModeText(domain.Mode(j.Mode), j.NextPercent) + " " + when
	}
	if j.Waiting != "" {
		s += ", waiting: " + j.Waiting
	}
	return s
}

func toRampJSON(rp store.Ramp, now time.Time) *RampJSON {
	j := &RampJSON{
		State: string(rp.State), Mode: string(rp.Mode), Steps: rp.Steps, Every: human.Duration(rp.Every), Taken: rp.Taken,
		Waiting: rp.Waiting, Note: rp.Note, StartedBy: rp.Actor, Reason: rp.Reason, ApprovedBy: rp.ApprovedBy,
		StartedAt: rp.CreatedAt.UTC(), UpdatedAt: rp.UpdatedAt.UTC(),
	}
	if rp.State == store.RampRunning && rp.Taken < len(rp.Steps) {
		next, at, in := rp.Steps[rp.Taken], rp.NextAt.UTC(), max(rp.NextAt.Sub(now).Seconds(), 0)
		j.NextPercent, j.NextAt, j.NextInSeconds = &next, &at, &in
	}
	if !rp.WaitingSince.IsZero() {
		since := rp.WaitingSince.UTC()
		j.WaitingSince = &since
	}
	return j
}

// ChangeJSON is a change request as the admin API shows it.
type ChangeJSON struct {
	ID    int64  `json:"id"`
	Route string `json:"route"`
	// Kind is flip, clear or ramp; Summary says what it asks for.
	Kind        string   `json:"kind"`
	Summary     string   `json:"summary"`
	FromMode    string   `json:"from_mode"`
	FromPercent *float64 `json:"from_percent,omitempty"`
	// ToMode and ToPercent are where a flip or clear takes the route; for
	// a ramp, its mode and last step.
	ToMode    string    `json:"to_mode"`
	ToPercent *float64  `json:"to_percent,omitempty"`
	Forced    bool      `json:"forced,omitempty"`
	Ramp      *PlanJSON `json:"ramp,omitempty"`
	// BaseVersion is the route's version the request was made on:
	// approving it after the route changed applies nothing.
	BaseVersion int64     `json:"base_version"`
	RequestedBy string    `json:"requested_by"`
	Reason      string    `json:"reason"`
	RequestedAt time.Time `json:"requested_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	// ApprovalsNeeded is besides the requester's; ApprovedBy lists the
	// token names that gave theirs.
	ApprovalsNeeded int        `json:"approvals_needed"`
	ApprovedBy      []string   `json:"approved_by"`
	State           string     `json:"state"`
	DecidedBy       string     `json:"decided_by,omitempty"`
	Decision        string     `json:"decision,omitempty"`
	DecidedAt       *time.Time `json:"decided_at,omitempty"`
}

// PlanJSON is the plan of a ramp a change request asks for.
type PlanJSON struct {
	Steps []float64 `json:"steps"`
	Every string    `json:"every"`
}

func toChangeJSON(c store.Change) ChangeJSON {
	j := ChangeJSON{
		ID: c.ID, Route: c.Route, Kind: string(c.Kind), Summary: changeText(c),
		FromMode: string(c.FromMode), FromPercent: c.FromPercent, ToMode: string(c.Mode), ToPercent: c.Percent, Forced: c.Forced,
		BaseVersion: c.BaseVersion, RequestedBy: c.Requester, Reason: c.Reason,
		RequestedAt: c.CreatedAt.UTC(), ExpiresAt: c.ExpiresAt.UTC(),
		ApprovalsNeeded: c.Needed, ApprovedBy: append([]string{}, c.Approvers...), State: string(c.State),
		DecidedBy: c.DecidedBy, Decision: c.Decision,
	}
	if c.Kind == store.ChangeRamp {
		j.Ramp = &PlanJSON{Steps: c.RampSteps, Every: human.Duration(c.RampEvery)}
	}
	if !c.DecidedAt.IsZero() {
		at := c.DecidedAt.UTC()
		j.DecidedAt = &at
	}
	return j
}

// addRollouts fills in the routes' ramps and pending change requests.
// Without them (the store is unreachable) each route says so.
func (a *admin) addRollouts(ctx context.Context, routes []RouteJSON) {
	if a.Rollouts == nil {
		return
	}
	ramps, pending, err := a.Rollouts.byRoute(ctx)
	now := a.Rollouts.clock() // the ramps' times are on it
	for i := range routes {
		if err != nil {
			routes[i].RolloutsUnknown = "the state store cannot be read: this route's ramp and change requests are unknown"
			continue
		}
		if rp, ok := ramps[routes[i].Name]; ok {
			routes[i].Ramp = toRampJSON(rp, now)
		}
		if c, ok := pending[routes[i].Name]; ok {
			j := toChangeJSON(c)
			routes[i].PendingChange = &j
		}
	}
}

// byRoute reads every route's latest ramp and pending change request;
// clock is then up to date to show their times by.
func (r *Rollouts) byRoute(ctx context.Context) (map[string]store.Ramp, map[string]store.Change, error) {
	sctx, cancel := storeCall(ctx)
	defer cancel()
	ramps, err := r.ramps.Ramps(sctx)
	if err != nil {
		r.log.Warn("reading the ramps failed", "error", err)
		return nil, nil, err
	}
	list, err := r.Changes(ctx, store.ChangeFilter{State: store.ChangePending, Limit: 1000})
	if err != nil {
		return nil, nil, err
	}
	pending := map[string]store.Change{}
	for _, c := range list {
		pending[c.Route] = c
	}
	return ramps, pending, nil
}

// patchRamp is PATCH /admin/routes/{name} with a ramp: start one, or
// pause, resume or cancel the one under way.
func (a *admin) patchRamp(w http.ResponseWriter, r *http.Request, actor string, version int64, req patchRequest) error {
	if a.Rollouts == nil {
		return apiError(http.StatusServiceUnavailable, "ramps are not available on this admin listener")
	}
	if req.Mode != nil || req.Percent != nil || req.Clear || req.Force {
		return apiError(http.StatusBadRequest, "a ramp is changed on its own: send mode, percent, clear and force in another PATCH (a ramp is never forced past the gates)")
	}
	name := r.PathValue("name")
	rr := req.Ramp
	switch rr.Action {
	case "", "start":
		if rr.Steps == nil || rr.Every == nil {
			return apiError(http.StatusBadRequest, `a ramp needs steps and every, such as {"steps": [1, 5, 25, 50, 100], "every": "30m"}; or an action: pause, resume or cancel`)
		}
		p := RampPlan{Steps: rr.Steps, Every: time.Duration(*rr.Every)}
		if rr.Mode != nil {
			p.Mode = *rr.Mode
		}
		res, err := a.Rollouts.StartRamp(r.Context(), name, actor, req.Reason, p, version)
		if err != nil {
			return a.staleAs(name, err)
		}
		if res.Request != nil {
			return a.writeRequested(w, r, *res.Request)
		}
	case string(RampPause), string(RampResume), string(RampCancel):
		if rr.Steps != nil || rr.Every != nil || rr.Mode != nil {
			return apiError(http.StatusBadRequest, "%s takes no steps, every or mode", rr.Action)
		}
		if _, err := a.Rollouts.ActOnRamp(r.Context(), name, actor, req.Reason, RampAction(rr.Action), version); err != nil {
			return a.staleAs(name, err)
		}
	default:
		return apiError(http.StatusBadRequest, "unknown ramp action %q; want start, pause, resume or cancel", rr.Action)
	}
	rf, _ := a.Flags.Get(name)
	out := []RouteJSON{a.routeJSON(rf)}
	a.addRollouts(r.Context(), out)
	w.Header().Set("ETag", etag(rf.Version))
	writeJSON(w, http.StatusOK, out[0])
	return nil
}

// staleAs answers ErrStale with the route as it is now.
func (a *admin) staleAs(name string, err error) error {
	if errors.Is(err, ErrStale) {
		cur, _ := a.Flags.Get(name)
		return &staleError{current: a.routeJSON(cur)}
	}
	return err
}

// requestFlip answers a flip that needs approvals: it is a change
// request now (202).
func (a *admin) requestFlip(w http.ResponseWriter, r *http.Request, need *ApprovalRequired) error {
	if a.Rollouts == nil {
		return apiError(http.StatusServiceUnavailable, "%s needs approvals, and change requests are not available on this admin listener", need.Route.Route.Name)
	}
	c, err := a.Rollouts.RequestFlip(r.Context(), need)
	if err != nil {
		return err
	}
	return a.writeRequested(w, r, c)
}

// writeRequested answers 202 with a new change request and what to do.
func (a *admin) writeRequested(w http.ResponseWriter, _ *http.Request, c store.Change) error {
	writeJSON(w, http.StatusAccepted, RequestedJSON{
		ChangeRequest: toChangeJSON(c),
		Message: c.Route + " needs " + approvalsText(c.Needed) + " by another token name: change request " +
			strconv.FormatInt(c.ID, 10) + " waits until " + c.ExpiresAt.UTC().Format(time.RFC3339) +
			" (strangler routes approve " + strconv.FormatInt(c.ID, 10) + ")",
	})
	return nil
}

// RequestedJSON is the answer (202) to a change that became a change
// request: the request, and what to do about it.
type RequestedJSON struct {
	ChangeRequest ChangeJSON `json:"change_request"`
	Message       string     `json:"message"`
}

// DecidedJSON is the answer to an approval or rejection: the request,
// and the route as it now is (nil if it is gone).
type DecidedJSON struct {
	ChangeRequest ChangeJSON `json:"change_request"`
	Route         *RouteJSON `json:"route,omitempty"`
}

func (a *admin) listChanges(w http.ResponseWriter, r *http.Request, _ string) error {
	if a.Rollouts == nil {
		return apiError(http.StatusServiceUnavailable, "change requests are not available on this admin listener")
	}
	limit, err := queryInt(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	f := store.ChangeFilter{Route: r.URL.Query().Get("route"), Limit: limit}
	switch s := r.URL.Query().Get("state"); s {
	case "", string(store.ChangePending):
		f.State = store.ChangePending
	case "all":
	default:
		return badParam("state", "state must be pending (the default) or all")
	}
	list, err := a.Rollouts.Changes(r.Context(), f)
	if err != nil {
		return err
	}
	out := []ChangeJSON{}
	for _, c := range list {
		out = append(out, toChangeJSON(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": out})
	return nil
}

func (a *admin) getChange(w http.ResponseWriter, r *http.Request, _ string) error {
	if a.Rollouts == nil {
		return apiError(http.StatusServiceUnavailable, "change requests are not available on this admin listener")
	}
	id, err := changeID(r)
	if err != nil {
		return err
	}
	c, err := a.Rollouts.Change(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toChangeJSON(c))
	return nil
}

// DecisionRequest is the body of an approval or rejection.
type DecisionRequest struct {
	Reason string `json:"reason"`
}

func (a *admin) approveChange(w http.ResponseWriter, r *http.Request, actor string) error {
	return a.decide(w, r, actor, true)
}

func (a *admin) rejectChange(w http.ResponseWriter, r *http.Request, actor string) error {
	return a.decide(w, r, actor, false)
}

// decide approves or rejects a change request. An approval's reason may
// be left out (the request has one); a rejection must say why.
func (a *admin) decide(w http.ResponseWriter, r *http.Request, actor string, approve bool) error {
	if a.Rollouts == nil {
		return apiError(http.StatusServiceUnavailable, "change requests are not available on this admin listener")
	}
	var req DecisionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	id, err := changeID(r)
	if err != nil {
		return err
	}
	var c store.Change
	if approve {
		c, err = a.Rollouts.Approve(r.Context(), id, actor, req.Reason, a.whyMayNotChange)
	} else {
		if err := checkReason(req.Reason); err != nil {
			return err
		}
		c, err = a.Rollouts.Reject(r.Context(), id, actor, req.Reason)
	}
	if err != nil {
		return err
	}
	out := DecidedJSON{ChangeRequest: toChangeJSON(c)}
	if rf, ok := a.Flags.Get(c.Route); ok {
		routes := []RouteJSON{a.routeJSON(rf)}
		a.addRollouts(r.Context(), routes)
		out.Route = &routes[0]
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// changeID is the change request a path names.
func changeID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("change"), 10, 64)
	if err != nil || id < 1 {
		return 0, apiError(http.StatusNotFound, "no such change request: their ids are whole numbers")
	}
	return id, nil
}
