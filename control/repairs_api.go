package control

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"strangler/domain"
	"strangler/store"
)

// RepairStore is the repair queue as operators act on it.
type RepairStore interface {
	ListRepairs(ctx context.Context, f store.RepairFilter) ([]domain.RepairSummary, error)
	GetRepair(ctx context.Context, id string, withBody bool) (domain.Repair, error)
	RetryRepair(ctx context.Context, id string, audit domain.AuditEntry) error
	DiscardRepair(ctx context.Context, id string, audit domain.AuditEntry) error
	StopResend(ctx context.Context, id string, audit domain.AuditEntry) error
	AppendAudit(ctx context.Context, a domain.AuditEntry) error
	// OpenRepairs counts the open writes per route, primary and state,
	// for the status page.
	OpenRepairs(ctx context.Context) ([]store.OpenCount, error)
}

// RepairView is a journaled write as the admin API shows it: no header or
// body unless one item is asked for with them.
type RepairView struct {
	ID     string `json:"id"`
	Route  string `json:"route"`
	Method string `json:"method"`
	// StandsFor is the method the backends read the write as: Method,
	// unless a POST overrides it (X-HTTP-Method-Override, _method); ""
	// when its overrides name several, or when a POST journaled by an
	// earlier release no longer says (its request erased or unreadable).
	StandsFor     string     `json:"stands_for"`
	Resource      string     `json:"resource"`
	Primary       string     `json:"primary"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"last_error,omitempty"`
	PrimaryStatus int        `json:"primary_status,omitempty"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	// AgeSeconds is how long ago the write came in, on the store's clock,
	// which stamped it (whichever replica journaled it).
	AgeSeconds float64 `json:"age_seconds"`
	// Target, Header and Body only for GET /admin/repairs/{id}?body=1: the
	// path, headers and body may carry patient data.
	Target     string              `json:"target,omitempty"`
	Header     map[string][]string `json:"header,omitempty"`
	Body       *string             `json:"body,omitempty"`
	BodyBase64 *string             `json:"body_base64,omitempty"`
}

func toRepairView(r domain.RepairSummary, now time.Time) RepairView {
	out := RepairView{
		ID: r.ID, Route: r.Route, Method: r.Method, StandsFor: r.StandsFor, Resource: r.Resource, Primary: string(r.Primary),
		State: string(r.State), Attempts: r.Attempts, LastError: r.LastError, PrimaryStatus: r.Outcome.Status,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), AgeSeconds: now.Sub(r.CreatedAt).Seconds(),
	}
	// NextAttemptAt: when a pending write is next delivered to the
	// secondary, or a sent write whose resend went unanswered is next
	// resent to its primary, once its lease passes
	// (store.ResendUnanswered; LastError says what the last one got).
	next := r.NextAttemptAt
	if r.State == domain.StateSent && r.Attempts > 0 {
		next = r.LeaseUntil
	} else if r.State != domain.StatePending {
		next = time.Time{}
	}
	if !next.IsZero() {
		t := next.UTC()
		out.NextAttemptAt = &t
	}
	return out
}

func (a *admin) listRepairs(w http.ResponseWriter, r *http.Request, _ string) error {
	limit, err := queryInt(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.RepairFilter{Route: q.Get("route"), BeforeID: q.Get("before_id"), Limit: limit}
	if name := q.Get("state"); name != "" {
		if f.State, err = domain.ParseState(name); err != nil {
			return badParam("state", "state: %v", err)
		}
	}
	ctx, cancel := timeout(r)
	defer cancel()
	list, err := a.Repairs.ListRepairs(ctx, f)
	if errors.Is(err, store.ErrNotFound) {
		return apiError(http.StatusNotFound, "before_id names no journaled write; pass the last id a listing gave")
	} else if err != nil {
		a.log.Error("listing repairs failed", "error", err)
		return errStoreRead
	}
	out := make([]RepairView, len(list))
	for i, s := range list {
		out[i] = toRepairView(s, a.storeNow())
	}
	writeJSON(w, http.StatusOK, map[string]any{"repairs": out})
	return nil
}

func (a *admin) getRepair(w http.ResponseWriter, r *http.Request, actor string) error {
	withBody, err := queryFlag(r, "body")
	if err != nil {
		return err
	}
	if withBody {
		if err := a.allow(r, actor, actionRepairBody); err != nil {
			return err
		}
	}
	ctx, cancel := timeout(r)
	defer cancel()
	rep, err := a.Repairs.GetRepair(ctx, r.PathValue("id"), withBody)
	if err != nil {
		return repairError(err)
	}
	out := toRepairView(rep.RepairSummary, a.storeNow())
	if withBody {
		// Reading a body is an access to patient data: it is audited.
		if err := a.Repairs.AppendAudit(ctx, domain.AuditEntry{At: a.now(), Actor: actor, Action: "repair_read", Route: rep.Route, Detail: rep.ID}); err != nil {
			return ErrUnavailable
		}
		out.Target, out.Header = rep.Target, rep.Header
		if utf8.Valid(rep.Body) {
			s := string(rep.Body)
			out.Body = &s
		} else {
			s := base64.StdEncoding.EncodeToString(rep.Body)
			out.BodyBase64 = &s
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// errNoRepair answers an id that names no journaled write. It does not
// quote the id: the store's error ("store: get repair ID: not found")
// is the facade's own wording, for its log.
var errNoRepair = apiError(http.StatusNotFound, "no such repair: no journaled write has that id")

// repairError is err, from the store about one repair, as the API
// answers it.
func repairError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errNoRepair
	}
	return err
}

// repairAction is the body of a retry, stop or discard.
type repairAction struct {
	Reason string `json:"reason"`
}

func (a *admin) retryRepair(w http.ResponseWriter, r *http.Request, actor string) error {
	return a.actOnRepair(w, r, actor, "repair_retry", a.Repairs.RetryRepair)
}

func (a *admin) discardRepair(w http.ResponseWriter, r *http.Request, actor string) error {
	return a.actOnRepair(w, r, actor, "repair_discard", a.Repairs.DiscardRepair)
}

// stopRepair gives up resending a write to its primary: it becomes
// unknown, for the operator to retry or discard, and its path's later
// writes go on (store.StopResend).
func (a *admin) stopRepair(w http.ResponseWriter, r *http.Request, actor string) error {
	return a.actOnRepair(w, r, actor, "repair_stop", a.Repairs.StopResend)
}

// actOnRepair takes an operator's action on a repair, audited with it in
// one transaction: a refused action leaves only its refusal in the log.
func (a *admin) actOnRepair(w http.ResponseWriter, r *http.Request, actor, action string, act func(context.Context, string, domain.AuditEntry) error) error {
	var req repairAction
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkReason(req.Reason); err != nil {
		return err
	}
	id := r.PathValue("id")
	ctx, cancel := timeout(r)
	defer cancel()
	rep, err := a.Repairs.GetRepair(ctx, id, false)
	if err != nil {
		return repairError(err)
	}
	entry := domain.AuditEntry{At: a.now(), Actor: actor, Action: action, Route: rep.Route, Reason: req.Reason, Detail: id}
	if err := act(ctx, id, entry); err != nil {
		var state *store.StateError
		if errors.Is(err, store.ErrNotFound) || errors.As(err, &state) {
			return repairError(err)
		}
		a.log.Error("a repair action failed in the state store, or was not confirmed", "repair", id, "action", action, "error", err)
		return storeRefused(err)
	}
	rep, err = a.Repairs.GetRepair(ctx, id, false)
	if err != nil {
		return repairError(err)
	}
	writeJSON(w, http.StatusOK, toRepairView(rep.RepairSummary, a.storeNow()))
	return nil
}

func (a *admin) diffs(w http.ResponseWriter, r *http.Request, _ string) error {
	route := r.URL.Query().Get("route")
	schema, err := queryFlag(r, "schema")
	if err != nil {
		return err
	}
	noise, err := queryFlag(r, "noise")
	if err != nil {
		return err
	}
	if schema {
		return a.schemaDiffs(w, r, route)
	}
	if noise {
		noise := map[string][]string{}
		for _, rf := range a.Flags.All() {
			if route != "" && rf.Route.Name != route {
				continue
			}
			if fields := a.Noise(rf.Route.Name); len(fields) > 0 {
				noise[rf.Route.Name] = fields
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"noise": noise})
		return nil
	}
	limit, err := queryInt(r, "limit", 50, 1000)
	if err != nil {
		return err
	}
	ctx, cancel := timeout(r)
	defer cancel()
	samples, err := a.Samples.List(ctx, route, limit)
	if err != nil {
		a.log.Error("listing shadow samples failed", "error", err)
		return errStoreRead
	}
	writeJSON(w, http.StatusOK, map[string]any{"samples": samples})
	return nil
}
