package control

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"strangler/domain"
	"strangler/store"
)

// bulkLimit is how many writes one bulk call acts on: each is a
// transaction of its own with its own audit entry, and the call must end
// well within the admin listener's answer time. The answer says whether
// more are left, for the next call.
const bulkLimit = 500

// bulkRequest is the body of POST /admin/repairs/retry and
// POST /admin/repairs/discard: every write of one route in one state.
type bulkRequest struct {
	Route  string `json:"route"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	// DryRun counts and lists what the call would act on, and changes
	// nothing.
	DryRun bool `json:"dry_run"`
}

// BulkJSON is the answer of a bulk retry or discard.
type BulkJSON struct {
	Action string `json:"action"`
	Route  string `json:"route"`
	State  string `json:"state"`
	DryRun bool   `json:"dry_run"`
	// Matched are the writes of the route in the state when the call
	// looked (at most bulkLimit); Done those it moved, each audited.
	Matched []string `json:"matched"`
	Done    int      `json:"done"`
	// Refused are writes that had moved, or that a worker was delivering,
	// by the time their turn came; each left a denied audit entry.
	Refused []BulkRefusal `json:"refused,omitempty"`
	// More says the route has more writes in the state than one call
	// acts on: call again.
	More bool `json:"more"`
}

// BulkRefusal is one write a bulk action left as it was, and why.
type BulkRefusal struct {
	ID  string `json:"id"`
	Why string `json:"why"`
}

// bulkStates are the states a bulk action takes: the writes waiting for
// an operator. A pending or sent write is the facade's to deliver or
// resend; acting on one stays a decision by its id.
var bulkStates = []domain.State{domain.StateDead, domain.StateUnknown}

func (a *admin) retryRepairs(w http.ResponseWriter, r *http.Request, actor string) error {
	return a.actOnRepairs(w, r, actor, "repair_retry", a.Repairs.RetryRepair)
}

func (a *admin) discardRepairs(w http.ResponseWriter, r *http.Request, actor string) error {
	return a.actOnRepairs(w, r, actor, "repair_discard", a.Repairs.DiscardRepair)
}

// actOnRepairs takes one operator's action on every write of a route in
// a state, by the very move actOnRepair makes on one (act), so each write
// is moved and audited in one transaction as it would be alone, and one
// a worker holds is refused as it would be alone.
func (a *admin) actOnRepairs(w http.ResponseWriter, r *http.Request, actor, action string, act func(context.Context, string, domain.AuditEntry) error) error {
	var req bulkRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Route == "" {
		return apiError(http.StatusBadRequest, "route: name the route whose writes to act on")
	}
	state, err := domain.ParseState(req.State)
	if err != nil || !slices.Contains(bulkStates, state) {
		return apiError(http.StatusBadRequest, "state: want dead or unknown, the writes that wait for an operator")
	}
	if !req.DryRun {
		if err := checkReason(req.Reason); err != nil {
			return err
		}
	}
	ctx, cancel := timeout(r)
	list, err := a.Repairs.ListRepairs(ctx, store.RepairFilter{Route: req.Route, State: state, Limit: bulkLimit + 1})
	cancel()
	if err != nil {
		a.log.Error("listing repairs for a bulk action failed", "error", err)
		return errStoreRead
	}
	out := BulkJSON{Action: action, Route: req.Route, State: string(state), DryRun: req.DryRun, Matched: []string{}}
	if len(list) > bulkLimit {
		list, out.More = list[:bulkLimit], true
	}
	for _, rep := range list {
		out.Matched = append(out.Matched, rep.ID)
	}
	if req.DryRun {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	for _, rep := range list {
		entry := domain.AuditEntry{At: a.now(), Actor: actor, Action: action, Route: rep.Route, Reason: req.Reason, Detail: rep.ID}
		ctx, cancel := timeout(r)
		err := act(ctx, rep.ID, entry)
		cancel()
		var st *store.StateError
		switch {
		case err == nil:
			out.Done++
		case errors.Is(err, store.ErrNotFound), errors.As(err, &st):
			why := "it is no longer journaled"
			if st != nil {
				why = st.Why
			}
			out.Refused = append(out.Refused, BulkRefusal{ID: rep.ID, Why: why})
			a.Flags.Deny(r.Context(), rep.Route, actor, action+" of repair "+rep.ID+" refused: "+why)
		case errors.Is(err, store.ErrUnconfirmed):
			a.log.Error("a bulk repair action was not confirmed by the state store; the writes after it were not touched",
				"action", action, "route", req.Route, "done", out.Done, "error", err)
			return apiError(http.StatusServiceUnavailable, "the state store did not confirm the %s of write %s (its commit was sent and the answer lost), so it may have been done and audited; %d of %d writes were done before it (each audited), and nothing after it was changed: list the route's writes again", action, rep.ID, out.Done, len(list))
		default:
			a.log.Error("a bulk repair action failed in the state store; the writes after it were not touched",
				"action", action, "route", req.Route, "done", out.Done, "error", err)
			return apiError(http.StatusServiceUnavailable, "the state store failed after %d of %d writes were done (each audited); nothing else was changed: list the route's writes again", out.Done, len(list))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
