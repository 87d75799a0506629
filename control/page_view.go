package control

// The status page's view: what each route row shows, the fallback chart,
// and how numbers are written.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"strangler/domain"
	"strangler/internal/human"
	"strangler/store"
)

// statusView is the status page.
type statusView struct {
	Title, Actor, CSRF string
	// Role is the session's token's; CanFlip says whether it may use the
	// flip forms, which are left out otherwise.
	Role        string
	CanFlip     bool
	Flash       *flash
	Now, NowISO string
	StoreDown   string
	// WritesRefused says since when the store refuses the dual-write
	// journal's writes, and how many outcomes wait in memory for it.
	WritesRefused string
	HeldOutcomes  int
	ReportError   string
	Modes         []string
	Routes        []routeView
	AuditLimit    int
	Audit         []auditView
	AuditError    string
	// ChainHead is the audit chain's newest entry and hash, for auditors
	// to note down.
	ChainHead *chainJSON
	// CanRamp and CanDecide say whether the session may use the ramp
	// forms and approve or reject change requests.
	CanRamp, CanDecide bool
	// Changes are the pending change requests; RolloutsError says why
	// they and the ramps are missing.
	Changes       []changeView
	RolloutsError string
	// Owed are the dual writes each route still owes its secondary;
	// OwedError says why they are missing.
	Owed      []owedView
	OwedError string
}

// owedView is one row of the dual writes owed: a route's open writes
// journaled under one primary, by state.
type owedView struct {
	Route, Secondary string
	// Gone says the file no longer has the route.
	Gone bool
	// Waiting are sent and pending writes, which the facade delivers on
	// its own; Unknown and Dead wait for an operator.
	Waiting, Unknown, Dead int
}

// routeView is one row of the route table and its flip form.
type routeView struct {
	Name, Match, ID    string
	Mode               string
	ModeText, FileText string
	Version            int64
	PercentValue       string
	Override           *overrideView
	// Held is the guard's hold on the route, nil without one.
	Held *Hold
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
	// Ramp is the route's latest ramp, Pending its pending change
	// request; Approvals how many token names must agree to move it
	// forward (1: no approval).
	Ramp      *rampView
	Pending   *changeView
	Approvals int
	// RampMode is the ramp form's default mode.
	RampMode string
}

type overrideView struct {
	Actor, Reason, Ago, When, ISO string
}

// auditView is one row of the audit log.
type auditView struct {
	When, ISO, Actor, Action, Route, Change, Reason, Detail string
	Forced                                                  bool
}

