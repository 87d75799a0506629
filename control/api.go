package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/internal/human"
	"strangler/store"
)

// apiHandler serves one admin API endpoint for an authenticated actor;
// the error it returns is answered by writeError.
type apiHandler func(w http.ResponseWriter, r *http.Request, actor string) error

// errAPI is an error with the status the admin API answers it with.
type errAPI struct {
	status int
	msg    string
}

func (e errAPI) Error() string { return e.msg }

// paramError is a refused query parameter: 400, the answer naming it in
// "parameter" besides saying why in "error".
type paramError struct {
	name, msg string
}

func (e *paramError) Error() string { return e.msg }

// badParam refuses the query parameter name, saying why.
func badParam(name, format string, args ...any) error {
	return &paramError{name, fmt.Sprintf(format, args...)}
}

// onceEach refuses a query string that gives a parameter more than once.
// Every admin API parameter takes one value: a repeat is ambiguous (which
// one counts: a proxy or a cache in front may read the last where the
// facade read the first), so it is refused rather than read as the
// first. Names are compared as sent: ?Route= is no repeat of ?route=.
func onceEach(r *http.Request) error {
	q := r.URL.Query()
	names := make([]string, 0, len(q))
	for name, values := range q {
		if len(values) > 1 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return badParam(names[0], "the query parameter %q is given %d times; give it once", names[0], len(q[names[0]]))
}

func apiError(status int, format string, args ...any) error {
	return errAPI{status, fmt.Sprintf(format, args...)}
}

// statusFor is the one place that maps control-plane errors to HTTP.
func statusFor(err error) (int, string) {
	var e errAPI
	var param *paramError
	var role *roleError
	var locked *errLockedOut
	var state *store.StateError
	switch {
	case errors.As(err, &locked):
		return locked.status, locked.msg
	case errors.As(err, &e):
		return e.status, e.msg
	case errors.As(err, &param):
		return http.StatusBadRequest, param.msg
	case errors.As(err, &role):
		return http.StatusForbidden, role.Error()
	case errors.Is(err, ErrNoRoute), errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, ErrStale):
		return http.StatusPreconditionFailed, ErrStale.Error()
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, err.Error()
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, err.Error()
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, err.Error()
	case errors.Is(err, ErrGate):
		return http.StatusUnprocessableEntity, err.Error()
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, store.ErrKeyLost):
		// Only the journaled request is lost; the message says which key
		// it needs and that the rest of the write is intact.
		return http.StatusGone, err.Error()
	case errors.As(err, &state):
		return http.StatusConflict, "that action does not apply to the repair: " + state.Why
	case errors.Is(err, ErrUnconfirmed):
		return http.StatusServiceUnavailable, ErrUnconfirmed.Error()
	case errors.Is(err, ErrUnavailable):
		// Never what the store said (a table, a host, a driver's words):
		// that is logged where the error is handled.
		return http.StatusServiceUnavailable, ErrUnavailable.Error()
	}
	return http.StatusInternalServerError, "internal error; see the facade's log"
}

// writeJSON answers with v as indented JSON, each character a terminal
// acts on as a \u escape (human.PrintableWriter): an answer quotes
// clients' journaled requests and backends' data, encoding/json escapes
// only C0 controls, and an operator may read the API with curl in a
// terminal. The escapes are JSON's: the answer decodes the same.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	out := human.NewPrintableWriter(w)
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.Encode(v)
	out.Close()
}

func (a *admin) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusFor(err)
	if status == http.StatusInternalServerError {
		a.log.Error("admin API request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="strangler"`)
	}
	if lo := (*errLockedOut)(nil); errors.As(err, &lo) {
		w.Header().Set("Retry-After", strconv.Itoa(int(lo.retryAfter/time.Second)))
	}
	body := map[string]any{"error": msg}
	if role := (*roleError)(nil); errors.As(err, &role) {
		body["needs_role"] = role.need
	}
	if param := (*paramError)(nil); errors.As(err, &param) {
		body["parameter"] = param.name
	}
	var gate *GateError
	if errors.As(err, &gate) {
		body["error"] = gate.Error() + "; pass force to flip anyway"
		body["gate"], body["value_percent"], body["limit_percent"] = gate.Gate, gate.Value, gate.Limit
	}
	var stale *staleError
	if errors.As(err, &stale) {
		// What the route is now, so the caller can decide again without
		// another read that could race too.
		w.Header().Set("ETag", etag(stale.current.Version))
		body["current"] = stale.current
	}
	writeJSON(w, status, body)
}

