package router

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"strangler/domain"
	"strangler/edge"
	"strangler/edge/canonical"
	"strangler/telemetry"
	"strangler/upstream"
)

// admit canonicalizes req once, at the edge, and matches it: it sets x's
// route, parameters and route key, and returns the canonical request and
// why the request is refused (nil if it is not). Everything after, the
// route, the path forwarded, the dual-write resource, read-repair keys and
// counts, works on this one form.
func (t *Table) admit(req *http.Request, x *exchange) (canonical.Request, error) {
	x.route = t.unmatched
	if err := edge.Framing(req); err != nil {
		// First: whatever else is wrong with it, the connection must close.
		return canonical.Request{}, err
	}
	// The fields the client's Connection field names reach no backend, so
	// no decision may read them: "Connection: Content-Type" made a POST
	// text/plain here and untyped, a form to Rails, at legacy (found by
	// the red team).
	upstream.RemoveNominated(req.Header)
	in, err := t.policy.Admit(req)
	if err != nil || in.OptionsStar {
		return in, err
	}
	x.key = canonical.RouteKey(in.Path.Escaped)
	x.loose = loosePath{key: x.key}
	return in, t.admitRoute(req, x, in.Path.EncodedSlash)
}

// admitRoute matches the request to its route and refuses it when the
// route may not serve it (admit). encodedSlash says its path holds a %2F.
func (t *Table) admitRoute(req *http.Request, x *exchange, encodedSlash bool) error {
	x.route, x.params = t.match(req.Method, x.key)
	if encodedSlash && !x.route.allowEncodedSlash {
		return canonical.ErrEncodedSlash
	}
	if err := t.checkLoose(req, &x.loose, x.route); err != nil {
		return err
	}
	return t.checkDeciding(req.Header, x.route)
}

// checkDeciding refuses a request that sends a header the facade decides
// on for rt more than once, or also spelled with _ for - where such names
// reach backends (headers_with_underscores: allow): the route's sticky
// header and, on a dual-write route, the idempotency_scope headers. The
// facade reads the first value; Node, Puma and nginx's FastCGI join them
// ("u1, u2") and PHP reads X_User_Id as X-User-Id, the last one winning,
// so the split or the key's scope went by one client while the backend
// served another (found by the red team).
func (t *Table) checkDeciding(h http.Header, rt *route) error {
	if err := t.oneSpelling(h, rt.sticky.Header, "splits clients on"); err != nil {
		return err
	}
	if rt.mode != domain.ModeDualWrite {
		return nil
	}
	for _, c := range t.idempotencyScope {
		if err := t.oneSpelling(h, c.Header, "scopes Idempotency-Keys by"); err != nil {
			return err
		}
	}
	return nil
}

// oneSpelling refuses h when it holds the header name ("" for none) more
// than once, or also spelled with _ for - under headers_with_underscores:
// allow. use says what the facade does with it.
func (t *Table) oneSpelling(h http.Header, name, use string) error {
	// Configured as written (header:x-user-id); canonical already, it is
	// returned as is.
	name = http.CanonicalHeaderKey(name)
	if name == "" || len(h[name]) < 2 && (t.dropOddHeaders || !spelledWithUnderscore(h, name)) {
		return nil
	}
	return &canonical.Refusal{Status: http.StatusBadRequest,
		Msg: fmt.Sprintf("the request sends the %s header more than once or spelled %s, which the route %s, and a backend may read another value than the facade; send it once, spelled with -",
			name, strings.ReplaceAll(name, "-", "_"), use)}
}

// checkLoose refuses a request that a backend reading it loosely would
// serve from another route than rt, the one the facade chose: a path that
// matches another route only folded (canonical.Fold), or a method override
// naming a method another route serves (a POST standing for a PUT would
// reach the PUT route's resource past it; a write routed as a POST would
// be journaled as one while the primary read it as another method).
func (t *Table) checkLoose(req *http.Request, p *loosePath, rt *route) error {
	other, err := t.matchFolded(req.Method, p, rt)
	switch {
	case err != nil:
		return err
	case other != nil:
		return &canonical.Refusal{Status: http.StatusBadRequest,
			Msg: fmt.Sprintf("the path matches route %q only when case, fullwidth characters, trailing dots, a format suffix (.json), a leading PHP script (/index.php) or an index page (/index) are ignored, as some backends read paths; send the route's own spelling", other.name)}
	}
	if err := t.checkTwin(req.Method, p, rt); err != nil {
		return err
	}
	return t.checkOverrides(canonical.MethodOverrides(req, !t.dropOddHeaders), req.Method, p, rt)
}

