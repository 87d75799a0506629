package control

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"strangler/domain"
	"strangler/stats"
	"strangler/store"
)

// LiveStats is this replica's recent traffic per route.
type LiveStats interface {
	Window(route string, now time.Time, d time.Duration) stats.Window
}

// AuditReader reads the audit log and the end of its hash chain.
type AuditReader interface {
	AuditLog(ctx context.Context, f store.AuditFilter) ([]domain.AuditEntry, error)
	AuditHead(ctx context.Context) (store.AuditHead, error)
}

// RouteJSON is a route as the admin API shows it.
type RouteJSON struct {
	Name        string        `json:"name"`
	Match       string        `json:"match"`
	FileMode    string        `json:"file_mode"`
	FilePercent *float64      `json:"file_percent,omitempty"`
	Mode        string        `json:"mode"`
	Percent     *float64      `json:"percent,omitempty"`
	Override    *OverrideJSON `json:"override,omitempty"`
	// Held says the guard rolled the route back and holds it, and why.
	Held *Hold `json:"held,omitempty"`
	// Version is the ETag for If-Match.
	Version int64 `json:"version"`
	// Live is this replica's traffic: requests/s over the last minute,
	// rates over the last hour.
	Live LiveJSON `json:"live"`
	// Ramp is the route's latest scheduled ramp, under way or over.
	Ramp *RampJSON `json:"ramp,omitempty"`
	// PendingChange is a change request waiting for approval.
	PendingChange *ChangeJSON `json:"pending_change,omitempty"`
	// RolloutsUnknown says why Ramp and PendingChange are not known.
	RolloutsUnknown string `json:"rollouts_unknown,omitempty"`
	// Unchanged, only in the answer to a PATCH, says the route already
	// had the mode and percent asked for: nothing was stored or audited,
	// and the version is the one sent.
	Unchanged bool `json:"unchanged,omitempty"`
}

// OverrideJSON is a route's override: who flipped it, why, when, and
// how long ago by the facade's clock (so that a client's does not matter).
type OverrideJSON struct {
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason"`
	UpdatedAt  time.Time `json:"updated_at"`
	AgeSeconds float64   `json:"age_seconds"`
}

// LiveJSON is a route's traffic on the replica that answers.
type LiveJSON struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	FallbackRate      float64 `json:"fallback_rate"`
	MismatchRate      float64 `json:"mismatch_rate"`
}

func (a *admin) routeJSON(rf RouteFlags) RouteJSON {
	now := a.now()
	out := RouteJSON{
		Name: rf.Route.Name, Match: rf.Route.Match.String(),
		FileMode: string(rf.FileMode), FilePercent: rf.FilePercent,
		Mode: string(rf.Mode), Percent: rf.Percent, Version: rf.Version, Held: rf.Hold(),
	}
	if o := rf.Override; o != nil {
		out.Override = &OverrideJSON{Actor: o.Actor, Reason: o.Reason, UpdatedAt: o.UpdatedAt, AgeSeconds: now.Sub(o.UpdatedAt).Seconds()}
	}
	hour := a.Live.Window(rf.Route.Name, now, time.Hour)
	out.Live = LiveJSON{
		RequestsPerSecond: requestsPerSecond(a.Live, rf.Route.Name, now),
		FallbackRate:      rate(hour.Fallbacks, hour.Modern+hour.Fallbacks),
		MismatchRate:      rate(hour.ShadowMismatch, hour.ShadowMatch+hour.ShadowMismatch),
	}
	return out
}

// flushCounts adds this replica's latest counts to the store, so a report
// includes the last seconds; a failure only makes it slightly older.
func (a *admin) flushCounts(ctx context.Context) {
	if a.Reports.Flush == nil {
		return
	}
	if err := a.Reports.Flush(ctx); err != nil {
		a.log.Warn("flushing counts before a report failed", "error", err)
	}
}

// requestsPerSecond is this replica's rate over the last minute.
func requestsPerSecond(live LiveStats, route string, now time.Time) float64 {
	return float64(live.Window(route, now, time.Minute).Requests) / time.Minute.Seconds()
}