// api wraps an endpoint with the admin API's checks: no cross-site
// browser changes, no token in the query string, a valid bearer token
// that has not expired, a limit on failed attempts per address, and a
// role that may call the endpoint (permissions). A refusal by role, here
// or by the endpoint for an action inside it, is audited (refused).
func (a *admin) api(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, err := a.authenticate(r)
		if err == nil {
			err = a.allow(r, actor, r.Pattern)
		}
		if err == nil {
			err = onceEach(r)
		}
		if err == nil {
			err = h(w, r, actor)
		}
		if err != nil {
			if role := (*roleError)(nil); errors.As(err, &role) {
				a.refused(r, actor, err)
			}
			a.writeError(w, r, err)
		}
	})
}

// mutation is api for endpoints that change something: they take a JSON
// body, which an HTML form on another site cannot send, and every
// refusal is audited (refused).
func (a *admin) mutation(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, err := a.authenticate(r)
		if err == nil {
			err = a.allow(r, actor, r.Pattern)
		}
		if err == nil {
			err = onceEach(r)
		}
		if err == nil {
			err = notJSON(r)
		}
		if err == nil {
			limitBody(w, r)
			err = h(w, r, actor)
		}
		if err != nil {
			a.refused(r, actor, err)
			a.writeError(w, r, err)
		}
	})
}

// maxBody bounds the JSON body of a change, and a status page form.
const maxBody = 64 << 10

// limitBody bounds r's body at maxBody. A body declared larger fails its
// first read at once: read on, it would keep its handler waiting for bytes
// its client may never send (up to the listener's read timeout).
func limitBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > maxBody {
		r.Body = declaredTooLarge{}
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
}

// declaredTooLarge is the body of a request whose Content-Length exceeds
// maxBody.
type declaredTooLarge struct{}

func (declaredTooLarge) Read([]byte) (int, error) { return 0, &http.MaxBytesError{Limit: maxBody} }
func (declaredTooLarge) Close() error             { return nil }

// authenticate returns the name of the request's bearer token. The name
// comes back with a cross-origin or expiry refusal too, when the token
// matched, for the audit log. Every refusal is a security event.
//
// Only a wrong token counts as a failed attempt. A request without one
// guesses nothing, and any web page can make an operator's browser send
// such requests here (an image, a link) and so lock the operator out;
// it cannot add a token: Authorization is not a header a page may send
// to another origin without a preflight, which the admin API never
// grants. A cross-site change without a token is refused before
// counting for the same reason. One with a bearer token is therefore no
// browser's but a client's that wrote Sec-Fetch-Site or Origin itself:
// its token is rationed, and a wrong one counted, like any other, and
// only a right one is then refused as cross-site (compared first, such
// tokens could be guessed at any rate, a right one told apart by its
// audited refusal). A valid token is never refused for others'
// failures: the lockout rations how often tokens are compared (lockout),
// it does not turn the right one away once compared.
func (a *admin) authenticate(r *http.Request) (string, error) {
	addr, now := a.clientAddr(r), a.now()
	crossSite := a.crossOrigin.Check(r) != nil
	if crossSite && bearer(r) == "" {
		a.security(r, "", reasonCrossOrigin, r.Pattern)
		return "", errCrossSite
	}
	if q := r.URL.Query(); q.Has("token") || q.Has("access_token") {
		a.security(r, "", reasonTokenInQuery, r.Pattern)
		return "", apiError(http.StatusBadRequest, "tokens are never accepted in the query string; send Authorization: Bearer TOKEN")
	}
	if len(r.Header.Values("Authorization")) > 1 {
		// Two callers: which one acts? net/http reads the first, a proxy
		// in front may have added the second; the public listener
		// refuses the same.
		return "", apiError(http.StatusBadRequest, "send one Authorization header; this request has several")
	}
	presented := bearer(r)
	if presented == "" {
		a.security(r, "", reasonMissingToken, r.Pattern)
		return "", apiError(http.StatusUnauthorized, "a valid admin token is required (Authorization: Bearer TOKEN)")
	}
	release, err := a.admitToken(addr, now)
	if err != nil {
		return "", err
	}
	defer release()
	tok, ok := a.Tokens.lookup(presented)
	if !ok {
		a.failedAttempt(r, addr, now)
		return "", errWrongToken
	}
	if tok.Expired(now) {
		a.security(r, tok.Name, reasonExpiredToken, r.Pattern)
		return tok.Name, apiError(http.StatusUnauthorized, "the admin token %q expired on %s; ask for a new one", tok.Name, tok.Expires)
	}
	a.lockout.succeeded(addr, now)
	if crossSite {
		a.security(r, tok.Name, reasonCrossOrigin, r.Pattern)
		return tok.Name, errCrossSite
	}
	return tok.Name, nil
}

