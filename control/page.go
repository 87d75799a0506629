package control

import (
	"bytes"
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

	"strangler/config"
	"strangler/store"
)

// pageFiles are the status page's templates and static assets, built into
// the binary so the page works offline and needs no CDN.
//
//go:embed pages
var pageFiles embed.FS

// statusPage serves the status page: server-rendered HTML, a session
// cookie carrying the admin token, and a form token on every change.
type statusPage struct {
	*admin
	login, status, message *template.Template
}

// auditLimit is how many audit entries the page shows.
const auditLimit = 50

// flashCookie carries the outcome of a form post to the page the browser
// is redirected to.
const flashCookie = "strangler_flash"

// pageCSP allows the page's own stylesheet and inline SVG, and nothing
// else: no script, no foreign origin, no framing.
const pageCSP = "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"

// pageRoutes registers the status page.
func (a *admin) pageRoutes(mux *http.ServeMux) {
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
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /{$}", p.index)
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /login", p.loginPost)
	mux.HandleFunc("POST /logout", p.logout)
	mux.HandleFunc("POST /ui/routes/{name}", p.flip)
}

func parsePage(name string) *template.Template {
	return template.Must(template.New(name).ParseFS(pageFiles, "pages/layout.html", "pages/"+name))
}

// pageHeaders are set on every response of the status page.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
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
	list := p.Tokens.list.Load()
	p.render(w, status, p.login, loginView{Title: "Log in", Error: msg, NoTokens: list == nil || len(*list) == 0})
}

// session returns the actor and the admin token of the request's session
// cookie. The cookie is the token itself, base64url-encoded so that any
// byte of it survives as a cookie value.
func (p *statusPage) session(r *http.Request) (actor, token string, ok bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return "", "", false
	}
	token = string(raw)
	actor, ok = p.Tokens.actor(token)
	return actor, token, ok
}

func setSession(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(token)),
		Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// formCrossOrigin is crossOrigin for the page's own form posts. Under the
// page's Referrer-Policy: no-referrer, browsers send "Origin: null" even
// on a same-origin post (Fetch standard, "serializing a request origin"),
// so then only the Fetch metadata can say where the post came from; a
// browser that sends none is refused.
func formCrossOrigin(r *http.Request) bool {
	if r.Header.Get("Origin") == "null" {
		return r.Header.Get("Sec-Fetch-Site") != "same-origin"
	}
	return crossOrigin(r)
}

// formTokenOK checks the form's CSRF token against the session's, in
// constant time.
func formTokenOK(r *http.Request, sessionToken string) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(csrfToken(sessionToken))) == 1
}

// index is GET /: the login form without a session, the status with one.
func (p *statusPage) index(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(sessionCookie); err != nil {
		p.renderLogin(w, http.StatusOK, "")
		return
	}
	addr, now := clientAddr(r), p.now()
	if p.failures.blocked(addr, now) {
		p.renderLogin(w, http.StatusTooManyRequests, "Too many failed attempts from "+addr+"; wait a minute and try again.")
		return
	}
	actor, token, ok := p.session(r)
	if !ok {
		// A cookie is a token presented like any other: a wrong one counts
		// as a failed attempt, and it is dropped so that it counts once.
		p.failures.fail(addr, now)
		clearCookie(w, r, sessionCookie)
		p.renderLogin(w, http.StatusOK, "Your session's token is no longer valid; log in again.")
		return
	}
	p.renderStatus(w, r, actor, token)
}

