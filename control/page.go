package control

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"strangler/config"
	"strangler/domain"
)

// pageFiles are the status page's templates and static assets, built into
// the binary so the page works offline and needs no CDN.
//
//go:embed pages
var pageFiles embed.FS

// statusPage serves the status page: server-rendered HTML, a session
// kept in the state store (sessions.go), and a form token on every change.
type statusPage struct {
	*admin
	login, status, message *template.Template
}

// auditLimit is how many audit entries the page shows.
const auditLimit = 50

// flashCookie is the base name (admin.setCookie) of the cookie that
// carries the outcome of a form post to the page the browser is
// redirected to.
const flashCookie = "flash"

// pageCSP allows the page's own stylesheet and inline SVG, and nothing
// else: no script (default-src 'self' allowed the listener's own), no
// foreign origin, no framing, no <base> (which default-src does not
// cover: one would send the page's relative links elsewhere).
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// pageRoutes registers the status page.
func (a *admin) pageRoutes() {
	p := &statusPage{
		admin:   a,
		login:   parsePage("login.html"),
		status:  parsePage("status.html"),
		message: parsePage("message.html"),
	}
	static, err := fs.Sub(pageFiles, "pages/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	a.handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		files.ServeHTTP(w, r)
	}))
	a.handle("GET /{$}", http.HandlerFunc(p.index))
	a.handle("GET /login", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}))
	a.handle("POST /login", http.HandlerFunc(p.loginPost))
	a.handle("POST /logout", http.HandlerFunc(p.logout))
	a.handle(actionFlipForm, p.form(p.applyFlipForm))
	a.handle(actionRampForm, p.form(p.applyRampForm))
	a.handle(actionChangeForm, p.form(p.applyChangeForm))
}

func parsePage(name string) *template.Template {
	return template.Must(template.New(name).ParseFS(pageFiles, "pages/layout.html", "pages/"+name))
}

// pageHeaders replace, on the status page's HTML and its stylesheet and
// icon, the admin listener's policy (withHeaders) with the page's.
func pageHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", pageCSP)
}

// render executes a page into a buffer first, so that a template error
// never leaves half a page behind.
func (p *statusPage) render(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		p.log.Error("rendering the status page failed", "page", t.Name(), "error", err)
		http.Error(w, "internal error; see the facade's log", http.StatusInternalServerError)
		return
	}
	pageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// pageMessage is the message page: a refusal with a way back.
type pageMessage struct {
	Title, Heading, Text string
	Actor, CSRF          string
}

func (p *statusPage) refuse(w http.ResponseWriter, status int, text string) {
	p.render(w, status, p.message, pageMessage{Title: http.StatusText(status), Heading: "Refused", Text: text})
}

// loginView is the login page.
type loginView struct {
	Title, Error, Actor, CSRF string
	NoTokens                  bool
}

func (p *statusPage) renderLogin(w http.ResponseWriter, status int, msg string) {
	p.render(w, status, p.login, loginView{Title: "Log in", Error: msg, NoTokens: !p.Tokens.Configured()})
}

// setCookie sets the status page's cookie base to value for maxAge
// seconds (0: the browser's session; -1: remove it). Every cookie of the
// page is HttpOnly, SameSite=Strict and for the whole listener. When the
// browser reached the listener over TLS, its own or a trusted load
// balancer's (Proxies.https), it is Secure and named with the __Host-
// prefix (domain.AdminCookieName), so that a page on a plain-HTTP port of
// the same host (a backend's, through the public listener) can neither
// set it by script nor shadow it with one for a longer path.
func (a *admin) setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge int) {
	secure := a.Proxies.https(r)
	http.SetCookie(w, &http.Cookie{
		Name: domain.AdminCookieName(base, secure), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
	})
}

// cookie is the request's status page cookie base, by the name setCookie
// gives it for r: over TLS, a cookie without the __Host- prefix is not the
// page's and is ignored.
func (a *admin) cookie(r *http.Request, base string) (*http.Cookie, error) {
	return r.Cookie(domain.AdminCookieName(base, a.Proxies.https(r)))
}

func (a *admin) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	a.setCookie(w, r, name, "", -1)
}