// errCrossSite refuses a change a browser sent from another site.
var errCrossSite = apiError(http.StatusForbidden, "cross-origin requests are refused")

// errWrongToken refuses a token that matches none configured: a guess,
// which the lockout rations; refused audits it.
var errWrongToken = apiError(http.StatusUnauthorized, "the admin token is not valid; send a configured one (Authorization: Bearer TOKEN)")

// errLockedOut is a token refused unchecked by the lockout (429): it
// tells the client when to come back.
type errLockedOut struct {
	errAPI
	retryAfter time.Duration
}

// admitToken asks the lockout whether a token presented from addr is
// compared now; a refusal is counted, not logged (the lockout was logged
// when it began). An admitted check is counted as a failure until release
// is called, which the caller does once the token was compared and a
// wrong one counted (failedAttempt).
func (a *admin) admitToken(addr string, now time.Time) (release func(), err error) {
	adm := a.lockout.admit(addr, now)
	if adm.check {
		return func() { a.lockout.release(addr, adm) }, nil
	}
	a.denied.WithLabelValues(string(reasonLockedOut)).Inc()
	secs := int(math.Ceil(adm.retryAfter.Seconds()))
	from := "this address"
	if adm.listener {
		from = "many addresses"
	}
	return nil, &errLockedOut{
		errAPI:     errAPI{http.StatusTooManyRequests, fmt.Sprintf("too many wrong admin tokens from %s; this token was not checked; try again in %d s", from, secs)},
		retryAfter: time.Duration(secs) * time.Second,
	}
}

// failedAttempt records a wrong token from addr: a security event, and a
// second one when it locks addr, or the whole listener, out.
func (a *admin) failedAttempt(r *http.Request, addr string, now time.Time) {
	a.security(r, "", reasonInvalidToken, r.Pattern)
	addrLocked, listenerLocked := a.lockout.failed(addr, now)
	if addrLocked {
		a.lockouts.WithLabelValues("address").Inc()
		a.security(r, "", reasonLockedOut, r.Pattern, "scope", "address")
	}
	if listenerLocked {
		a.lockouts.WithLabelValues("listener").Inc()
		a.security(r, "", reasonLockedOut, r.Pattern, "scope", "listener")
	}
}

