package control

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
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

// sessionCookie carries the status page's login: the token itself, in an
// HttpOnly, SameSite=Strict cookie no script and no other site can use.
const sessionCookie = "strangler_session"

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

// csrfToken is the status page's form token for a session: derived from
// the session's admin token, so it needs no server-side state and is
// useless without the HttpOnly cookie.
func csrfToken(sessionToken string) string {
	mac := hmac.New(sha256.New, []byte(sessionToken))
	mac.Write([]byte("strangler status page form"))
	return hex.EncodeToString(mac.Sum(nil))
}
