package control

import (
	"fmt"
	"net/http"
	"time"

	"strangler/config"
)

// anyone is the decision for what needs no token: whoever reaches the
// admin listener may use it.
const anyone config.Role = ""

// actionRepairBody is reading a journaled write's target, headers and
// body, which may hold patient data: an action decided inside the
// endpoint GET /admin/repairs/{id}.
const actionRepairBody = "GET /admin/repairs/{id}?body=1"

// actionFlipForm is the status page's flip form: shown only to a role
// that may post it.
const actionFlipForm = "POST /ui/routes/{name}"

// actionRampForm and actionChangeForm are the status page's forms that
// start, pause, resume or cancel a ramp, and approve or reject a change
// request.
const (
	actionRampForm   = "POST /ui/routes/{name}/ramp"
	actionChangeForm = "POST /ui/changes/{change}"
)

// permissions is the one table of who may do what on the admin listener:
// every endpoint's pattern, and every action decided inside an endpoint,
// with the least role it needs (anyone: no token). Every admin API call
// and status page form is checked against it (allow), and the status page
// shows a form only to a role it allows. An endpoint missing here is
// refused to everyone, and TestEveryAdminEndpointHasARoleDecision fails.
func permissions() map[string]config.Role {
	return map[string]config.Role{
		// Orchestrators, Prometheus, and the way in.
		"GET /metrics": anyone,
		"GET /healthz": anyone,
		"GET /readyz":  anyone,
		"GET /static/": anyone,
		"GET /login":   anyone,
		"POST /login":  anyone,

		// Reading: the status page, route table, reports, audit log,
		// shadow diffs and repair metadata.
		"GET /{$}":                        config.RoleViewer, // without a session: the login form
		"POST /logout":                    config.RoleViewer,
		"GET /admin/routes":               config.RoleViewer,
		"GET /admin/routes/{name}":        config.RoleViewer,
		"GET /admin/routes/{name}/report": config.RoleViewer,
		"GET /admin/routes/{name}/schema": config.RoleViewer,
		"GET /admin/report":               config.RoleViewer,
		"GET /admin/audit":                config.RoleViewer,
		"GET /admin/diffs":                config.RoleViewer,
		"GET /admin/repairs":              config.RoleViewer,
		"GET /admin/repairs/{id}":         config.RoleViewer, // without its body
		"GET /admin/changes":              config.RoleViewer,
		"GET /admin/changes/{change}":     config.RoleViewer,

		// Changes of routing: flips, ramps, and approving or rejecting
		// another's change request.
		"PATCH /admin/routes/{name}":           config.RoleOperator,
		"POST /admin/changes/{change}/approve": config.RoleOperator,
		"POST /admin/changes/{change}/reject":  config.RoleOperator,
		actionFlipForm:                         config.RoleOperator,
		actionRampForm:                         config.RoleOperator,
		actionChangeForm:                       config.RoleOperator,
		// A tester's override of one route's routing, for a while.
		"POST /admin/routes/{name}/force-token": config.RoleOperator,

		// Patient data, and the repair queue's fate.
		actionRepairBody:                 config.RoleAdmin,
		"POST /admin/repairs/{id}/retry": config.RoleAdmin,
		"POST /admin/repairs/{id}/stop":  config.RoleAdmin,
		"DELETE /admin/repairs/{id}":     config.RoleAdmin,
		"POST /admin/repairs/retry":      config.RoleAdmin,
		"POST /admin/repairs/discard":    config.RoleAdmin,
	}
}

// roleError refuses an action the caller's role does not allow (403).
type roleError struct {
	action     string
	need, have config.Role
	actor      string
}

func (e *roleError) Error() string {
	return fmt.Sprintf("%s needs the %s role; the token %q has the %s role", e.action, e.need, e.actor, e.have)
}

// may reports whether the token named actor may take action.
func (a *admin) may(actor, action string) bool {
	need, decided := a.perms[action]
	return decided && (need == anyone || a.Tokens.role(actor).Allows(need))
}

// whyMayNotChange says why the token named name may not change routes
// now, "" when it may: an approved change request is applied as its
// requester's flip, so the requester must still be allowed to make it.
func (a *admin) whyMayNotChange(name string) string {
	return a.Tokens.whyMayNotChange(name, a.Now())
}

// changeRoutes is the action whose role changing routes needs.
const changeRoutes = "PATCH /admin/routes/{name}"

// whyMayNotChange says why the token named name may not change routes at
// now, "" when it may: it is no longer configured (removed or renamed),
// it expired, or its role is below the one a flip needs.
func (t *Tokens) whyMayNotChange(name string, now time.Time) string {
	tok, ok := t.byName(name)
	switch {
	case !ok:
		return "the token of that name is no longer configured"
	case tok.Expired(now):
		return "the token expired on " + tok.Expires.String()
	case !tok.Role.Allows(permissions()[changeRoutes]):
		return fmt.Sprintf("the token has the %s role", tok.Role)
	}
	return ""
}

// allow refuses an action the token named actor may not take, naming the
// role it needs, as a security event. An action without a decision is
// refused to everyone: a missing entry in permissions is a bug, and
// refusing is the safe way to have it.
func (a *admin) allow(r *http.Request, actor, action string) error {
	if a.may(actor, action) {
		return nil
	}
	need, decided := a.perms[action]
	if !decided {
		a.log.Error("no role decision for an admin action; refused", "action", action)
		return apiError(http.StatusForbidden, "%s is refused: no role is allowed to use it", action)
	}
	a.security(r, actor, reasonRole, action)
	return &roleError{action: action, need: need, have: a.Tokens.role(actor), actor: actor}
}