// decode reads a JSON body strictly: valid UTF-8, one JSON value, no
// unknown fields, no key twice in an object (which value would count?).
// An empty body decodes to nothing.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return apiError(http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", mbe.Limit)
	} else if err != nil {
		return apiError(http.StatusBadRequest, "reading the body failed: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if !utf8.Valid(body) {
		// encoding/json would put U+FFFD in place of each bad byte: the
		// audit log would keep a reason other than the one sent.
		return apiError(http.StatusBadRequest, "invalid JSON body: not valid UTF-8")
	}
	if at := loneSurrogate(body); at >= 0 {
		// encoding/json decodes it to U+FFFD, as it does a bad byte.
		return apiError(http.StatusBadRequest, "invalid JSON body: the escape %s at byte %d is half of a UTF-16 surrogate pair, not a character", body[at:at+6], at+1)
	}
	if err := checkKeys(body, v); err != nil {
		return apiError(http.StatusBadRequest, "invalid JSON body: %s", bodyProblem(err))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiError(http.StatusBadRequest, "invalid JSON body: %s", bodyProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apiError(http.StatusBadRequest, "invalid JSON body: more follows the first JSON value")
	}
	return nil
}

// maxReason bounds a reason, in characters: it goes into every listing of
// the audit log.
const maxReason = 500

// checkReason refuses a change without a reason, or with one the audit
// log cannot take (checkReasonText).
func checkReason(reason string) error {
	if strings.IndexFunc(reason, shows) < 0 {
		// Spaces alone, or zero-width characters (U+200B, U+FEFF), are a
		// reason that lists as none.
		return apiError(http.StatusBadRequest, "a reason is required; it goes into the audit log (a letter, digit, punctuation mark or symbol at least)")
	}
	return checkReasonText(reason)
}

// checkReasonText refuses a reason, required or not, too long for the
// audit log or not one line of plain text in UTF-8.
func checkReasonText(reason string) error {
	if !utf8.ValidString(reason) {
		// A status page form's, which decode has not seen: the store
		// would keep U+FFFD in place of the bytes, a reason other than
		// the one sent.
		return apiError(http.StatusBadRequest, "the reason is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(reason); n > maxReason {
		return apiError(http.StatusBadRequest, "the reason is %d characters long; at most %d go into the audit log", n, maxReason)
	}
	if strings.IndexFunc(reason, breaksAuditLine) >= 0 {
		// A newline would start a line of its own in every text listing
		// of the audit log, one that reads like another entry; an escape
		// reprograms the terminal that lists it; U+202E reverses the text
		// after it.
		return apiError(http.StatusBadRequest, "the reason holds a control character (a newline, tab or escape), a line or paragraph separator (U+2028, U+2029) or a bidirectional formatting character; write it as one line of text")
	}
	return nil
}

// shows reports whether r is a character a reader of the audit log sees:
// a letter, digit, punctuation mark or symbol, not a space, a mark alone
// or a format character.
func shows(r rune) bool {
	return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
}

// breaksAuditLine reports a character a reason may not hold: one that
// acts on a terminal, or U+2028 and U+2029, which are no control
// characters but end a line for Python's splitlines, JavaScript before
// ES2019 and many editors, so that an export read with them would show a
// forged entry.
func breaksAuditLine(r rune) bool {
	return human.ActsOnTerminal(r) || unicode.In(r, unicode.Zl, unicode.Zp)
}

// queryFlag reads a switch of the query string: 1 on, 0 or absent off.
// Anything else is refused rather than read as off: ?noise=yes answered
// the mismatch samples as if noise had not been asked for, and
// ?body=true a repair without the body its caller wanted.
func queryFlag(r *http.Request, name string) (bool, error) {
	switch r.URL.Query().Get(name) {
	case "1":
		return true, nil
	case "", "0":
		return false, nil
	}
	return false, badParam(name, "%s takes 1 (or 0)", name)
}

func queryInt(r *http.Request, name string, def, maxValue int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxValue {
		return 0, badParam(name, "%s must be a number from 1 to %d", name, maxValue)
	}
	return n, nil
}

// errStoreRead answers a read the state store cannot serve now; what it
// said is logged, not shown.
var errStoreRead = apiError(http.StatusServiceUnavailable, "the state store is unavailable, so this cannot be read now; try again shortly")

// errNoIfMatch answers a change without If-Match (RFC 6585's 428): the
// version it was decided on must come along, so that two operators never
// overwrite each other's flips unawares.
var errNoIfMatch = apiError(http.StatusPreconditionRequired,
	"If-Match is required: send the route's ETag from GET /admin/routes/{name}, such as \"3\"")

// ifMatch reads the version If-Match names: "3", 3 or W/"3" name version
// 3. "*" (any version) defeats the point and is refused like garbage, as
// is more than one tag, in a list or on two lines: a change is decided
// on one version (before, a second line was not read).
func ifMatch(r *http.Request) (int64, error) {
	vs := r.Header.Values("If-Match")
	if len(vs) == 0 || vs[0] == "" {
		return 0, errNoIfMatch
	}
	v := strings.Trim(strings.TrimPrefix(strings.TrimSpace(vs[0]), "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || len(vs) > 1 {
		return 0, apiError(http.StatusBadRequest, "If-Match must be the route's ETag, one, such as \"3\"")
	}
	return n, nil
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// timeout gives an endpoint's store calls a deadline.
func timeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), storeTimeout)
}

// admin is the admin listener's handler state.
type admin struct {
	AdminDeps
	mux *http.ServeMux
	// patterns are the endpoints registered on mux, for the test that
	// each has a decision in perms.
	patterns []string
	// perms is permissions(): who may do what.
	perms       map[string]config.Role
	crossOrigin *http.CrossOriginProtection
	lockout     lockout
	// denied is strangler_admin_denied_total, lockouts
	// strangler_admin_lockouts_total.
	denied, lockouts *prometheus.CounterVec
	log              *slog.Logger
	now              func() time.Time
}
