package control

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/internal/testdb"
	"strangler/store"
)

// sessionID is the session id the browser holds.
func (h *pageAdmin) sessionID(t *testing.T) string {
	t.Helper()
	u, _ := url.Parse(h.URL)
	for _, c := range h.client.Jar.Cookies(u) {
		if c.Name == plainSessionCookie {
			return c.Value
		}
	}
	t.Fatal("the browser holds no session cookie")
	return ""
}

// sendAs sends a request carrying the session cookie id, from a client
// with no cookie jar: a stolen or replayed cookie.
func (h *pageAdmin) sendAs(t *testing.T, id, method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, h.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", plainSessionCookie+"="+id)
	req.Header.Set("Origin", h.URL)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const sessionEnded = "Your session has ended"

func TestStatusPageSessionIsARandomIDTheStoreKeepsHashed(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	id := h.sessionID(t)
	if strings.Contains(id, pageToken) || id == base64.RawURLEncoding.EncodeToString([]byte(pageToken)) {
		t.Errorf("the cookie %q carries the token", id)
	}
	if len(id) < 26 {
		t.Errorf("the session id %q is shorter than 128 random bits in base32", id)
	}
	ctx, now := context.Background(), h.clock.Now()
	if _, err := h.store.UseSession(ctx, id, now, time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the store finds the session by the cookie's own value (%v): it keeps the id in clear", err)
	}
	if s, err := h.store.UseSession(ctx, storedID(id), now, time.Hour); err != nil || s.Actor != "ops-alice" {
		t.Errorf("the store has %+v, %v for the id's hash, want ops-alice's session", s, err)
	}
	h.login(t, pageOtherToken)
	if again := h.sessionID(t); again == id {
		t.Error("a second login kept the session id")
	}
	if resp, body := h.sendAs(t, id, "GET", "/", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, sessionEnded) {
		t.Errorf("the session a new login replaced: got %d without %q, want it ended", resp.StatusCode, sessionEnded)
	}
}

func TestStatusPageSessionExpiresAfterEightHoursUnused(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	for i := range 3 {
		h.clock.Advance(sessionIdle - time.Minute)
		if resp, body := h.send(t, "GET", "/", nil); !strings.Contains(body, `id="routes"`) {
			t.Fatalf("used again %d times, %v after the last use: got %d, want the status page", i+1, sessionIdle-time.Minute, resp.StatusCode)
		}
	}
	id := h.sessionID(t)
	h.clock.Advance(sessionIdle + time.Second)
	resp, body := h.send(t, "GET", "/", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, sessionEnded) || !strings.Contains(body, `action="/login"`) {
		t.Errorf("%v unused: got %d, want the login page saying the session ended", sessionIdle+time.Second, resp.StatusCode)
	}
	if c := resp.Cookies(); len(c) != 1 || c[0].Name != plainSessionCookie || c[0].MaxAge >= 0 {
		t.Errorf("got cookies %v, want the session cookie dropped", resp.Header["Set-Cookie"])
	}
	form := flipForm(csrfToken(id), "0", "modern", "with an expired session")
	if resp, _ := h.sendAs(t, id, "POST", "/ui/routes/get-patient", form); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a flip with the expired session: got %d, want 403", resp.StatusCode)
	}
	if rf, _ := h.flags.Get("get-patient"); rf.Override != nil {
		t.Errorf("the expired session flipped get-patient to %s", rf.Mode)
	}
}

func TestStatusPageSessionEndsWhenItsTokenChanges(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	h.tokens.Set([]config.Token{{Name: "ops-alice", Token: "page-ops-token-rotated-000"}, {Name: "dev-bob", Token: pageOtherToken}})
	if _, body := h.send(t, "GET", "/", nil); !strings.Contains(body, sessionEnded) {
		t.Error("after ops-alice's token was rotated, the session opened with the old one still works")
	}
}

func TestStatusPageLogoutEndsTheSessionOnEveryReplica(t *testing.T) {
	dsn := testdb.Postgres(t)
	c := &clock{t: time.Date(2026, 11, 1, 12, 30, 0, 0, time.UTC)}
	var replicas [2]*pageAdmin
	for i := range replicas {
		st, err := store.Open(context.Background(), dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		replicas[i] = newPageAdminOn(t, st, c)
	}
	one, other := replicas[0], replicas[1]
	one.login(t, pageToken)
	id := one.sessionID(t)
	if _, body := other.sendAs(t, id, "GET", "/", nil); !strings.Contains(body, "Signed in as <strong>ops-alice</strong>") {
		t.Fatal("the other replica does not know the session")
	}
	_, csrf := one.page(t)
	if resp, _ := one.send(t, "POST", "/logout", url.Values{"csrf": {csrf}}, "Origin", one.URL); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: got %d, want 303", resp.StatusCode)
	}
	for i, h := range replicas {
		if _, body := h.sendAs(t, id, "GET", "/", nil); !strings.Contains(body, sessionEnded) {
			t.Errorf("replica %d: the logged-out session still opens the status page", i)
		}
	}
	resp, _ := other.sendAs(t, id, "POST", "/ui/routes/get-patient", flipForm(csrf, "0", "modern", "after logout"))
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a flip with the logged-out session: got %d, want 403", resp.StatusCode)
	}
	// Without a session nobody is named: a security event, not an audit
	// entry (see TestRefusalsWithoutCredentialsLeaveTheAuditLogAlone).
	if entries := other.auditEntries(t); len(entries) != 0 {
		t.Errorf("audit log %+v, want nothing", entries)
	}
	if lines := other.logs.matching(t, "security"); len(lines) != 1 || lines[0]["reason"] != string(reasonNoSession) {
		t.Errorf("security lines %v, want the refused flip as no_session", lines)
	}
}

func TestStatusPageWithoutTheStoreSaysSo(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	h.store.Close()
	resp, body := h.send(t, "GET", "/", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "state store is unreachable") {
		t.Errorf("GET / with a session: got %d, want 503 saying the store is unreachable", resp.StatusCode)
	}
	resp, body = h.send(t, "POST", "/login", url.Values{"token": {pageToken}}, "Origin", h.URL)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "needs the state store") {
		t.Errorf("login: got %d, want 503 saying logging in needs the store", resp.StatusCode)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("a login that could not be stored set %v", resp.Header["Set-Cookie"])
	}
}
