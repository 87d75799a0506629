package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"strangler/config/configfile"
	"strangler/internal/filecap"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// adminAnswer sends raw to the admin listener at addr on a connection of
// its own and returns the answer's status and body.
func adminAnswer(t *testing.T, addr, raw string) (int, string, http.Header) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// withAdminHosts adds admin.hosts to the status page's configuration at
// path.
func withAdminHosts(t *testing.T, path, hosts string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "admin:\n  listen: \"127.0.0.1:0\"\n", "admin:\n  listen: \"127.0.0.1:0\"\n  hosts: ["+hosts+"]\n", 1)
	if y == string(b) {
		t.Fatal("the status page's config has no admin listen line to add hosts to")
	}
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTheAdminListenerAnswersOnlyToItsOwnHostNames: a page on a name its
// owner points at 127.0.0.1 (DNS rebinding) is, to the operator's
// browser, the admin listener's own origin; its requests carry its own
// name in Host. The listener answered every one of them, so such a page
// read /metrics, /readyz and the login page, and posted the status page's
// forms with the operator's session cookie. Now a Host that is not
// localhost, an IP address or a name listed in admin.hosts is refused
// with a JSON 421 before any handler, whatever the spelling; a name
// X-Forwarded-Host gives is never read; and the names the listener does
// answer to work in every spelling a client sends them.
func TestTheAdminListenerAnswersOnlyToItsOwnHostNames(t *testing.T) {
	legacy := backendAnswering(t, `[]`)
	path := writeStatusPageConfig(t, legacy.URL, legacy.URL)
	withAdminHosts(t, path, "admin.example.internal")
	r := startServeWith(t, path, facadeOptions{adminNow: time.Now, reloader: &reloader{
		path: path, env: configfile.Env{Getenv: noEnv, ReadFile: filecap.Read}, log: slog.New(slog.DiscardHandler),
	}})
	_, port, _ := net.SplitHostPort(r.admin)
	session, csrf := logIn(t, r.admin)
	denied := func() float64 {
		return testkit.Scrape(t, "http://"+r.admin+"/metrics").Value("strangler_admin_denied_total", "reason", "host")
	}
	before := denied()

	for _, c := range []struct {
		name, head string
	}{
		{"another name", "GET /metrics HTTP/1.1\r\nHost: rebind.example\r\n"},
		{"another name with the listener's port", "GET /metrics HTTP/1.1\r\nHost: rebind.example:" + port + "\r\n"},
		{"another name, upper case with the root's dot", "GET /readyz HTTP/1.1\r\nHost: REBIND.Example.\r\n"},
		{"a name under localhost's", "GET / HTTP/1.1\r\nHost: localhost.rebind.example\r\n"},
		{"a name that spells a loopback address", "GET / HTTP/1.1\r\nHost: 127.0.0.1.nip.io:" + port + "\r\n"},
		{"a name under a listed one", "GET /healthz HTTP/1.1\r\nHost: evil.admin.example.internal\r\n"},
		{"a listed name as a prefix", "GET /healthz HTTP/1.1\r\nHost: admin.example.internal.rebind.example\r\n"},
		{"an absolute-form target on another host", "GET http://rebind.example/metrics HTTP/1.1\r\nHost: localhost\r\n"},
		{"X-Forwarded-Host naming localhost", "GET /metrics HTTP/1.1\r\nHost: rebind.example\r\nX-Forwarded-Host: localhost\r\n"},
		{"HTTP/1.0 with another name", "GET /metrics HTTP/1.0\r\nHost: rebind.example\r\n"},
		{"the status page with a live session", "GET / HTTP/1.1\r\nHost: rebind.example\r\nCookie: strangler_session=" + session + "\r\n"},
		{"a static file", "GET /static/style.css HTTP/1.1\r\nHost: rebind.example\r\n"},
		{"a login with the right token", "POST /login HTTP/1.1\r\nHost: rebind.example\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\ntoken=%s", len("token=")+len(statusPageToken), statusPageToken)},
		{"a flip form with the session", flipForm(session, csrf, "rebind.example")},
	} {
		t.Run("refused: "+c.name, func(t *testing.T) {
			raw := c.head
			if !strings.Contains(raw, "\r\n\r\n") {
				raw += "\r\n"
			}
			status, body, h := adminAnswer(t, r.admin, raw)
			var e struct{ Error string }
			if status != http.StatusMisdirectedRequest || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "admin.hosts") {
				t.Fatalf("got %d %.100q; want 421 with a JSON error naming admin.hosts", status, body)
			}
			if strings.Contains(body, "rebind") || h.Get("Set-Cookie") != "" || h.Get("X-Frame-Options") != "DENY" {
				t.Errorf("the refusal quotes the name, sets a cookie or lacks the listener's headers: %v %q", h, body)
			}
		})
	}
	if got := denied() - before; got < 14 {
		t.Errorf("strangler_admin_denied_total{reason=\"host\"} rose by %v, want a count per refusal (14)", got)
	}
	// The flip form above changed nothing.
	if status, body, _ := adminAnswer(t, r.admin, "GET /admin/routes/get-patient HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "+statusPageToken+"\r\n\r\n"); status != 200 || !strings.Contains(body, `"mode": "fallback"`) || strings.Contains(body, `"override": {`) {
		t.Errorf("get-patient after the refused flip: %d %.300s", status, body)
	}
	// The same form on the listener's own name goes through.
	if status, _, h := adminAnswer(t, r.admin, flipForm(session, csrf, "localhost")); status != http.StatusSeeOther {
		t.Errorf("the flip form on localhost: %d %v; want 303", status, h)
	}
	if _, body, _ := adminAnswer(t, r.admin, "GET /admin/routes/get-patient HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "+statusPageToken+"\r\n\r\n"); !strings.Contains(body, `"mode": "modern"`) {
		t.Errorf("get-patient after the flip form on localhost: %s; want modern", body)
	}

	for _, c := range []struct {
		name, head string
	}{
		{"the loopback address with the port", "GET /healthz HTTP/1.1\r\nHost: " + r.admin + "\r\n"},
		{"the loopback address without", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"},
		{"the loopback address with the root's dot", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1.:" + port + "\r\n"},
		{"another IP address (a pod's, for probes and scrapes)", "GET /healthz HTTP/1.1\r\nHost: 10.1.2.3:9901\r\n"},
		{"an IPv6 literal", "GET /healthz HTTP/1.1\r\nHost: [::1]:" + port + "\r\n"},
		{"an IPv6 literal without a port", "GET /healthz HTTP/1.1\r\nHost: [::1]\r\n"},
		{"localhost", "GET /healthz HTTP/1.1\r\nHost: localhost:" + port + "\r\n"},
		{"localhost in upper case with the root's dot", "GET /healthz HTTP/1.1\r\nHost: LOCALHOST.\r\n"},
		{"a listed name", "GET /healthz HTTP/1.1\r\nHost: admin.example.internal:443\r\n"},
		{"a listed name in other case with the root's dot", "GET /healthz HTTP/1.1\r\nHost: Admin.Example.Internal.\r\n"},
		{"X-Forwarded-Host naming another name", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Host: rebind.example\r\n"},
		{"an absolute-form target on localhost", "GET http://localhost/healthz HTTP/1.1\r\nHost: rebind.example\r\n"},
		{"HTTP/1.0 without Host (no browser sends that)", "GET /healthz HTTP/1.0\r\n"},
	} {
		t.Run("answered: "+c.name, func(t *testing.T) {
			if status, body, _ := adminAnswer(t, r.admin, c.head+"\r\n"); status != http.StatusOK {
				t.Errorf("got %d %.100q; want 200", status, body)
			}
		})
	}
	t.Run("a name added to admin.hosts is answered once the file is reloaded", func(t *testing.T) {
		const head = "GET /healthz HTTP/1.1\r\nHost: added.example.internal\r\n\r\n"
		if status, _, _ := adminAnswer(t, r.admin, head); status != http.StatusMisdirectedRequest {
			t.Fatalf("before the reload: %d; want 421", status)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(strings.Replace(string(b), "admin.example.internal", "admin.example.internal, added.example.internal", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 30*time.Second, "the added name answered", func() bool {
			status, _, _ := adminAnswer(t, r.admin, head)
			return status == http.StatusOK
		})
	})
	t.Run("two Host headers are refused as malformed", func(t *testing.T) {
		if status, body, _ := adminAnswer(t, r.admin, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: rebind.example\r\n\r\n"); status != http.StatusBadRequest {
			t.Errorf("got %d %.100q; want 400", status, body)
		}
	})
}

// logIn logs in to the status page at admin as the operator and returns
// the session cookie's value and the page's form token.
func logIn(t *testing.T, admin string) (session, csrf string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm("http://"+admin+"/login", url.Values{"token": {statusPageToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "strangler_session" {
			session = c.Value
		}
	}
	status, page, _ := adminAnswer(t, admin, "GET / HTTP/1.1\r\nHost: localhost\r\nCookie: strangler_session="+session+"\r\n\r\n")
	const field = `name="csrf" value="`
	i := strings.Index(page, field)
	if session == "" || status != http.StatusOK || i < 0 {
		t.Fatalf("logging in: %d, session %t, form token %t", status, session != "", i >= 0)
	}
	csrf, _, _ = strings.Cut(page[i+len(field):], `"`)
	return session, csrf
}

// flipForm is a status page flip of get-patient to modern with session,
// sent with Host host.
func flipForm(session, csrf, host string) string {
	form := url.Values{"csrf": {csrf}, "mode": {"modern"}, "version": {"0"}, "reason": {"rebound"}, "confirm": {"yes"}, "force": {"yes"}}.Encode()
	return fmt.Sprintf("POST /ui/routes/get-patient HTTP/1.1\r\nHost: %s\r\nCookie: strangler_session=%s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", host, session, len(form), form)
}

// TestMadeUpSessionCookiesCostTheStoreNoWrite: the status page looks up
// any session cookie a caller sends, and each lookup was an UPDATE of the
// sessions table, even of no row: while something else held a lock that
// keeps writers out (here a SHARE lock on the table; on the embedded
// store, any transaction that writes), a made-up cookie waited for it,
// and a flood of them queued the store's connections. 1,000 made-up
// cookies now each get the login page at once, with no audit entry and
// no security event (an ended session is no attack).
func TestMadeUpSessionCookiesCostTheStoreNoWrite(t *testing.T) {
	legacy := backendAnswering(t, `[]`)
	path := writeStatusPageConfig(t, legacy.URL, legacy.URL)
	dsn := testdb.Postgres(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "store: \"sqlite:")
	j := i + strings.IndexByte(string(b)[i:], '\n')
	if err := os.WriteFile(path, []byte(string(b)[:i]+fmt.Sprintf("store: %q", dsn)+string(b)[j:]), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startServeAt(t, path, time.Now)
	metrics := func() float64 {
		return testkit.Scrape(t, "http://"+r.admin+"/metrics").Sum("strangler_admin_denied_total")
	}
	auditHead := func() string {
		_, body, _ := adminAnswer(t, r.admin, "GET /admin/audit?limit=1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "+statusPageToken+"\r\n\r\n")
		var a struct{ Chain json.RawMessage }
		json.Unmarshal([]byte(body), &a)
		return string(a.Chain)
	}
	deniedBefore, headBefore := metrics(), auditHead()

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `LOCK TABLE strangler_sessions IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}

	const cookies = 1000
	client := &http.Client{Timeout: 5 * time.Second}
	for n := range cookies {
		req, _ := http.NewRequest("GET", "http://"+r.admin+"/", nil)
		req.AddCookie(&http.Cookie{Name: "strangler_session", Value: rand.Text()})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("made-up cookie %d of %d while the sessions are locked for writing: %v; want the login page at once", n+1, cookies, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Your session has ended") {
			t.Fatalf("made-up cookie %d of %d: %d; want the login page saying the session ended", n+1, cookies, resp.StatusCode)
		}
	}
	tx.Rollback()
	if got := metrics(); got != deniedBefore {
		t.Errorf("strangler_admin_denied_total went from %v to %v; made-up session cookies are no security event", deniedBefore, got)
	}
	if got := auditHead(); got != headBefore {
		t.Errorf("the audit log's head moved from %s to %s; made-up session cookies write no entry", headBefore, got)
	}
}

// TestAFloodOfAdminConnectionsLeavesThePublicListenerServing: the admin
// listener took every connection offered, each a file descriptor of the
// process, and /healthz and the login form need no token. 300 connections
// that send half a head (each held the 10 s the head may take, and
// opened again as fast) used up a 256-descriptor limit: the public
// listener could accept no client nor the facade reach a backend. The
// admin listener now holds at most adminMaxConnections; the rest wait in
// the kernel's backlog, which costs the process nothing, and the public
// listener keeps serving.
func TestAFloodOfAdminConnectionsLeavesThePublicListenerServing(t *testing.T) {
	legacy := backendAnswering(t, `{"served_by":"legacy"}`)
	dir := t.TempDir()
	path := writeConfig(t, dir+"/strangler.yaml", legacy.URL, legacy.URL, `  - { name: get-record, match: "GET /records/{id}", mode: legacy }
`)
	// The process's open-file limit, soft and hard (Go raises the soft one
	// to the hard one): 128 for the public listener's max_connections.
	wrapper := dir + "/strangler-256"
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nulimit -n 256 || exit 1\nexec \""+binary(t)+"\" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startProcessesOf(t, wrapper, []string{"serve", "--config", path})[0]

	const flood = 300
	for i := range flood {
		conn, err := net.Dial("tcp", p.admin)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + p.public + "/records/1")
	if err != nil {
		t.Fatalf("the public listener during %d half-sent admin heads: %v; want legacy's answer", flood, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "legacy") {
		t.Errorf("the public listener during %d half-sent admin heads: %d %s; want legacy's answer", flood, resp.StatusCode, body)
	}
}
