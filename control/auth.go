package control

import (
	"context"
	"crypto/subtle"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"strangler/config"
)

// Tokens are the admin tokens of the current configuration. Reloads swap
// them; requests read them without a lock.
type Tokens struct {
	list atomic.Pointer[[]config.Token]
}

// Set replaces the tokens.
func (t *Tokens) Set(list []config.Token) { t.list.Store(&list) }

// Configured reports whether any token is set: without one, nobody can use
// the admin API or the status page.
func (t *Tokens) Configured() bool {
	list := t.list.Load()
	return list != nil && len(*list) > 0
}

// actor returns the name of the token presented, comparing in constant
// time against every configured token so that the time taken says nothing
// about how close a guess was.
func (t *Tokens) actor(presented string) (string, bool) {
	list := t.list.Load()
	if list == nil || presented == "" {
		return "", false
	}
	name, found := "", 0
	for _, tok := range *list {
		if subtle.ConstantTimeCompare([]byte(presented), []byte(tok.Token)) == 1 {
			name, found = tok.Name, 1
		}
	}
	return name, found == 1
}

// token returns the token named name, if the configuration has one.
func (t *Tokens) token(name string) (string, bool) {
	list := t.list.Load()
	if list == nil {
		return "", false
	}
	for _, tok := range *list {
		if tok.Name == name {
			return string(tok.Token), true
		}
	}
	return "", false
}

// failedLogins limits guessing: after maxFailures failures from one
// address within failureWindow, further attempts are refused outright
// until the window has passed.
type failedLogins struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

const (
	maxFailures   = 10
	failureWindow = time.Minute
)

func (f *failedLogins) blocked(addr string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	recent := f.recent(addr, now)
	return len(recent) >= maxFailures
}

func (f *failedLogins) fail(addr string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[addr] = append(f.recent(addr, now), now)
	// Forget addresses that stopped trying, so the map stays small.
	if len(f.failures) > 10000 {
		for a := range f.failures {
			if len(f.recent(a, now)) == 0 {
				delete(f.failures, a)
			}
		}
	}
}

// recent drops addr's failures older than the window and returns the rest.
func (f *failedLogins) recent(addr string, now time.Time) []time.Time {
	if f.failures == nil {
		f.failures = map[string][]time.Time{}
	}
	list := f.failures[addr]
	i := 0
	for i < len(list) && now.Sub(list[i]) > failureWindow {
		i++
	}
	list = list[i:]
	if len(list) == 0 {
		delete(f.failures, addr)
	} else {
		f.failures[addr] = list
	}
	return list
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// bearer returns the token of an "Authorization: Bearer …" header. A
// token in the query string is never accepted: it would end up in access
// logs and browser history.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// crossOrigin reports whether a browser sent the request from another
// site: the Fetch metadata or Origin header says so. Non-browser clients
// send neither and are judged by their token alone. Under the status
// page's Referrer-Policy: no-referrer, browsers send "Origin: null" even on
// a same-origin post (Fetch standard, "serializing a request origin"), so
// then only the Fetch metadata can vouch for it.
func crossOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	origin := r.Header.Get("Origin")
	switch origin {
	case "":
		return false
	case "null":
		return r.Header.Get("Sec-Fetch-Site") != "same-origin"
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host
}

// isJSON reports whether the request body is declared JSON. Browsers
// cannot send that cross-site without a preflight, which the admin API
// never grants.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// refused audits a change the admin API or the status page turned away,
// as a "denied" entry naming who (the token's name, or unauthenticated;
// never the token), what and why, like a flip a gate refused. Only the
// refusals that say something about who tried are audited: no valid
// credentials (401), not allowed (403), a conflict with the current state
// (409), a stale version (412), no version at all (428). Malformed
// requests and lockouts are not, nor changes of routes or repairs that do
// not exist: anyone could fill the log with those.
func (a *admin) refused(r *http.Request, actor string, err error) {
	status, msg := statusFor(err)
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusConflict,
		http.StatusPreconditionFailed, http.StatusPreconditionRequired:
	default:
		return
	}
	ctx, cancel := timeout(r)
	defer cancel()
	route, ok := a.routeOf(ctx, r)
	if !ok {
		return
	}
	if actor == "" {
		actor = "unauthenticated"
	}
	a.Flags.Deny(ctx, route, actor, fmt.Sprintf("%s %s refused (%d): %s; from %s",
		r.Method, r.URL.Path, status, msg, clientAddr(r)))
}

// routeOf is the route a change is about: the route it names, or the
// route of the repair it names; false if there is no such route or repair.
func (a *admin) routeOf(ctx context.Context, r *http.Request) (string, bool) {
	if name := r.PathValue("name"); name != "" {
		_, ok := a.Flags.Get(name)
		return name, ok
	}
	if id := r.PathValue("id"); id != "" {
		rep, err := a.Repairs.GetRepair(ctx, id, false)
		return rep.Route, err == nil
	}
	return "", false
}