// loginPost is POST /login: the admin token from a form, checked like a
// bearer token, kept in the session cookie.
func (p *statusPage) loginPost(w http.ResponseWriter, r *http.Request) {
	addr, now := clientAddr(r), p.now()
	switch {
	case formCrossOrigin(r):
		p.refuse(w, http.StatusForbidden, "Logging in from another site is refused.")
		return
	case p.failures.blocked(addr, now):
		p.renderLogin(w, http.StatusTooManyRequests, "Too many failed attempts from "+addr+"; wait a minute and try again.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	token := strings.TrimSpace(r.PostFormValue("token"))
	actor, ok := p.Tokens.actor(token)
	if !ok {
		p.failures.fail(addr, now)
		p.renderLogin(w, http.StatusUnauthorized, "That is not a valid admin token.")
		return
	}
	setSession(w, r, token)
	p.log.Info("status page login", "actor", actor, "addr", addr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout is POST /logout: it drops the session cookie.
func (p *statusPage) logout(w http.ResponseWriter, r *http.Request) {
	if formCrossOrigin(r) {
		p.refuse(w, http.StatusForbidden, "Cross-site form posts are refused.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if _, token, ok := p.session(r); ok && !formTokenOK(r, token) {
		p.refuse(w, http.StatusForbidden, "The form's token is missing or wrong; reload the status page and try again.")
		return
	}
	clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// flip is POST /ui/routes/{name}: a flip form's change, checked as the
// admin API checks a PATCH, plus the session and its form token.
func (p *statusPage) flip(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	addr, now := clientAddr(r), p.now()
	deny := func(actor, detail string) {
		if _, ok := p.Flags.Get(name); ok { // no audit entries for made-up routes
			p.Flags.Deny(r.Context(), name, actor, "change refused: "+detail+" from "+addr)
		}
	}
	if p.failures.blocked(addr, now) {
		p.refuse(w, http.StatusTooManyRequests, "Too many failed attempts from "+addr+"; wait a minute and try again.")
		return
	}
	actor, token, ok := p.session(r)
	if !ok {
		p.failures.fail(addr, now)
		deny("unauthenticated", "no valid status page session")
		p.refuse(w, http.StatusForbidden, "Log in to the status page first; nothing was changed.")
		return
	}
	if formCrossOrigin(r) {
		deny(actor, "cross-site form post")
		p.refuse(w, http.StatusForbidden, "Cross-site form posts are refused; nothing was changed.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !formTokenOK(r, token) {
		deny(actor, "missing or wrong form token")
		p.refuse(w, http.StatusForbidden, "The form's token is missing or wrong; reload the status page and try again. Nothing was changed.")
		return
	}
	msg, err := p.applyForm(r, name, actor)
	setFlash(w, r, err == nil, msg)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// applyForm turns a flip form into a Flip and applies it; it returns the
// message to show either way.
func (p *statusPage) applyForm(r *http.Request, name, actor string) (string, error) {
	cur, ok := p.Flags.Get(name)
	if !ok {
		return fmt.Sprintf("There is no route %q; nothing was changed.", name), ErrNoRoute
	}
	if r.PostFormValue("confirm") != "yes" {
		return name + " was not changed: tick “I understand this changes live traffic” to confirm.", ErrInvalid
	}
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil {
		return name + " was not changed: the form has no route version; reload the page and try again.", ErrInvalid
	}
	fl := Flip{
		Route: name, Actor: actor, Reason: strings.TrimSpace(r.PostFormValue("reason")),
		Force: r.PostFormValue("force") == "yes", IfMatch: &version,
	}
	if r.PostFormValue("action") == "clear" {
		fl.Clear = true
	} else {
		var mode config.Mode
		if err := mode.UnmarshalText([]byte(r.PostFormValue("mode"))); err != nil {
			return name + " was not changed: " + err.Error() + ".", ErrInvalid
		}
		fl.Mode = &mode
		if hasPercent(mode) {
			if v := strings.TrimSpace(r.PostFormValue("percent")); v != "" {
				pct, err := strconv.ParseFloat(v, 64)
				if err != nil || !(pct >= 0 && pct <= 100) {
					return name + " was not changed: percent must be a number from 0 to 100.", ErrInvalid
				}
				fl.Percent = &pct
			}
		}
		if version == cur.Version && mode == cur.Mode && modeText(mode, fl.Percent) == modeText(cur.Mode, cur.Percent) {
			return name + " is already " + modeText(mode, fl.Percent) + "; nothing was changed.", ErrInvalid
		}
	}
	rf, err := p.Flags.Apply(r.Context(), fl)
	switch {
	case err == nil && fl.Clear:
		return fmt.Sprintf("%s's override is cleared: it is back to the file's %s. Audited as %s.", name, modeText(rf.Mode, rf.Percent), actor), nil
	case err == nil:
		return fmt.Sprintf("%s is now %s (was %s). Audited as %s.", name, modeText(rf.Mode, rf.Percent), modeText(cur.Mode, cur.Percent), actor), nil
	case errors.Is(err, ErrStale):
		now := modeText(rf.Mode, rf.Percent)
		if o := rf.Override; o != nil {
			now += fmt.Sprintf(", set by %s: “%s”", o.Actor, o.Reason)
		}
		return fmt.Sprintf("%s was not changed: someone else changed it since you loaded this page. It is now %s. Review it and try again.", name, now), err
	}
	if gate := (*GateError)(nil); errors.As(err, &gate) {
		return fmt.Sprintf("%s was not changed: %s. Tick “Force past the gates” to flip anyway.", name, gate.Error()), err
	}
	status, msg := statusFor(err)
	if status == http.StatusInternalServerError {
		p.log.Error("status page flip failed", "route", name, "actor", actor, "error", err)
	}
	return name + " was not changed: " + msg, err
}

// hasPercent reports whether a mode splits traffic by percent.
func hasPercent(m config.Mode) bool { return m == config.ModeFallback || m == config.ModeModern }

// modeText says a mode and, where it splits traffic, its percent:
// "fallback at 25%".
func modeText(m config.Mode, pct *float64) string {
	if !hasPercent(m) || pct == nil || *pct == 100 {
		return string(m)
	}
	return string(m) + " at " + strconv.FormatFloat(*pct, 'f', -1, 64) + "%"
}

// flash is the outcome of the last form post, shown once.
type flash struct {
	OK   bool
	Text string
}

func setFlash(w http.ResponseWriter, r *http.Request, ok bool, text string) {
	if len(text) > 1500 {
		text = text[:1500] + "…"
	}
	v := "0"
	if ok {
		v = "1"
	}
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(v + text)),
		Path: "/", MaxAge: 60, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// takeFlash reads the flash message and clears it.
func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	clearCookie(w, r, flashCookie)
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) < 2 {
		return nil
	}
	return &flash{OK: raw[0] == '1', Text: string(raw[1:])}
}

// statusView is the status page.
type statusView struct {
	Title, Actor, CSRF string
	Flash              *flash
	Now, NowISO        string
	StoreDown          string
	ReportError        string
	Modes              []string
	Routes             []routeView
	AuditLimit         int
	Audit              []auditView
	AuditError         string
}

// routeView is one row of the route table and its flip form.
type routeView struct {
	Name, Match, ID    string
	Mode               string
	ModeText, FileText string
	Version            int64
	PercentValue       string
	Override           *overrideView
	// Gated says the route has gates, which a flip may be forced past.
	Gated            bool
	RPS, Requests24h string
	// Verdict is the retirement verdict without its "not yet" or
	// "retirable", which the badge says.
	Verdict      string
	Report       *RouteReport
	FallbackRate string
	MismatchRate string
	Chart        sparkline
}

type overrideView struct {
	Actor, Reason, Ago, When, ISO string
}

// auditView is one row of the audit log.
type auditView struct {
	When, ISO, Actor, Action, Route, Change, Reason, Detail string
	Forced                                                  bool
}

func (p *statusPage) renderStatus(w http.ResponseWriter, r *http.Request, actor, token string) {
	now := p.now()
	v := statusView{
		Title: "Status", Actor: actor, CSRF: csrfToken(token), Flash: takeFlash(w, r),
		Now: now.UTC().Format("2006-01-02 15:04:05 UTC"), NowISO: now.UTC().Format(time.RFC3339),
		AuditLimit: auditLimit,
	}
	for _, m := range config.Modes {
		v.Modes = append(v.Modes, string(m))
	}
	if ok, since := p.Flags.StoreOK(); !ok {
		v.StoreDown = since.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	ctx, cancel := timeout(r)
	defer cancel()
	p.flushCounts(ctx) // so the 24h columns include the last seconds
	reportsOK := true
	for i, rf := range p.Flags.All() {
		rv := p.routeView(rf, now)
		rv.ID = "r" + strconv.Itoa(i)
		if reportsOK {
			rep, err := p.Reports.Route(ctx, rf, now)
			if err != nil {
				// One failure means the store is unreachable: do not make
				// every other route wait for it too.
				reportsOK = false
				p.log.Error("status page: building a route report failed", "route", rf.Route.Name, "error", err)
				v.ReportError = "The traffic counts cannot be read from the state store right now; rates and verdicts are unavailable."
			} else {
				rv.addReport(&rep, now)
			}
		}
		v.Routes = append(v.Routes, rv)
	}
	entries, err := p.Audit.AuditLog(ctx, store.AuditFilter{Limit: auditLimit})
	if err != nil {
		p.log.Error("status page: reading the audit log failed", "error", err)
		v.AuditError = "The audit log cannot be read from the state store right now."
	}
	for _, e := range entries {
		v.Audit = append(v.Audit, toAuditView(e))
	}
	p.render(w, http.StatusOK, p.status, v)
}

func (p *statusPage) routeView(rf RouteFlags, now time.Time) routeView {
	rv := routeView{
		Name: rf.Route.Name, Match: rf.Route.Match.String(), Mode: string(rf.Mode), Version: rf.Version,
		ModeText: modeText(rf.Mode, rf.Percent), FileText: modeText(rf.FileMode, rf.FilePercent),
		Gated: !rf.Route.Gates.IsZero(), RPS: fmtRPS(p.requestsPerSecond(rf.Route.Name, now)),
		Requests24h: "—", FallbackRate: "—", MismatchRate: "—",
	}
	switch {
	case rf.Percent != nil:
		rv.PercentValue = strconv.FormatFloat(*rf.Percent, 'f', -1, 64)
	case hasPercent(rf.Mode):
		rv.PercentValue = "100"
	}
	if o := rf.Override; o != nil {
		rv.Override = &overrideView{
			Actor: o.Actor, Reason: o.Reason, Ago: fmtAgo(now.Sub(o.UpdatedAt)),
			When: o.UpdatedAt.UTC().Format("2006-01-02 15:04:05 UTC"), ISO: o.UpdatedAt.UTC().Format(time.RFC3339),
		}
	}
	return rv
}

// requestsPerSecond is this replica's rate over the previous whole minute
// and the current one so far: steadier than the current minute alone,
// which starts from zero every minute.
func (p *statusPage) requestsPerSecond(route string, now time.Time) float64 {
	w := p.Live.Window(route, now, 2*time.Minute)
	elapsed := time.Minute + now.Sub(now.Truncate(time.Minute))
	return float64(w.Requests) / elapsed.Seconds()
}

// addReport fills in the 24h columns. The fallback rate is the gates':
// fallbacks among the requests modern was asked for.
func (rv *routeView) addReport(rep *RouteReport, now time.Time) {
	rv.Report = rep
	for _, pc := range rep.Periods {
		if pc.Period != "24h" {
			continue
		}
		rv.Requests24h = fmtCount(pc.Requests)
		if pc.Modern+pc.Fallbacks > 0 {
			rv.FallbackRate = fmtRate(rate(pc.Fallbacks, pc.Modern+pc.Fallbacks))
		}
	}
	if rep.MismatchRate > 0 || rv.Mode == string(config.ModeShadow) {
		rv.MismatchRate = fmtRate(rep.MismatchRate)
	}
	rv.Chart = fallbackChart(rv.Name, rep.Hourly, now)
	// The badge says "retirable" or "not yet"; the text says why.
	rv.Verdict = rep.Verdict
	for _, prefix := range []string{"retirable: ", "not yet: "} {
		rv.Verdict = strings.TrimPrefix(rv.Verdict, prefix)
	}
}

func toAuditView(e store.AuditEntry) auditView {
	j := toAuditJSON(e)
	v := auditView{
		When: j.At.Format("2006-01-02 15:04:05"), ISO: j.At.Format(time.RFC3339),
		Actor: j.Actor, Action: j.Action, Route: j.Route, Reason: j.Reason, Detail: j.Detail, Forced: j.Forced,
	}
	if j.FromMode != "" || j.ToMode != "" {
		v.Change = modeText(config.Mode(j.FromMode), j.FromPercent) + " → " + modeText(config.Mode(j.ToMode), j.ToPercent)
	}
	return v
}

// sparkline is a small server-rendered bar chart: one bar per hour.
type sparkline struct {
	Label         string
	Width, Height int
	Bars          []bar
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

// fallbackChart draws the last 24 hours' share of requests that fell back,
// oldest first, each bar scaled to the day's highest hour (at least 1%,
// so that a trickle does not look like a flood). Hours without requests
// get a faint stub, hours without fallbacks a dark one.
//
// The hourly counts carry requests and fallbacks only, so an hour's rate
// is fallbacks per request, which equals the gates' rate when the route
// sends all of its traffic to modern.
func fallbackChart(route string, hourly []HourJSON, now time.Time) sparkline {
	const hours, barW, gap, height = 24, 4.0, 1.0, 24.0
	byHour := map[int64]HourJSON{}
	for _, h := range hourly {
		byHour[h.Hour.UTC().Truncate(time.Hour).Unix()] = h
	}
	first := now.UTC().Truncate(time.Hour).Add(-(hours - 1) * time.Hour)
	rates := make([]float64, hours)
	seen := make([]bool, hours)
	peakAt, total, fallbacks := -1, int64(0), int64(0)
	for i := range hours {
		h, ok := byHour[first.Add(time.Duration(i)*time.Hour).Unix()]
		if !ok || h.Requests == 0 {
			continue
		}
		seen[i], rates[i] = true, rate(h.Fallbacks, h.Requests)
		total, fallbacks = total+h.Requests, fallbacks+h.Fallbacks
		if h.Fallbacks > 0 && (peakAt < 0 || rates[i] >= rates[peakAt]) {
			peakAt = i
		}
	}
	scale := 0.01
	if peakAt >= 0 {
		scale = max(scale, rates[peakAt])
	}
	s := sparkline{Width: int(hours * (barW + gap)), Height: int(height)}
	for i := range hours {
		at := first.Add(time.Duration(i) * time.Hour)
		b := bar{X: float64(i) * (barW + gap), W: barW, Class: "empty", H: 1,
			Title: at.Format("15:04") + " UTC: no requests"}
		if seen[i] {
			b.Class, b.H = "zero", 2
			b.Title = fmt.Sprintf("%s UTC: %s of requests fell back", at.Format("15:04"), fmtRate(rates[i]))
			if rates[i] > 0 {
				b.Class, b.H = "bar", max(2, height*rates[i]/scale)
			}
		}
		b.Y = height - b.H
		s.Bars = append(s.Bars, b)
	}
	switch {
	case total == 0:
		s.Label = "Fallback rate of " + route + " per hour over the last 24 hours: no requests."
	case fallbacks == 0:
		s.Label = "Fallback rate of " + route + " per hour over the last 24 hours: no fallbacks."
	default:
		s.Label = fmt.Sprintf("Fallback rate of %s per hour over the last 24 hours: %d fallbacks in %d requests; highest %s at %s UTC.",
			route, fallbacks, total, fmtRate(rates[peakAt]), first.Add(time.Duration(peakAt)*time.Hour).Format("15:04"))
	}
	return s
}

// fmtRate writes a share as a percentage with up to three significant
// digits: 0.0123 is "1.23%".
func fmtRate(r float64) string {
	return strconv.FormatFloat(r*100, 'g', 3, 64) + "%"
}

// fmtCount groups digits by thousands: 12345 is "12,345".
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func fmtRPS(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// fmtAgo writes a duration the way people say how long ago: "5m ago".
func fmtAgo(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", d/time.Minute)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", d/time.Hour)
	}
	return fmt.Sprintf("%dd ago", d/(24*time.Hour))
}
