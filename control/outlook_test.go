package control

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/store"
)

func TestNextStepFollowsTheLifecycle(t *testing.T) {
	read := &config.Route{Name: "get", Match: config.Match{Method: "GET", Path: "/p/{id}"}, RetireAfter: config.Duration(7 * 24 * time.Hour), RetireMinRequests: 100}
	write := &config.Route{Name: "post", Match: config.Match{Method: "POST", Path: "/p"}, RetireAfter: config.Duration(7 * 24 * time.Hour), RetireMinRequests: 100}
	quarter := 25.0
	for _, tc := range []struct {
		name    string
		route   *config.Route
		mode    domain.Mode
		percent *float64
		want    string
	}{
		{"a read endpoint in legacy goes to shadow", read, domain.ModeLegacy, nil, "shadow"},
		{"a write endpoint in legacy goes to dual-write", write, domain.ModeLegacy, nil, "dual-write"},
		{"shadow goes to fallback", read, domain.ModeShadow, nil, "fallback"},
		{"fallback for a quarter goes to all of the traffic", read, domain.ModeFallback, &quarter, "fallback 100%"},
		{"fallback goes to modern", read, domain.ModeFallback, nil, "modern"},
		{"dual-write goes to modern", write, domain.ModeDualWrite, nil, "modern"},
		{"modern for a quarter goes to all of the traffic", read, domain.ModeModern, &quarter, "modern 100%"},
		{"modern for all of the traffic is left to retire", read, domain.ModeModern, nil, "retire"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := nextStep(tc.route, tc.mode, tc.percent, nil, Outlook{}, nil)
			got := n.Mode
			switch {
			case n.Retire:
				got = "retire"
			case n.Percent != nil:
				got += " 100%"
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("each failing gate blocks the flip with its number", func(t *testing.T) {
		gates := gateChecks(config.Gates{MaxMismatchRate: ptr(config.Percent(0.1)), MaxFallbackRate: ptr(config.Percent(1))}, domain.Share{N: 5, Of: 10000}, domain.Share{N: 32, Of: 1000})
		n := nextStep(read, domain.ModeShadow, nil, gates, Outlook{}, nil)
		if len(n.Gates) != 2 || !n.Gates[0].Passes || n.Gates[1].Passes {
			t.Fatalf("gates %+v, want the mismatch gate passing and the fallback gate failing", n.Gates)
		}
		if want := []string{"max_fallback_rate 1%: the fallback rate is 3.2%"}; !slices.Equal(n.Blockers, want) {
			t.Errorf("blockers %q, want %q", n.Blockers, want)
		}
	})

	t.Run("retiring is blocked by the verdict's missing days and requests", func(t *testing.T) {
		n := nextStep(read, domain.ModeModern, nil, gateChecks(config.Gates{MaxFallbackRate: ptr(config.Percent(1))}, domain.Share{}, domain.Share{N: 1, Of: 2}), Outlook{MissingDays: 2.5, MissingRequests: 40, missingWhat: "without a fallback"}, nil)
		want := []string{"retire_after 7d: 2d 12h more without a fallback", "retire_min_requests 100: 40 more served by modern within 7d"}
		if !slices.Equal(n.Blockers, want) || len(n.Gates) != 0 {
			t.Errorf("blockers %q and gates %+v, want %q and no gates: the gates judge flips, not retiring", n.Blockers, n.Gates, want)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// hoursOf spreads daily fallbacks (the last 7 days, oldest first) evenly
// over the 24 hours of each day, each hour with traffic; a negative day
// had no traffic at all.
func hoursOf(now time.Time, days []int64) []domain.HourCount {
	var out []domain.HourCount
	// The last day is the 24 hours that ended by now.
	last := now.Truncate(time.Hour).Add(-time.Hour)
	for d, n := range days {
		if n < 0 {
			continue
		}
		for h := range 24 {
			at := last.Add(-time.Duration((len(days)-1-d)*24+23-h) * time.Hour)
			out = append(out, domain.HourCount{Hour: at, Requests: 100, Fallbacks: n / 24})
		}
	}
	return out
}

// lastDay is the 24 hours that ended by now, with traffic and the
// fallbacks f gives each, oldest first, after hours of the days before
// that counted shadow comparisons but no request.
func lastDay(now time.Time, f func(h int) int64) []domain.HourCount {
	var out []domain.HourCount
	for h := range 48 {
		out = append(out, domain.HourCount{Hour: now.Truncate(time.Hour).Add(-time.Duration(96-h) * time.Hour), ShadowMatches: 10})
	}
	for h := range 24 {
		out = append(out, domain.HourCount{Hour: now.Truncate(time.Hour).Add(-time.Duration(24-h) * time.Hour), Requests: 100, Fallbacks: f(h)})
	}
	return out
}

func TestOutlookSaysWhenTheVerdictWouldTurnRetirable(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	rt := &config.Route{Name: "get", RetireAfter: config.Duration(7 * 24 * time.Hour), RetireMinRequests: 1000}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name         string
		window       store.CountTotals
		days         []int64
		hours        []domain.HourCount // instead of days
		modernPerDay int64
		missingDays  float64
		missingReqs  int64
		at           time.Time // zero: none
		summary      string
	}{
		{
			name:   "retirable now",
			window: store.CountTotals{Modern: 5000}, days: []int64{0, 0, 0, 0, 0, 0, 0}, modernPerDay: 700,
			summary: "retirable now",
		},
		{
			// One an hour less each day: the line through the hours (a
			// staircase, so a little flatter than 24 a day) reaches zero
			// about half a day from now, as the last day's one an hour sits
			// at its middle; then seven days without one.
			name:   "fallbacks falling by 24 a day reach zero in half a day, then need seven without",
			window: store.CountTotals{Modern: 5000, Fallbacks: 672, LastFallbackAt: now.Add(-time.Hour)}, days: []int64{168, 144, 120, 96, 72, 48, 24}, modernPerDay: 700,
			missingDays: 7 - 1.0/24, at: now.Add(day/2 + 7*day), summary: "falling by 23.5 a day, every day",
		},
		{
			// In fallback since yesterday, from 40 an hour down to 0: the
			// daily sums hide it, the hours show it, and the line through
			// them reaches zero within the hour.
			name:   "a route in fallback since yesterday, falling by the hour",
			window: store.CountTotals{Modern: 5000, Fallbacks: 480, LastFallbackAt: now.Add(-time.Hour)}, hours: lastDay(now, func(h int) int64 { return int64(40 - h*40/23) }), modernPerDay: 700,
			missingDays: 7 - 1.0/24, at: now.Add(7 * day), summary: "falling by",
		},
		{
			name:   "fallbacks that stopped three days ago need four more days",
			window: store.CountTotals{Modern: 5000, Fallbacks: 9, LastFallbackAt: now.Add(-3 * day)}, days: []int64{4, 5, 0, 0, 0, 0, 0}, modernPerDay: 700,
			missingDays: 4, at: now.Add(4 * day), summary: "retirable around 2026-11-14 12:00 UTC",
		},
		{
			name:   "fallbacks that are not falling never retire",
			window: store.CountTotals{Modern: 5000, Fallbacks: 70, LastFallbackAt: now.Add(-time.Minute)}, days: []int64{48, 48, 72, 96, 96, 120, 168}, modernPerDay: 700,
			missingDays: 7 - 1.0/(24*60), summary: "fallbacks are not falling (168 in the last 24h)",
		},
		{
			name:   "too few hours with traffic say nothing",
			window: store.CountTotals{Modern: 50, Fallbacks: 3, LastFallbackAt: now.Add(-time.Minute)}, hours: []domain.HourCount{{Hour: now.Truncate(time.Hour), Requests: 10, Fallbacks: 3}}, modernPerDay: 50,
			missingDays: 7 - 1.0/(24*60), missingReqs: 950, summary: "no trend yet",
		},
		{
			name:   "modern serving too few requests a day never retires",
			window: store.CountTotals{Modern: 300}, days: []int64{0, 0, 0, 0, 0, 0, 0}, modernPerDay: 50,
			missingReqs: 700, summary: "1000 within 7d need 143 a day",
		},
		{
			name:   "modern's requests come in later than the quiet week",
			window: store.CountTotals{Modern: 400}, days: []int64{0, 0, 0, 0, 0, 0, 0}, modernPerDay: 200,
			missingReqs: 600, at: now.Add(3 * day), summary: "retirable around 2026-11-13 12:00 UTC",
		},
		{
			name:   "legacy answering requests itself this hour never retires at this trend",
			window: store.CountTotals{Modern: 5000, Legacy: 4000, LastLegacyHour: now.Truncate(time.Hour), FirstHour: now.Add(-30 * day)}, days: []int64{0, 0, 0, 0, 0, 0, 0}, modernPerDay: 700,
			missingDays: 7 + 1.0/24, summary: "not while legacy answers requests itself",
		},
		{
			name:   "legacy that stopped answering itself two days ago needs five more days",
			window: store.CountTotals{Modern: 5000, Legacy: 4000, LastLegacyHour: now.Add(-2*day - time.Hour), FirstHour: now.Add(-30 * day)}, days: []int64{0, 0, 0, 0, 0, 0, 0}, modernPerDay: 700,
			missingDays: 5, at: now.Add(5 * day), summary: "retirable around 2026-11-15 12:00 UTC",
		},
		{
			name:   "a route renamed two days ago has two days of record",
			window: store.CountTotals{Modern: 5000, FirstHour: now.Add(-2 * day)}, days: []int64{0, 0, 0, 0, 0, 0, 0}, modernPerDay: 2500,
			missingDays: 5, at: now.Add(5 * day), summary: "retirable around 2026-11-15 12:00 UTC",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hours := tc.hours
			if hours == nil {
				hours = hoursOf(now, tc.days)
			}
			retirable, _ := verdict(RouteFlags{Route: rt, Mode: domain.ModeModern}, tc.window, nil, now)
			o := outlook(rt, tc.window, hours, tc.modernPerDay, retirable, nil, now)
			if diff := o.MissingDays - tc.missingDays; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("missing days: got %v, want %v", o.MissingDays, tc.missingDays)
			}
			if o.MissingRequests != tc.missingReqs {
				t.Errorf("missing requests: got %d, want %d", o.MissingRequests, tc.missingReqs)
			}
			switch {
			case tc.at.IsZero() && o.RetirableAt != nil:
				t.Errorf("retirable at %v, want never at this trend (or now)", o.RetirableAt)
			case !tc.at.IsZero() && (o.RetirableAt == nil || o.RetirableAt.Sub(tc.at).Abs() > 3*time.Hour):
				t.Errorf("retirable at %v, want %v within three hours", o.RetirableAt, tc.at)
			}
			if !strings.Contains(o.Summary, tc.summary) {
				t.Errorf("summary %q, want it to say %q", o.Summary, tc.summary)
			}
		})
	}
}

func TestConfirmedMissingFallbacksDoNotHoldBackRetirement(t *testing.T) {
	p := newPlane(t)
	ctx := context.Background()
	r := p.counters.Route("get-patient")
	req := &http.Request{Header: http.Header{}}
	for range 150 {
		r.Request(p.clock.Now(), "modern", req)
	}
	// Patients nobody has: modern 404, and legacy 404 too.
	for range 30 {
		r.Request(p.clock.Now(), "fallback", req)
		r.ConfirmedMissing(p.clock.Now())
	}
	if err := p.counters.Flush(ctx, p.store, p.clock.Now()); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(8 * 24 * time.Hour)
	for range 120 {
		r.Request(p.clock.Now(), "modern", req)
	}
	for range 5 {
		r.Request(p.clock.Now(), "fallback", req)
		r.ConfirmedMissing(p.clock.Now())
	}
	resp, body := p.call(t, "GET", "/admin/routes/get-patient/report", aliceToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("report: %d %v", resp.StatusCode, body)
	}
	if body["retirable"] != true {
		t.Errorf("retirable = %v (%v), want true: a patient that exists nowhere is no migration gap", body["retirable"], body["verdict"])
	}
	if v, _ := body["verdict"].(string); !strings.Contains(v, "5 confirmed missing") {
		t.Errorf("verdict %q, want it to mention the 5 confirmed missing of the last 7d", v)
	}
	periods, _ := body["periods"].([]any)
	if len(periods) != 3 {
		t.Fatalf("periods %v", body["periods"])
	}
	for i, want := range []struct{ fallbacks, missing float64 }{{0, 5}, {0, 5}, {0, 35}} {
		pc := periods[i].(map[string]any)
		if pc["fallbacks"] != want.fallbacks || pc["confirmed_missing"] != want.missing {
			t.Errorf("period %v: fallbacks %v, confirmed missing %v; want %v and %v", pc["period"], pc["fallbacks"], pc["confirmed_missing"], want.fallbacks, want.missing)
		}
	}
	next, _ := body["next"].(map[string]any)
	if next["mode"] != "modern" || len(next["blockers"].([]any)) != 0 {
		t.Errorf("next %v, want modern with no blocker: confirmed missing is not in the gates' fallback rate", next)
	}
	if out, _ := body["outlook"].(map[string]any); out["summary"] != "retirable now" {
		t.Errorf("outlook %v, want retirable now", out)
	}

	t.Run("a real fallback still holds it back", func(t *testing.T) {
		for range 5 {
			r.Fallback(p.clock.Now())
		}
		_, body := p.call(t, "GET", "/admin/routes/get-patient/report", aliceToken, "")
		if body["retirable"] != false {
			t.Errorf("retirable = %v after not_found fallbacks that legacy answered", body["retirable"])
		}
		next, _ := body["next"].(map[string]any)
		if b, _ := next["blockers"].([]any); len(b) != 1 || !strings.Contains(b[0].(string), "max_fallback_rate 1%: the fallback rate is 4%") {
			t.Errorf("blockers %v, want the fallback gate with its number", next["blockers"])
		}
	})
}