// checkTwin refuses a PUT or PATCH that rt, the default route, serves
// while a route for the other of the two takes its path: Rails' and
// Laravel's resource routes send PUT and PATCH alike to update, so PATCH
// /records/4 (and a POST with _method=patch, the method Rails' forms
// send) updated the record at legacy alone, past a dual-write route for
// PUT /records/{id} (found by the red team). A route of its own for the
// method, or for every method, serves it.
func (t *Table) checkTwin(method string, p *loosePath, rt *route) error {
	twin := updateTwins[method]
	if twin == "" || rt != t.unmatched {
		return nil
	}
	other, err := t.otherRoute(twin, p, rt)
	if other == nil || err != nil {
		return err
	}
	return &canonical.Refusal{Status: http.StatusBadRequest,
		Msg: fmt.Sprintf("no route serves %s on this path, and route %q serves %s on it, which backends serving PUT and PATCH alike (Rails, Laravel) read it as; send %s, or add a route for %s", method, other.name, twin, twin, method)}
}

// updateTwins pairs the methods Rails' and Laravel's resource routes serve
// alike, as update.
var updateTwins = map[string]string{http.MethodPut: http.MethodPatch, http.MethodPatch: http.MethodPut}

// checkOverrides refuses a request of method, routed to rt, that asks to
// be read as one of methods another route serves, on its path as sent or
// as a backend reading paths loosely reads it (POST /Records/4 standing
// for a PUT reached a dual-write PUT /records/{id} past it; found by the
// red team).
func (t *Table) checkOverrides(methods []string, method string, p *loosePath, rt *route) error {
	// Each costs a match and a folded match; a client sending thousands
	// ("A,A1,A2,…" in one header) held a core for seconds. methods is the
	// caller's own, sorted in place: a copy cost every request 3
	// allocations.
	slices.Sort(methods)
	if methods = slices.Compact(methods); len(methods) > maxOverrides {
		return errManyOverrides
	}
	for _, m := range methods {
		if m == method {
			continue
		}
		other, err := t.otherRoute(m, p, rt)
		if err != nil {
			return err
		}
		if other != nil {
			return &canonical.Refusal{Status: http.StatusBadRequest,
				Msg: fmt.Sprintf("the request overrides its method (X-HTTP-Method-Override or _method) with one route %q serves, not route %q of its own method; send that method itself", other.name, rt.name)}
		}
		if own, _ := t.match(m, p.key); own == t.unmatched {
			if err := t.checkTwin(m, p, own); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxOverrides bounds the distinct methods a request may ask to be read
// as: one is what a client means.
const maxOverrides = 8

var errManyOverrides = &canonical.Refusal{Status: http.StatusBadRequest,
	Msg: "the request overrides its method (X-HTTP-Method-Override or _method) with more than 8 methods; send one"}

// checkFormOverride refuses a POST whose form or JSON body has a _method
// field naming a method another route serves on its path (Rails, Laravel
// and Symfony read a form's, Laravel a JSON object's, as the request's
// method): a form POSTing _method=PUT reached legacy alone, past a
// dual-write PUT route, and so did JSON (found by the red team). The body
// is read only when it is a form (as Rack or PHP reads one, an untyped
// body included) or JSON and another route serves a
// write method on the path, or the route is dual-write (whose journal
// orders the write by what its _method says), buffered as a replayed body is
// (max_replay_body, replay_budget), before any backend sees a byte; a
// body in a Content-Encoding, which the facade does not undo and Express
// does, is refused (415) unread. It reports whether to go on.
func (t *Table) checkFormOverride(x *exchange, req *http.Request) bool {
	if req.Method != http.MethodPost || req.ContentLength == 0 {
		return true
	}
	types := req.Header["Content-Type"]
	if len(types) == 0 {
		// Rack reads a POST body without a type as a form (IsForm): one
		// holding _method=PUT reached legacy alone, past a dual-write PUT
		// route on its path (found by the red team).
		types = noContentType
	}
	// Under headers_with_underscores: allow, PHP reads Content_Type as
	// another Content-Type (Symfony's ServerBag), whatever this one says.
	oddType := !t.dropOddHeaders && spelledWithUnderscore(req.Header, "Content-Type")
	if !oddType && !slices.ContainsFunc(types, canonical.IsForm) && !slices.ContainsFunc(types, canonical.IsJSON) {
		return true
	}
	// Only another route for a write matters: a POST read as a GET, HEAD
	// or OPTIONS writes nothing past a route. On a dual-write route the
	// method matters anyway: the journal orders the write, and reads the
	// secondary's answer, by what it stands for (canonical.StandsFor),
	// which must be what the backends read: a _method the facade could
	// not read there (a gzip body Express undoes, a form Rack 2 splits
	// on ";") made the facade take a DELETE for a create.
	p := &x.loose
	if x.route.mode != domain.ModeDualWrite && !slices.ContainsFunc(t.policy.Methods(), func(m string) bool {
		if m == req.Method || isSafe(m) {
			return false
		}
		other, _ := t.otherRoute(m, p, x.route)
		return other != nil
	}) {
		return true
	}
	switch {
	case len(types) > 1 || oddType:
		// A backend may read another of them than the first.
		t.refuse(x, req, errContentTypes)
		return false
	case encoded(req.Header):
		t.refuse(x, req, errEncodedForm)
		return false
	}
	if !t.bufferForReplay(x, req) {
		return false
	}
	ms, err := canonical.BodyMethodOverrides(types[0], x.replay)
	if err == nil {
		err = t.checkOverrides(ms, req.Method, p, x.route)
	}
	if err != nil {
		t.refuse(x, req, err)
		return false
	}
	return true
}

// readAs is the method the backends read a request as
// (canonical.StandsFor) with method, the headers h that reach them,
// target (path and query) and body (nil when it is not buffered: its
// headers and query alone say then); "" when its overrides name several
// methods, or a token the facade does not know as a method (any token the
// client chose, which may name a patient). The journal (Intent.StandsFor),
// the fallback replay rule and schema learning take it from here.
func (t *Table) readAs(method string, h http.Header, target string, body []byte) string {
	if sf := canonical.StandsFor(method, h, target, body); t.policy.Known(sf) {
		return sf
	}
	return ""
}

// noContentType stands for the Content-Type of a request that has none.
var noContentType = []string{""}

// encoded reports a Content-Encoding other than identity.
func encoded(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return true
			}
		}
	}
	return false
}

