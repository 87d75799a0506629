package control

import (
	"context"
	"fmt"
	"strings"
	"time"

	"strangler/domain"
	"strangler/internal/human"
	"strangler/stats"
	"strangler/store"
)

// CountStore is where the counts behind the report live: the hourly
// traffic, the keys read repairs wait on, and the dual writes the journal
// still owes (OpenPrimaries, as the flips' journal check reads them).
type CountStore interface {
	Counts(ctx context.Context, route string, since time.Time) (store.CountTotals, error)
	HourlyCounts(ctx context.Context, route string, since time.Time) ([]domain.HourCount, error)
	TopLegacyClients(ctx context.Context, route string, since time.Time, n int) ([]domain.ClientCount, error)
	CountRepairKeys(ctx context.Context, entity string) (int, error)
	OpenPrimaries(ctx context.Context) (map[string]map[domain.Backend]int, error)
}

// Reports builds the retirement report from the state store's counts,
// which every replica flushes into: it covers all of them and survives
// restarts.
type Reports struct {
	Counts CountStore
	// Flush, if set, adds this replica's latest counts to the store before
	// the gates judge a flip by them.
	Flush func(ctx context.Context) error
}

// RouteReport is one route's retirement report.
type RouteReport struct {
	Route   string   `json:"route"`
	Mode    string   `json:"mode"`
	Percent *float64 `json:"percent,omitempty"`
	// Held says the guard rolled the route back and holds it, and why.
	Held    *Hold         `json:"held,omitempty"`
	Periods []PeriodCount `json:"periods"`
	// LastFallback is the latest fallback within 30 days; nil if none.
	LastFallback *time.Time `json:"last_fallback,omitempty"`
	// ModernShare is the share of the last 24h's requests modern served.
	ModernShare float64 `json:"modern_share"`
	// MismatchRate is the share of the last 24h's shadow comparisons that
	// mismatched; ShadowComparisons says how many there were, so that a
	// rate of 0 with none is not mistaken for a clean record.
	MismatchRate      float64 `json:"mismatch_rate"`
	ShadowComparisons int64   `json:"shadow_comparisons"`
	// LegacyClients are the app versions that reached legacy most in the
	// last 7 days.
	LegacyClients []ClientJSON `json:"legacy_clients"`
	// PendingReadRepairs counts entity keys waiting for the backfill.
	PendingReadRepairs int `json:"pending_read_repairs"`
	// OwedWrites counts the route's dual writes the journal still owes a
	// secondary (sent, pending, unknown or dead), OwedTo per backend they
	// are owed to: legacy is not retirable while any is owed.
	OwedWrites int            `json:"owed_writes"`
	OwedTo     map[string]int `json:"owed_to,omitempty"`
	// Retirable says the legacy path of this route is no longer needed;
	// Verdict says why or why not.
	Retirable bool   `json:"retirable"`
	Verdict   string `json:"verdict"`
	// Next is the flip that would move the route on and what blocks it;
	// Outlook when the verdict would turn retirable at the current trend.
	Next    NextStep `json:"next"`
	Outlook Outlook  `json:"outlook"`
	// Hourly are the last 24 hours, oldest first, for the status page's
	// chart.
	Hourly []HourJSON `json:"hourly"`
}

// PeriodCount is a route's traffic over one period. ConfirmedMissing
// counts the not_found fallbacks legacy answered 404 or 410 too, which
// are not among Fallbacks: they hold back neither the gates nor the
// verdict. Legacy counts the requests legacy answered itself, not as a
// fallback (see store.CountTotals.Legacy).
type PeriodCount struct {
	Period           string `json:"period"`
	Requests         int64  `json:"requests"`
	Modern           int64  `json:"modern"`
	Fallbacks        int64  `json:"fallbacks"`
	ConfirmedMissing int64  `json:"confirmed_missing"`
	Legacy           int64  `json:"legacy"`
}

// ClientJSON is an app version and how many requests it sent to legacy.
type ClientJSON struct {
	Client   string `json:"client"`
	Requests int64  `json:"requests"`
}

// HourJSON is one hour of a route's traffic.
type HourJSON struct {
	Hour             time.Time `json:"hour"`
	Requests         int64     `json:"requests"`
	Modern           int64     `json:"modern"`
	Fallbacks        int64     `json:"fallbacks"`
	ConfirmedMissing int64     `json:"confirmed_missing"`
}