func rate(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func (a *admin) listRoutes(w http.ResponseWriter, r *http.Request, _ string) error {
	all := a.Flags.All()
	out := make([]RouteJSON, len(all))
	for i, rf := range all {
		out[i] = a.routeJSON(rf)
	}
	a.addRollouts(r.Context(), out)
	writeJSON(w, http.StatusOK, map[string]any{"routes": out})
	return nil
}

func (a *admin) getRoute(w http.ResponseWriter, r *http.Request, _ string) error {
	rf, ok := a.Flags.Get(r.PathValue("name"))
	if !ok {
		return ErrNoRoute
	}
	out := []RouteJSON{a.routeJSON(rf)}
	a.addRollouts(r.Context(), out)
	w.Header().Set("ETag", etag(rf.Version))
	writeJSON(w, http.StatusOK, out[0])
	return nil
}

// patchRequest is the body of PATCH /admin/routes/{name}.
type patchRequest struct {
	Mode    *domain.Mode `json:"mode"`
	Percent *float64     `json:"percent"`
	Reason  string       `json:"reason"`
	Force   bool         `json:"force"`
	// Clear removes the override, so the file's mode applies again.
	Clear bool `json:"clear"`
	// Ramp starts a scheduled ramp, or pauses, resumes or cancels one.
	Ramp *rampRequest `json:"ramp"`
}

func (a *admin) patchRoute(w http.ResponseWriter, r *http.Request, actor string) error {
	var req patchRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	if !req.Clear && req.Mode == nil && req.Percent == nil && req.Ramp == nil {
		return apiError(http.StatusBadRequest, "say what to change: mode, percent, clear or ramp")
	}
	if req.Clear && (req.Mode != nil || req.Percent != nil) {
		// The file's mode and percent apply again: a mode or percent sent
		// along would be dropped unsaid.
		return apiError(http.StatusBadRequest, "clear goes back to the file's mode; it takes no mode or percent")
	}
	if err := checkReason(req.Reason); err != nil {
		return err
	}
	if req.Ramp != nil {
		return a.patchRamp(w, r, actor, version, req)
	}
	name := r.PathValue("name")
	rf, err := a.Flags.Apply(r.Context(), Flip{
		Route: name, Actor: actor, Reason: req.Reason,
		Mode: req.Mode, Percent: req.Percent, Clear: req.Clear, Force: req.Force, IfMatch: &version,
	})
	if need := (*ApprovalRequired)(nil); errors.As(err, &need) {
		return a.requestFlip(w, r, need)
	}
	unchanged := errors.Is(err, ErrUnchanged)
	if err != nil && !unchanged {
		return a.staleAs(name, err)
	}
	out := []RouteJSON{a.routeJSON(rf)}
	a.addRollouts(r.Context(), out)
	out[0].Unchanged = unchanged
	w.Header().Set("ETag", etag(rf.Version))
	writeJSON(w, http.StatusOK, out[0])
	return nil
}

// staleError is a change refused because the route changed since the
// caller read it (412), with the route as it is now.
type staleError struct{ current RouteJSON }

func (e *staleError) Error() string        { return ErrStale.Error() }
func (e *staleError) Is(target error) bool { return target == ErrStale }

func (a *admin) routeReport(w http.ResponseWriter, r *http.Request, _ string) error {
	rf, ok := a.Flags.Get(r.PathValue("name"))
	if !ok {
		return ErrNoRoute
	}
	ctx, cancel := timeout(r)
	defer cancel()
	a.flushCounts(ctx)
	rep, err := a.Reports.Route(ctx, rf, a.now())
	if err != nil {
		a.log.Error("building a retirement report failed", "route", rf.Route.Name, "error", err)
		return errStoreRead
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (a *admin) report(w http.ResponseWriter, r *http.Request, _ string) error {
	ctx, cancel := timeout(r)
	defer cancel()
	a.flushCounts(ctx)
	var out []RouteReport
	for _, rf := range a.Flags.All() {
		rep, err := a.Reports.Route(ctx, rf, a.now())
		if err != nil {
			a.log.Error("building a retirement report failed", "route", rf.Route.Name, "error", err)
			return errStoreRead
		}
		out = append(out, rep)
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": out, "generated_at": a.now().UTC()})
	return nil
}

// auditJSON is an audit entry as the admin API shows it.
type auditJSON struct {
	ID          int64     `json:"id"`
	At          time.Time `json:"at"`
	Actor       string    `json:"actor"`
	Action      string    `json:"action"`
	Route       string    `json:"route,omitempty"`
	FromMode    string    `json:"from_mode,omitempty"`
	ToMode      string    `json:"to_mode,omitempty"`
	FromPercent *float64  `json:"from_percent,omitempty"`
	ToPercent   *float64  `json:"to_percent,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Forced      bool      `json:"forced,omitempty"`
	Detail      string    `json:"detail,omitempty"`
	// PrevHash and Hash link the entry into the hash chain.
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

func toAuditJSON(e domain.AuditEntry) auditJSON {
	return auditJSON{
		ID: e.ID, At: e.At.UTC(), Actor: e.Actor, Action: e.Action, Route: e.Route,
		FromMode: string(e.FromMode), ToMode: string(e.ToMode), FromPercent: e.FromPercent, ToPercent: e.ToPercent,
		Reason: e.Reason, Forced: e.Forced, Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash,
	}
}

// chainJSON is the end of the audit log's hash chain: an auditor who
// keeps it can later tell that nothing up to it was rewritten.
type chainJSON struct {
	HeadID   int64  `json:"head_id"`
	HeadHash string `json:"head_hash"`
	// PreChainLastID is the newest entry written before the store had a
	// chain; those were chained when it was upgraded, at StartedAt.
	PreChainLastID int64     `json:"pre_chain_last_id"`
	StartedAt      time.Time `json:"started_at"`
}

func (a *admin) audit(w http.ResponseWriter, r *http.Request, _ string) error {
	limit, err := queryInt(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	f := store.AuditFilter{Route: r.URL.Query().Get("route"), Limit: limit}
	if b := r.URL.Query().Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			return badParam("before", "before must be an RFC 3339 time")
		}
		f.Before = &t
	}
	if v := r.URL.Query().Get("before_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 1 {
			return badParam("before_id", "before_id must be an entry's id: a whole number from 1")
		}
		f.BeforeID = id
	}
	ctx, cancel := timeout(r)
	defer cancel()
	// The head first: the entries read after it are at least as new.
	head, err := a.Audit.AuditHead(ctx)
	if err != nil {
		a.log.Error("reading the audit chain's head failed", "error", err)
		return errStoreRead
	}
	entries, err := a.Audit.AuditLog(ctx, f)
	if err != nil {
		a.log.Error("reading the audit log failed", "error", err)
		return errStoreRead
	}
	out := make([]auditJSON, len(entries))
	for i, e := range entries {
		out[i] = toAuditJSON(e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out, "chain": chainJSON{
		HeadID: head.ID, HeadHash: head.Hash, PreChainLastID: head.PreChainLastID, StartedAt: head.StartedAt.UTC(),
	}})
	return nil
}