func (p *statusPage) renderStatus(w http.ResponseWriter, r *http.Request, s session) {
	now := p.now()
	v := statusView{
		Title: "Status", Actor: s.actor, CSRF: csrfToken(s.id), Flash: p.takeFlash(w, r, s.id),
		Role: string(p.Tokens.role(s.actor)), CanFlip: p.may(s.actor, actionFlipForm),
		CanRamp: p.may(s.actor, actionRampForm), CanDecide: p.may(s.actor, actionChangeForm),
		Now: human.Time(now), NowISO: now.UTC().Format(time.RFC3339),
		AuditLimit: auditLimit,
	}
	for _, m := range domain.Modes {
		v.Modes = append(v.Modes, string(m))
	}
	if ok, since := p.Flags.StoreOK(); !ok {
		v.StoreDown = human.Time(since)
	}
	if p.Writes != nil {
		if since, held := p.Writes.WritesFailing(); !since.IsZero() {
			v.WritesRefused, v.HeldOutcomes = human.Time(since), held
		}
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
	p.addRollouts(ctx, &v, s.actor)
	head, err := p.Audit.AuditHead(ctx)
	if err == nil {
		v.ChainHead = &chainJSON{HeadID: head.ID, HeadHash: head.Hash}
	}
	v.Owed, err = p.owed(ctx)
	if err != nil {
		p.log.Error("status page: counting the journal's open writes failed", "error", err)
		v.OwedError = "The dual writes still owed cannot be read from the state store right now."
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

// owed lists, per route and primary, the journal's open writes: what a
// route still owes its secondary, which an operator retiring it must see
// delivered or discarded.
func (p *statusPage) owed(ctx context.Context) ([]owedView, error) {
	counts, err := p.Repairs.OpenRepairs(ctx)
	if err != nil {
		return nil, err
	}
	var out []owedView
	for _, c := range counts {
		secondary := string(other(c.Primary))
		if n := len(out); n == 0 || out[n-1].Route != c.Route || out[n-1].Secondary != secondary {
			_, known := p.Flags.Get(c.Route)
			out = append(out, owedView{Route: c.Route, Secondary: secondary, Gone: !known})
		}
		o := &out[len(out)-1]
		switch c.State {
		case domain.StateUnknown:
			o.Unknown += c.N
		case domain.StateDead:
			o.Dead += c.N
		default:
			o.Waiting += c.N
		}
	}
	return out, nil
}

func (p *statusPage) routeView(rf RouteFlags, now time.Time) routeView {
	rv := routeView{
		Name: rf.Route.Name, Match: rf.Route.Match.String(), Mode: string(rf.Mode), Version: rf.Version,
		ModeText: ModeText(rf.Mode, rf.Percent), FileText: ModeText(rf.FileMode, rf.FilePercent),
		Gated: !rf.Route.Gates.IsZero(), RPS: human.PerSecond(requestsPerSecond(p.Live, rf.Route.Name, now)),
		Requests24h: "—", FallbackRate: "—", MismatchRate: "—", Held: rf.Hold(),
		Approvals: p.Flags.approvals(rf), RampMode: string(domain.ModeFallback),
	}
	if rf.Mode.TakesPercent() {
		rv.RampMode = string(rf.Mode)
	}
	switch {
	case rf.Percent != nil:
		rv.PercentValue = strconv.FormatFloat(*rf.Percent, 'f', -1, 64)
	case rf.Mode.TakesPercent():
		rv.PercentValue = "100"
	}
	if o := rf.Override; o != nil {
		rv.Override = &overrideView{
			Actor: o.Actor, Reason: human.Printable(o.Reason, false), Ago: human.Age(now.Sub(o.UpdatedAt)) + " ago",
			When: human.Time(o.UpdatedAt), ISO: o.UpdatedAt.UTC().Format(time.RFC3339),
		}
	}
	return rv
}

// addReport fills in the 24h columns. The fallback rate is the gates':
// fallbacks among the requests modern was asked for.
func (rv *routeView) addReport(rep *RouteReport, now time.Time) {
	rv.Report = rep
	for _, pc := range rep.Periods {
		if pc.Period != "24h" {
			continue
		}
		rv.Requests24h = human.Count(pc.Requests)
		if pc.Modern+pc.Fallbacks > 0 {
			rv.FallbackRate = human.Share(rate(pc.Fallbacks, pc.Modern+pc.Fallbacks))
		}
	}
	if rep.MismatchRate > 0 || rv.Mode == string(domain.ModeShadow) {
		rv.MismatchRate = human.Share(rep.MismatchRate)
	}
	rv.Chart = fallbackChart(rv.Name, rep.Hourly, now)
	// The badge says "retirable" or "not yet"; the text says why.
	rv.Verdict = rep.Verdict
	for _, prefix := range []string{"retirable: ", "not yet: "} {
		rv.Verdict = strings.TrimPrefix(rv.Verdict, prefix)
	}
}

func toAuditView(e domain.AuditEntry) auditView {
	j := toAuditJSON(e)
	// html/template escapes markup, not the characters a browser acts
	// on as a terminal does (U+202E shows what follows reversed), which
	// a reason an earlier release stored, before checkReason, may hold.
	v := auditView{
		When: j.At.Format("2006-01-02 15:04:05"), ISO: j.At.Format(time.RFC3339),
		Actor: j.Actor, Action: j.Action, Route: j.Route, Forced: j.Forced,
		Reason: human.Printable(j.Reason, false), Detail: human.Printable(j.Detail, false),
	}
	if j.FromMode != "" || j.ToMode != "" {
		v.Change = ModeText(domain.Mode(j.FromMode), j.FromPercent) + " → " + ModeText(domain.Mode(j.ToMode), j.ToPercent)
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
		if !ok || h.Modern+h.Fallbacks == 0 {
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
			b.Title = fmt.Sprintf("%s UTC: %s of requests fell back", at.Format("15:04"), human.Share(rates[i]))
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
			route, fallbacks, total, human.Share(rates[peakAt]), first.Add(time.Duration(peakAt)*time.Hour).Format("15:04"))
	}
	return s
}
