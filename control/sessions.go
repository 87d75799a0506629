package control

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"strangler/store"
)

// SessionStore keeps the status page's sessions where every replica sees
// them: a login on one replica is known to all, a logout ends it on all.
type SessionStore interface {
	// Both run on the store's clock with PostgreSQL (every replica's),
	// on now with the embedded store.
	CreateSession(ctx context.Context, s store.Session, now time.Time, idle time.Duration) error
	UseSession(ctx context.Context, id string, now time.Time, idle time.Duration) (store.Session, error)
	DeleteSession(ctx context.Context, id string) error
}

// sessionIdle is how long a status page session lasts unused.
const sessionIdle = 8 * time.Hour

// sessionCookie is the base name (admin.setCookie) of the cookie that
// carries the status page's session id: random and opaque (the token never
// leaves the login form), HttpOnly and SameSite=Strict so that no script
// and no other site can use it.
const sessionCookie = "session"

// session is a status page login.
type session struct {
	// id is the cookie's value; the store knows only its hash.
	id    string
	actor string
}

// errSessionStore answers a page request whose session cannot be checked,
// opened or ended because the state store is unreachable.
var errSessionStore = errors.New("the state store is unreachable, so status page sessions cannot be checked")

// storedID is what the store keeps of a session id: its hash, so that a
// copy of the store opens no session.
func storedID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// binding ties a session to the token it was opened with: when that token
// is changed or removed in the configuration, its sessions end. Keyed by
// the session id, it says nothing about the token to whoever reads the
// store without the cookie.
func binding(id, token string) string {
	mac := hmac.New(sha256.New, []byte(id))
	mac.Write([]byte(token))
	return hex.EncodeToString(mac.Sum(nil))
}

// openSession stores a new session for the token named actor and returns
// its id, for the cookie.
func (a *admin) openSession(ctx context.Context, actor, token string) (string, error) {
	id, now := rand.Text(), a.now()
	s := store.Session{ID: storedID(id), Actor: actor, Binding: binding(id, token)}
	if err := a.Sessions.CreateSession(ctx, s, now, sessionIdle); err != nil {
		return "", fmt.Errorf("open session: %w", err)
	}
	return id, nil
}

// sessionOf returns the request's session and records its use. ok is
// false without one, or when it ended: logged out, unused for
// sessionIdle, or its token changed, removed or expired. err is errSessionStore
// when the store cannot tell.
func (a *admin) sessionOf(r *http.Request) (s session, ok bool, err error) {
	c, err := a.cookie(r, sessionCookie)
	if err != nil || !plausibleSessionID(c.Value) {
		return session{}, false, nil
	}
	ctx, cancel := timeout(r)
	defer cancel()
	now := a.now()
	stored, err := a.Sessions.UseSession(ctx, storedID(c.Value), now, sessionIdle)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return session{}, false, nil
	case err != nil:
		a.log.Error("checking a status page session failed", "error", err)
		return session{}, false, errSessionStore
	}
	tok, ok := a.Tokens.byName(stored.Actor)
	if !ok || !hmac.Equal([]byte(binding(c.Value, string(tok.Token))), []byte(stored.Binding)) {
		return session{}, false, nil
	}
	if tok.Expired(now) {
		a.security(r, tok.Name, reasonExpiredToken, r.Pattern)
		return session{}, false, nil
	}
	return session{id: c.Value, actor: stored.Actor}, true, nil
}

// plausibleSessionID reports whether v can be a session id (rand.Text's
// base32), so that junk never reaches the store.
func plausibleSessionID(v string) bool {
	if len(v) < 26 || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// closeSession ends the session with id on every replica.
func (a *admin) closeSession(ctx context.Context, id string) error {
	if err := a.Sessions.DeleteSession(ctx, storedID(id)); err != nil {
		return fmt.Errorf("close session: %w", err)
	}
	return nil
}

// setSessionCookie hands the browser its session id.
func (a *admin) setSessionCookie(w http.ResponseWriter, r *http.Request, id string) {
	a.setCookie(w, r, sessionCookie, id, 0)
}

// csrfToken is the status page's form token for a session: derived from
// the session id, so it needs no state of its own and is useless without
// the HttpOnly cookie.
func csrfToken(sessionID string) string {
	mac := hmac.New(sha256.New, []byte(sessionID))
	mac.Write([]byte("strangler status page form"))
	return hex.EncodeToString(mac.Sum(nil))
}