// topClients is the handful of app versions a report names.
const topClients = 5

// Route builds the report of one route as of now.
func (r *Reports) Route(ctx context.Context, rf RouteFlags, now time.Time) (RouteReport, error) {
	rt := rf.Route
	rep := RouteReport{Route: rt.Name, Mode: string(rf.Mode), Percent: rf.Percent, Held: rf.Hold(), LegacyClients: []ClientJSON{}, Hourly: []HourJSON{}}
	now, err := r.storeNow(ctx, now)
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var day store.CountTotals
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}} {
		t, err := r.Counts.Counts(ctx, rt.Name, now.Add(-p.d))
		if err != nil {
			return rep, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if p.name == "24h" {
			day = t
		}
		if !t.LastFallbackAt.IsZero() {
			at := t.LastFallbackAt
			rep.LastFallback = &at
		}
		rep.Periods = append(rep.Periods, PeriodCount{Period: p.name, Requests: t.Requests, Modern: t.Modern, Fallbacks: t.Fallbacks, ConfirmedMissing: t.ConfirmedMissing, Legacy: t.Legacy})
	}
	rep.ModernShare = rate(day.Modern, day.Requests)
	rep.ShadowComparisons = day.ShadowMatches + day.ShadowMismatches
	rep.MismatchRate = rate(day.ShadowMismatches, rep.ShadowComparisons)

	clients, err := r.Counts.TopLegacyClients(ctx, rt.Name, now.Add(-7*24*time.Hour), topClients)
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for _, c := range clients {
		rep.LegacyClients = append(rep.LegacyClients, ClientJSON{Client: c.Client, Requests: c.Requests})
	}
	if rt.Entity != "" && rt.ReadRepair {
		if rep.PendingReadRepairs, err = r.Counts.CountRepairKeys(ctx, rt.Entity); err != nil {
			return rep, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	hours, err := r.Counts.HourlyCounts(ctx, rt.Name, now.Add(-(trendDays*24-1)*time.Hour))
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	chartFrom := now.Add(-23 * time.Hour).UTC().Truncate(time.Hour)
	for _, h := range hours {
		if !h.Hour.Before(chartFrom) {
			rep.Hourly = append(rep.Hourly, HourJSON{Hour: h.Hour, Requests: h.Requests, Modern: h.Modern, Fallbacks: h.Fallbacks, ConfirmedMissing: h.ConfirmedMissing})
		}
	}
	open, err := r.Counts.OpenPrimaries(ctx)
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	owes := appendOwed(nil, rt.Name, open[rt.Name])
	for _, o := range owes {
		if rep.OwedTo == nil {
			rep.OwedTo = map[string]int{}
		}
		rep.OwedTo[string(o.secondary)] = o.count
		rep.OwedWrites += o.count
	}
	window, err := r.Counts.Counts(ctx, rt.Name, now.Add(-time.Duration(rt.RetireAfter)))
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	rep.Retirable, rep.Verdict = verdict(rf, window, owes, now)
	recent, err := r.Counts.Counts(ctx, rt.Name, now.Add(-recentRatesSpan))
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	mismatch, fallback := gateRates(recent)
	rep.Outlook = outlook(rt, window, hours, day.ModernServed(), rep.Retirable, owes, now)
	rep.Next = nextStep(rt, rf.Mode, rf.Percent, gateChecks(rt.Gates, mismatch, fallback), rep.Outlook, owes)
	return rep, nil
}

// verdict says whether a route's legacy path can be retired: no dual
// write of it still owed to a backend (owes), and for retire_after, no
// fallback and no request legacy answered itself, with counts reaching
// back that far, and at least retire_min_requests served by modern in
// that time.
func verdict(rf RouteFlags, window store.CountTotals, owes []owed, now time.Time) (bool, string) {
	rt := rf.Route
	after := human.Duration(time.Duration(rt.RetireAfter))
	switch {
	case len(owes) > 0:
		// Legacy retired, or modern serving alone, before they are
		// delivered would leave writes the client saw succeed on one side
		// only.
		return false, "not yet: " + owedText(owes) + " (strangler repairs list --route " + rt.Name + "; deliver or discard them)"
	case window.Fallbacks > 0:
		return false, fmt.Sprintf("not yet: %d fallbacks in the last %s%s", window.Fallbacks, after, confirmedNote(window))
	case window.Legacy > 0:
		return false, fmt.Sprintf("not yet: legacy answered %d of %d requests in the last %s itself, not as a fallback%s",
			window.Legacy, window.Requests, after, legacyCause(rf))
	case window.ModernServed() < int64(rt.RetireMinRequests):
		return false, fmt.Sprintf("not yet: modern served %d requests in the last %s, %d needed%s", window.ModernServed(), after, rt.RetireMinRequests, failedNote(window))
	case window.FirstHour.After(now.Add(-time.Duration(rt.RetireAfter)).UTC().Truncate(time.Hour)):
		// A route added or renamed since: what legacy served before is on
		// no record of this name.
		return false, fmt.Sprintf("not yet: this route's counts begin %s, less than %s ago", human.Minute(window.FirstHour), after)
	}
	return true, fmt.Sprintf("retirable: no fallback in the last %s, %d requests served by modern%s%s", after, window.ModernServed(), failedNote(window), confirmedNote(window))
}

// owedText says how many dual writes are still owed to which backend:
// "3 dual writes still owed to modern".
func owedText(owes []owed) string {
	parts := make([]string, len(owes))
	for i, o := range owes {
		parts[i] = dualWrites(o.count) + " still owed to " + string(o.secondary)
	}
	return strings.Join(parts, " and ")
}

// failedNote mentions the requests of modern's a verdict did not count
// as served: failed answers, and none at all.
func failedNote(window store.CountTotals) string {
	if window.ModernFailed == 0 {
		return ""
	}
	return fmt.Sprintf(" (and %d requests of modern's that it answered with a 5xx, broke off answering or had not answered when their client left, which do not count)", window.ModernFailed)
}

// legacyCause says why legacy still answers requests itself, when the
// route's mode or percent sends it some now.
func legacyCause(rf RouteFlags) string {
	switch {
	case rf.Mode == domain.ModeLegacy:
		return "; mode legacy: legacy serves all of the traffic"
	case rf.Mode.TakesPercent() && domain.FullPercent(rf.Percent) < 100:
		return fmt.Sprintf("; percent %v: legacy still serves part of the traffic", domain.FullPercent(rf.Percent))
	}
	return ""
}

// confirmedNote mentions the confirmed_missing fallbacks a verdict did
// not count.
func confirmedNote(window store.CountTotals) string {
	if window.ConfirmedMissing == 0 {
		return ""
	}
	return fmt.Sprintf(" (and %d confirmed missing, which do not count)", window.ConfirmedMissing)
}

// RecentRates are a route's shadow mismatch and fallback rates over the
// previous and the current hour, from every replica's flushed counts: what
// the gates judge a flip by.
func (r *Reports) RecentRates(ctx context.Context, route string, now time.Time) (mismatch, fallback domain.Share, err error) {
	if r.Flush != nil {
		if err := r.Flush(ctx); err != nil {
			return domain.Share{}, domain.Share{}, err
		}
	}
	now, err = r.storeNow(ctx, now)
	if err != nil {
		return domain.Share{}, domain.Share{}, err
	}
	t, err := r.Counts.Counts(ctx, route, now.Add(-recentRatesSpan))
	if err != nil {
		return domain.Share{}, domain.Share{}, err
	}
	mismatch, fallback = gateRates(t)
	return mismatch, fallback, nil
}

// storeNow is now on the clock the counts are filed by (see stats.Flush):
// the store's, when it is a stats.Clock. A replica whose clock is days
// ahead would otherwise read a retirement window that leaves out the
// last days' fallbacks, and call the route retirable.
func (r *Reports) storeNow(ctx context.Context, now time.Time) (time.Time, error) {
	clk, ok := r.Counts.(stats.Clock)
	if !ok {
		return now, nil
	}
	off, err := clk.ClockOffset(ctx)
	if err != nil {
		return now, err
	}
	return now.Add(off), nil
}

// recentRatesSpan is how far back the gates look: the previous hour and
// the current one.
const recentRatesSpan = time.Hour

// gateRates are the shadow mismatch and fallback rates the gates judge.
// A confirmed_missing fallback is neither a fallback nor a request modern
// served: it counts on neither side.
func gateRates(t store.CountTotals) (mismatch, fallback domain.Share) {
	return domain.Share{N: t.ShadowMismatches, Of: t.ShadowMatches + t.ShadowMismatches}, domain.Share{N: t.Fallbacks, Of: t.Modern + t.Fallbacks}
}