// formTokenOK checks the form's CSRF token against the session's, in
// constant time.
func formTokenOK(r *http.Request, sessionID string) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(csrfToken(sessionID))) == 1
}

// storeDown is what the page says when sessions cannot be checked.
const storeDown = "The state store is unreachable, so status page sessions cannot be checked right now; try again shortly. " +
	"The admin API (GET /admin/routes with a bearer token) and /readyz still answer."

// index is GET /: the login form without a session, the status with one.
func (p *statusPage) index(w http.ResponseWriter, r *http.Request) {
	if _, err := p.cookie(r, sessionCookie); err != nil {
		p.renderLogin(w, http.StatusOK, "")
		return
	}
	// An ended session is not counted as a failed attempt, nor is a
	// session refused for the lockout: session ids are random 128-bit
	// values nobody guesses, and a session that expired overnight is no
	// attack.
	s, ok, err := p.sessionOf(r)
	switch {
	case err != nil:
		p.renderLogin(w, http.StatusServiceUnavailable, storeDown)
		return
	case !ok:
		p.clearCookie(w, r, sessionCookie)
		p.renderLogin(w, http.StatusOK, "Your session has ended: you logged out, left it unused for 8 hours, or its token was changed or expired. Log in again.")
		return
	}
	if err := p.allow(r, s.actor, r.Pattern); err != nil {
		_, msg := statusFor(err)
		p.refuse(w, http.StatusForbidden, msg)
		return
	}
	p.renderStatus(w, r, s)
}