// errEncodedForm refuses a form or JSON body in a Content-Encoding on a
// path where a _method field in it would matter: Express's body parsers
// undo gzip, deflate and br before method-override reads the field, and
// the facade does not look inside.
var errEncodedForm = &canonical.Refusal{Status: http.StatusUnsupportedMediaType,
	Msg: "the form or JSON body has a Content-Encoding, and a _method field in it could give the request another route's method; send it without one"}

// useCanonical makes req's URL the canonical one, which every later step
// reads and the backend receives. The query stays as the client sent it.
func (x *exchange) useCanonical(req *http.Request, p canonical.Path) {
	x.reqURL = *req.URL
	x.reqURL.Path, x.reqURL.RawPath = p.Decoded(), p.Escaped
	req.URL = &x.reqURL
}

// admitBody puts the client's body behind body_timeout and max_body, and
// refuses at once a body whose Content-Length is over max_body. It reports
// whether to go on.
func (t *Table) admitBody(x *exchange, w http.ResponseWriter, req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	if limit := x.route.maxBody; limit > 0 && req.ContentLength > limit {
		t.refuse(x, req, errBodyOverMax)
		return false
	}
	trusted := t.isTrusted(req.RemoteAddr)
	x.body.wrap(req, w, t.bodyTimeout, x.route.maxBody, func(h http.Header) { t.dropTrailer(h, trusted) })
	return true
}

// refuse answers a request the facade will not serve, or whose body broke,
// with the status statusFor gives err, and logs it once: never its path,
// which may name a patient.
func (t *Table) refuse(x *exchange, req *http.Request, err error) {
	status := statusFor(req, err).status
	t.log.LogAttrs(req.Context(), slog.LevelInfo, "request refused",
		slog.String("route", x.route.name),
		slog.String("method", t.methodName(req.Method)),
		slog.Int("status", status),
		slog.String("reason", err.Error()),
		slog.String("request_id", x.id))
	h := x.w.Header()
	if status == http.StatusMethodNotAllowed {
		h.Set("Allow", t.policy.Allow())
	}
	if isBodyFailure(err) || err == edge.ErrAmbiguousFraming || err == errReplayBudget {
		// The rest of the body cannot be told from the next request (or,
		// with the budget full, is not worth reading on).
		h.Set("Connection", "close")
	}
	edge.CloseUnread(&x.w, req)
	t.writeError(&x.w, req, x, err)
}

// errContentTypes refuses a form POST with several Content-Type headers
// (Content_Type counting as one where it reaches backends) on a path
// where its _method field would matter.
var errContentTypes = &canonical.Refusal{Status: http.StatusBadRequest, Msg: "the request has more than one Content-Type header (Content_Type counts as one), and a backend reading another than the first may find a _method field in a form; send one"}

// methodName is how logs and spans name method: as sent when the facade
// knows it, else telemetry.MethodOther. A client may send any token of
// any length as its method (a record number, kilobytes of it), and a 405
// keeps none of it.
func (t *Table) methodName(method string) string {
	if t.policy.Known(method) {
		return method
	}
	return telemetry.MethodOther
}

func isBodyFailure(err error) bool {
	return errors.Is(err, errBodyIncomplete) || errors.Is(err, errBodyTimeout) || errors.Is(err, errBodyOverMax)
}

// answerOptions answers "OPTIONS *", a question about the facade itself
// (RFC 9110 section 9.3.7), with the methods it lets through.
func (t *Table) answerOptions(x *exchange) {
	h := x.w.Header()
	h.Set("Allow", t.policy.Allow())
	h.Set("Content-Length", "0")
	x.w.WriteHeader(http.StatusOK)
}
