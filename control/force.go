package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/force"
	"strangler/store"
)

// ForceTokenRequest is the body of POST /admin/routes/{name}/force-token.
type ForceTokenRequest struct {
	// Backend is where the value sends requests: legacy or modern.
	Backend domain.Backend `json:"backend"`
	// TTL is how long the value is good for, like "1h"; empty means an
	// hour.
	TTL    string `json:"ttl"`
	Reason string `json:"reason"`
}

// ForceTokenJSON is an issued value and what it does.
type ForceTokenJSON struct {
	Header     string    `json:"header"`
	Value      string    `json:"value"`
	Route      string    `json:"route"`
	Backend    string    `json:"backend"`
	ExpiresAt  time.Time `json:"expires_at"`
	TTLSeconds int64     `json:"ttl_seconds"`
	// ID names the value in the audit log and in the log line of every
	// request it forces; the value itself is shown only here, once.
	ID string `json:"id"`
}

// Bounds of a force token's life: long enough for a test session, short
// enough that a leaked value soon stops working (there is no revoking one
// but changing force_token_key).
const (
	defaultForceTTL = time.Hour
	minForceTTL     = time.Minute
	maxForceTTL     = 24 * time.Hour
)

// forceToken issues a value for the X-Strangler-Force header: the route,
// the backend and an expiry, signed with force_token_key. Issuing is
// audited (action force_token, with the value's id, never the value);
// it is refused without a key, and on a dual-write route, where a forced
// write would reach one backend only.
func (a *admin) forceToken(w http.ResponseWriter, r *http.Request, actor string) error {
	var req ForceTokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	rf, ok := a.Flags.Get(name)
	if !ok {
		return ErrNoRoute
	}
	secret, on := a.Flags.file.Load().ForceKey()
	if !on {
		return apiError(http.StatusConflict, "force tokens are off: set force_token_key in the configuration (32 random bytes, such as ${file:/run/secrets/strangler-force-key}) on every replica")
	}
	switch req.Backend {
	case domain.Legacy, domain.Modern:
	case "":
		return apiError(http.StatusBadRequest, "say which backend the requests go to: backend legacy or modern")
	default:
		return apiError(http.StatusBadRequest, "unknown backend %q; want legacy or modern", req.Backend)
	}
	ttl := defaultForceTTL
	if req.TTL != "" {
		var d config.Duration
		if err := d.UnmarshalText([]byte(req.TTL)); err != nil {
			return apiError(http.StatusBadRequest, "ttl: %v", err)
		}
		ttl = time.Duration(d)
	}
	if ttl < minForceTTL || ttl > maxForceTTL {
		return apiError(http.StatusBadRequest, "ttl %s is not from %s to %s", ttl, minForceTTL, maxForceTTL)
	}
	if req.Reason != "" {
		if err := checkReason(req.Reason); err != nil {
			return err
		}
	}
	if rf.Mode == domain.ModeDualWrite {
		return apiError(http.StatusConflict, "%s is in dual-write: a forced write would reach one backend only, so dual-write routes take no force tokens", name)
	}
	// Whole seconds, which is what a value carries; on the store's clock,
	// which the replicas checking the value share (router.Deps.StoreLead).
	now := a.storeNow().Truncate(time.Second)
	claim := force.Claim{Route: name, Backend: string(req.Backend), Expires: now.Add(ttl), ID: force.NewID()}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	if err := a.Flags.store.AppendAudit(ctx, domain.AuditEntry{
		At: now, Actor: actor, Action: "force_token", Route: name, Reason: req.Reason,
		Detail: fmt.Sprintf("requests with this value go to %s until %s (token id %s)", claim.Backend, claim.Expires.UTC().Format(time.RFC3339), claim.ID),
	}); err != nil {
		a.log.Error("force token refused: it could not be audited", "route", name, "actor", actor, "error", err)
		if errors.Is(err, store.ErrUnconfirmed) {
			// The audit log may name a token nobody holds: its value is
			// never shown but here.
			return apiError(http.StatusServiceUnavailable, "the state store did not confirm the audit entry of the force token (its commit was sent and the answer lost), so the token is not issued; the audit log may list it as issued (id %s); ask for another", claim.ID)
		}
		return apiError(http.StatusServiceUnavailable, "the state store is unavailable, so the force token cannot be audited and is not issued")
	}
	a.log.Info("force token issued", "route", name, "actor", actor, "backend", claim.Backend, "force_token", claim.ID,
		"expires_at", claim.Expires.UTC().Format(time.RFC3339))
	writeJSON(w, http.StatusCreated, ForceTokenJSON{
		Header: force.Header, Value: force.NewKey(secret).Sign(claim), Route: name, Backend: claim.Backend,
		ExpiresAt: claim.Expires.UTC(), TTLSeconds: int64(claim.Expires.Sub(now).Seconds()), ID: claim.ID,
	})
	return nil
}