// loginPost is POST /login: the admin token from a form, checked like a
// bearer token, opens a session in the state store; the browser gets its
// random id, never the token.
func (p *statusPage) loginPost(w http.ResponseWriter, r *http.Request) {
	addr, now := p.clientAddr(r), p.now()
	if p.crossOrigin.Check(r) != nil {
		p.security(r, "", reasonCrossOrigin, r.Pattern)
		p.refuse(w, http.StatusForbidden, "Logging in from another site is refused.")
		return
	}
	limitBody(w, r)
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		p.security(r, "", reasonMissingToken, r.Pattern)
		p.renderLogin(w, http.StatusUnauthorized, "Enter an admin token.")
		return
	}
	release, err := p.admitToken(addr, now)
	if err != nil {
		if lo := (*errLockedOut)(nil); errors.As(err, &lo) {
			w.Header().Set("Retry-After", strconv.Itoa(int(lo.retryAfter/time.Second)))
		}
		_, msg := statusFor(err)
		p.renderLogin(w, http.StatusTooManyRequests, "Too many failed attempts: "+msg+".")
		return
	}
	defer release()
	tok, ok := p.Tokens.lookup(token)
	switch {
	case !ok:
		p.failedAttempt(r, addr, now)
		p.renderLogin(w, http.StatusUnauthorized, "That is not a valid admin token.")
		return
	case tok.Expired(now):
		p.security(r, tok.Name, reasonExpiredToken, r.Pattern)
		p.renderLogin(w, http.StatusUnauthorized, "That admin token expired on "+tok.Expires.String()+"; ask for a new one.")
		return
	}
	p.lockout.succeeded(addr, now)
	actor := tok.Name
	ctx, cancel := timeout(r)
	defer cancel()
	if c, err := p.cookie(r, sessionCookie); err == nil && plausibleSessionID(c.Value) {
		// A new login replaces the browser's previous session.
		if err := p.closeSession(ctx, c.Value); err != nil {
			p.log.Warn("ending the previous status page session at login failed; it expires when idle", "error", err)
		}
	}
	id, err := p.openSession(ctx, actor, token)
	if err != nil {
		p.log.Error("status page login failed: the session could not be stored", "actor", actor, "error", err)
		p.renderLogin(w, http.StatusServiceUnavailable, "Logging in needs the state store, which is unreachable right now; try again shortly.")
		return
	}
	p.setSessionCookie(w, r, id)
	p.log.Info("status page login", "actor", actor, "addr", addr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout is POST /logout: it ends the session on every replica and drops
// the cookie. If the store cannot end it, the cookie is kept so that the
// operator can try again.
func (p *statusPage) logout(w http.ResponseWriter, r *http.Request) {
	if p.crossOrigin.Check(r) != nil {
		p.security(r, "", reasonCrossOrigin, r.Pattern)
		p.refuse(w, http.StatusForbidden, "Cross-site form posts are refused.")
		return
	}
	limitBody(w, r)
	s, ok, err := p.sessionOf(r)
	if err == nil && ok {
		if !formTokenOK(r, s.id) {
			p.security(r, s.actor, reasonFormToken, r.Pattern)
			p.refuse(w, http.StatusForbidden, "The form's token is missing or wrong; reload the status page and try again.")
			return
		}
		ctx, cancel := timeout(r)
		defer cancel()
		err = p.closeSession(ctx, s.id)
	}
	if err != nil {
		p.log.Error("status page logout failed: the session could not be ended", "error", err)
		p.refuse(w, http.StatusServiceUnavailable, "Logging out failed: the state store is unreachable, so your session could not be ended. Try again shortly.")
		return
	}
	if ok {
		p.log.Info("status page logout", "actor", s.actor, "addr", p.clientAddr(r))
	}
	p.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// form handles a form post of the status page: formSession checks it,
// apply makes its change as the session's actor, checked as the admin API
// checks the same change, and says what happened; a refusal is audited as
// the API's are (refused). The message shows once on the page it
// redirects to.
func (p *statusPage) form(apply func(r *http.Request, actor string) (string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := p.formSession(w, r)
		if !ok {
			return
		}
		msg, err := apply(r, s.actor)
		if err != nil {
			p.refused(r, s.actor, err)
		}
		p.setFlash(w, r, s.id, err == nil, msg)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}

// formSession checks a form post of the status page: not cross-site, a session, its form token, and a role that may post the
// form. A refusal is answered here, and audited when it has a session
// (refused); ok is false.
func (p *statusPage) formSession(w http.ResponseWriter, r *http.Request) (session, bool) {
	if p.crossOrigin.Check(r) != nil {
		p.security(r, "", reasonCrossOrigin, r.Pattern)
		p.refuse(w, http.StatusForbidden, "Cross-site form posts are refused; nothing was changed.")
		return session{}, false
	}
	s, ok, err := p.sessionOf(r)
	switch {
	case err != nil:
		p.refuse(w, http.StatusServiceUnavailable, storeDown+" Nothing was changed.")
		return session{}, false
	case !ok:
		p.security(r, "", reasonNoSession, r.Pattern)
		p.refuse(w, http.StatusForbidden, "Log in to the status page first; nothing was changed.")
		return session{}, false
	}
	limitBody(w, r)
	if !formTokenOK(r, s.id) {
		p.security(r, s.actor, reasonFormToken, r.Pattern)
		p.refused(r, s.actor, apiError(http.StatusForbidden, "missing or wrong form token"))
		p.refuse(w, http.StatusForbidden, "The form's token is missing or wrong; reload the status page and try again. Nothing was changed.")
		return session{}, false
	}
	if err := p.allow(r, s.actor, r.Pattern); err != nil {
		p.refused(r, s.actor, err)
		_, msg := statusFor(err)
		p.refuse(w, http.StatusForbidden, msg+"; nothing was changed.")
		return session{}, false
	}
	return s, true
}

// applyFlipForm is POST /ui/routes/{name}: it turns a flip form into a Flip
// and applies it; it returns the message to show either way.
func (p *statusPage) applyFlipForm(r *http.Request, actor string) (string, error) {
	name := r.PathValue("name")
	cur, ok := p.Flags.Get(name)
	if !ok {
		return fmt.Sprintf("There is no route %q; nothing was changed.", name), ErrNoRoute
	}
	if r.PostFormValue("confirm") != "yes" {
		return name + " was not changed: tick “I understand this changes live traffic” to confirm.", ErrInvalid
	}
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil {
		// The form's If-Match.
		return name + " was not changed: the form has no route version; reload the page and try again.", errNoIfMatch
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if err := checkReason(reason); err != nil {
		_, msg := statusFor(err)
		return name + " was not changed: " + msg + ".", err
	}
	fl := Flip{
		Route: name, Actor: actor, Reason: reason,
		Force: r.PostFormValue("force") == "yes", IfMatch: &version,
	}
	if r.PostFormValue("action") == "clear" {
		fl.Clear = true
	} else {
		var mode domain.Mode
		if err := mode.UnmarshalText([]byte(r.PostFormValue("mode"))); err != nil {
			return name + " was not changed: " + err.Error() + ".", ErrInvalid
		}
		fl.Mode = &mode
		if mode.TakesPercent() {
			if v := strings.TrimSpace(r.PostFormValue("percent")); v != "" {
				var pct config.Percent
				if err := pct.UnmarshalText([]byte(v)); err != nil {
					return name + " was not changed: percent must be a number from 0 to 100 in decimal digits.", ErrInvalid
				}
				fl.Percent = (*float64)(&pct)
			}
		}
	}
	rf, err := p.Flags.Apply(r.Context(), fl)
	if need := (*ApprovalRequired)(nil); errors.As(err, &need) {
		return p.requestForm(r, need)
	}
	switch {
	case errors.Is(err, ErrUnchanged):
		return name + " is already " + ModeText(rf.Mode, rf.Percent) + "; nothing was changed.", nil
	case err == nil && fl.Clear:
		return fmt.Sprintf("%s's override is cleared: it is back to the file's %s. Audited as %s.", name, ModeText(rf.Mode, rf.Percent), actor), nil
	case err == nil:
		return fmt.Sprintf("%s is now %s (was %s). Audited as %s.", name, ModeText(rf.Mode, rf.Percent), ModeText(cur.Mode, cur.Percent), actor), nil
	case errors.Is(err, ErrStale):
		now := ModeText(rf.Mode, rf.Percent)
		if o := rf.Override; o != nil {
			now += fmt.Sprintf(", set by %s: “%s”", o.Actor, o.Reason)
		}
		return fmt.Sprintf("%s was not changed: someone else changed it since you loaded this page. It is now %s. Review it and try again.", name, now), err
	}
	if gate := (*GateError)(nil); errors.As(err, &gate) {
		return fmt.Sprintf("%s was not changed: %s. Tick “Force past the gates” to flip anyway.", name, gate.Error()), err
	}
	status, msg := statusFor(err)
	switch {
	case errors.Is(err, ErrUnconfirmed):
		return name + " may have been changed: " + msg, err
	case status == http.StatusInternalServerError:
		p.log.Error("status page flip failed", "route", name, "actor", actor, "error", err)
	}
	return name + " was not changed: " + msg, err
}

// flash is the outcome of the last form post, shown once.
type flash struct {
	OK   bool
	Text string
}

// maxFlash is how many bytes of a form's outcome its cookie carries.
const maxFlash = 1500

// setFlash leaves the outcome of a form post of the session sessionID
// for the page the browser is redirected to.
func (a *admin) setFlash(w http.ResponseWriter, r *http.Request, sessionID string, ok bool, text string) {
	if len(text) > maxFlash {
		// Cut before the character the limit falls in, not inside it.
		cut := maxFlash
		for !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	v := "0"
	if ok {
		v = "1"
	}
	payload := []byte(v + text)
	a.setCookie(w, r, flashCookie, base64.RawURLEncoding.EncodeToString(payload)+"."+flashMAC(sessionID, payload), 60)
}

// takeFlash reads the flash message and clears it. It shows only one the
// session sessionID was left: browsers keep cookies apart by host, not
// by port, so a backend answering through the public listener (or any
// service on the host) can set a strangler_flash cookie too (over
// plain HTTP; over TLS, one without the __Host- prefix is ignored), and
// its words would read as the facade's.
func (a *admin) takeFlash(w http.ResponseWriter, r *http.Request, sessionID string) *flash {
	c, err := a.cookie(r, flashCookie)
	if err != nil {
		return nil
	}
	a.clearCookie(w, r, flashCookie)
	enc, mac, _ := strings.Cut(c.Value, ".")
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(raw) < 2 || !hmac.Equal([]byte(mac), []byte(flashMAC(sessionID, raw))) {
		return nil
	}
	return &flash{OK: raw[0] == '1', Text: string(raw[1:])}
}

// flashMAC binds a flash message to its session: without the session's
// id, which only the browser's HttpOnly cookie and the store hold, no
// one can make one the page shows.
func flashMAC(sessionID string, payload []byte) string {
	mac := hmac.New(sha256.New, []byte(sessionID))
	mac.Write([]byte("strangler status page flash\x00"))
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
