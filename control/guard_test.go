package control

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/store"
)

// flip applies an operator's flip, failing the test if it is refused.
func (p *plane) flip(t *testing.T, route string, mode domain.Mode, percent *float64) {
	t.Helper()
	if _, err := p.flags.Apply(context.Background(), Flip{
		Route: route, Actor: "alice", Reason: "test", Mode: &mode, Percent: percent, Force: true,
	}); err != nil && !errors.Is(err, ErrUnchanged) { // a route the file already has so
		t.Fatalf("flip %s to %s %v: %v", route, mode, percent, err)
	}
}

// modernFails records a window's worth of modern answers on route, all
// errors, so that the guard trips on them.
func (p *plane) modernFails(route string, n int) {
	r := p.counters.Route(route)
	for range n {
		r.Modern(p.clock.Now(), true)
	}
}

// served is the route's mode and percent as the router was last given
// them, "fallback 25%" or "modern".
func (p *plane) served(route string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.applied[len(p.applied)-1]
	for _, r := range last.Routes {
		if r.Name == route {
			if r.Percent != nil {
				return string(r.Mode) + " " + strconv.FormatFloat(float64(*r.Percent), 'f', -1, 64) + "%"
			}
			return string(r.Mode)
		}
	}
	return ""
}

func pct(f float64) *float64 { return &f }

// rollbacks lists the guard's audit entries for route, newest first.
func (p *plane) rollbacks(t *testing.T, route string) []domain.AuditEntry {
	t.Helper()
	entries, err := p.store.AuditLog(context.Background(), store.AuditFilter{Route: route, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []domain.AuditEntry
	for _, e := range entries {
		if e.Action == "rollback" {
			out = append(out, e)
		}
	}
	return out
}

func TestGuardStepsBackOnceAndHoldsTheRoute(t *testing.T) {
	p := newPlane(t)
	guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
	ctx := context.Background()
	p.flip(t, "get-patient", domain.ModeModern, nil)

	// Modern is dead for five windows; the guard looks every second.
	for window := range 5 {
		for range 60 {
			p.modernFails("get-patient", 1)
			guard.Check(ctx)
			p.clock.Advance(time.Second)
		}
		if got := len(p.rollbacks(t, "get-patient")); got != 1 {
			t.Fatalf("after %d windows of modern failing: got %d rollbacks, want exactly 1", window+1, got)
		}
	}
	if got, want := p.served("get-patient"), "fallback"; got != want {
		t.Errorf("the route after the rollback: got %s, want %s (one step back from modern)", got, want)
	}
	if got := testutilCounter(t, p, "strangler_guard_rollbacks_total"); got != 1 {
		t.Errorf("strangler_guard_rollbacks_total: got %v, want 1", got)
	}

	t.Run("the admin API and the report say it is held, and why", func(t *testing.T) {
		resp, body := p.call(t, "GET", "/admin/routes/get-patient", aliceToken, "")
		held, _ := body["held"].(map[string]any)
		if resp.StatusCode != http.StatusOK || held == nil || !strings.Contains(held["reason"].(string), "modern error rate 100%") {
			t.Errorf("GET /admin/routes/get-patient: got %d held=%v, want the guard's hold with its reason", resp.StatusCode, body["held"])
		}
		resp, body = p.call(t, "GET", "/admin/routes/get-patient/report", aliceToken, "")
		if held, _ := body["held"].(map[string]any); resp.StatusCode != http.StatusOK || held == nil || held["reason"] == "" {
			t.Errorf("the report: got %d held=%v, want the hold", resp.StatusCode, body["held"])
		}
		resp, body = p.call(t, "GET", "/admin/routes/create-patient", aliceToken, "")
		if resp.StatusCode != http.StatusOK || body["held"] != nil {
			t.Errorf("a route the guard never touched: got held=%v, want none", body["held"])
		}
	})

	t.Run("an operator's flip releases the hold", func(t *testing.T) {
		p.flip(t, "get-patient", domain.ModeModern, nil)
		if rf, _ := p.flags.Get("get-patient"); rf.Hold() != nil {
			t.Fatalf("after an operator's flip the route is still held: %+v", rf.Hold())
		}
		p.clock.Advance(2 * time.Minute) // the old errors are out of the window
		p.modernFails("get-patient", 25)
		guard.Check(ctx)
		if got := len(p.rollbacks(t, "get-patient")); got != 2 {
			t.Errorf("with modern failing after the operator's flip: got %d rollbacks, want 2", got)
		}
		if got, want := p.served("get-patient"), "fallback"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

// TestGuardNeverMovesARouteForward is the outage of issue 11: a route an
// operator moved from modern back to fallback was "rolled back" to
// modern, because the guard took the latest audit entry's from-mode.
func TestGuardNeverMovesARouteForward(t *testing.T) {
	p := newPlane(t)
	guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
	p.flip(t, "get-patient", domain.ModeModern, nil)
	p.flip(t, "get-patient", domain.ModeFallback, nil)
	p.modernFails("get-patient", 25)
	guard.Check(context.Background())
	if got, want := p.served("get-patient"), "legacy"; got != want {
		t.Errorf("fallback with modern failing: got %s, want %s (one step back, never forward to modern)", got, want)
	}
	rb := p.rollbacks(t, "get-patient")
	if len(rb) != 1 || rb[0].FromMode != "fallback" || rb[0].ToMode != "legacy" || rb[0].Actor != "guard" {
		t.Errorf("the rollback's audit entry: got %+v, want guard's fallback → legacy", rb)
	}
}

func TestGuardStepBacks(t *testing.T) {
	for _, tc := range []struct {
		name string
		// flips are the operator's, in order.
		flips []flipTo
		want  string
	}{
		{"modern steps back to fallback", flips(domain.ModeModern, nil), "fallback"},
		{"fallback steps back to legacy", flips(domain.ModeFallback, nil), "legacy"},
		{"a percent rollout of modern keeps its share on modern, behind fallback", flips(domain.ModeModern, pct(25)), "fallback 25%"},
		{"a ramped fallback steps back to its previous percent", flips(domain.ModeFallback, pct(5), domain.ModeFallback, pct(25)), "fallback 5%"},
		{"a ramped modern steps back to its previous percent", flips(domain.ModeModern, pct(10), domain.ModeModern, pct(50)), "modern 10%"},
		{"a ramp that reached 100% is no longer a rollout: a whole step back", flips(domain.ModeModern, pct(50), domain.ModeModern, nil), "fallback"},
		{"a percent lowered, not raised, is no ramp", flips(domain.ModeFallback, pct(50), domain.ModeFallback, pct(20)), "legacy"},
		{"a percent reached by changing mode is no ramp", flips(domain.ModeFallback, pct(10), domain.ModeModern, pct(30)), "fallback 30%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlane(t)
			guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
			for _, f := range tc.flips {
				p.flip(t, "get-patient", f.mode, f.percent)
			}
			p.modernFails("get-patient", 25)
			guard.Check(context.Background())
			if got := p.served("get-patient"); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// flipTo is an operator's flip to a mode and a percent (nil: all of the
// traffic).
type flipTo struct {
	mode    domain.Mode
	percent *float64
}

// flips pairs modes and percents: flips(m1, p1, m2, p2, …).
func flips(args ...any) []flipTo {
	var out []flipTo
	for i := 0; i+1 < len(args); i += 2 {
		pc, _ := args[i+1].(*float64)
		out = append(out, flipTo{args[i].(domain.Mode), pc})
	}
	return out
}

func TestStepBackFollowsTheLifecycle(t *testing.T) {
	for _, m := range domain.Modes {
		back := m.StepBack()
		if back.Stage() >= m.Stage() && m != domain.ModeLegacy {
			t.Errorf("stepBack(%s) = %s: not earlier in the lifecycle", m, back)
		}
		if back != domain.ModeLegacy && back != domain.ModeFallback {
			t.Errorf("stepBack(%s) = %s: clients of it may need modern to answer", m, back)
		}
	}
}

func TestStatusPageSaysWhichRoutesTheGuardHolds(t *testing.T) {
	h := newPageAdmin(t)
	mode := domain.ModeLegacy
	version := int64(0)
	if _, err := h.flags.Apply(context.Background(), Flip{
		Route: "get-patient", Actor: guardActor, Reason: "modern error rate 40% (8 of 20) over 1m0s passed the guard's 5%",
		Mode: &mode, Force: true, IfMatch: &version, action: "rollback",
	}); err != nil {
		t.Fatal(err)
	}
	h.login(t, pageToken)
	body, _ := h.page(t)
	row := func(route string) string {
		start := strings.Index(body, `id="route-`+route+`"`)
		if start < 0 {
			t.Fatalf("no row for %s", route)
		}
		end := strings.Index(body[start:], "</tbody>")
		return body[start : start+end]
	}
	if r := row("get-patient"); !strings.Contains(r, "held by the guard") || !strings.Contains(r, "modern error rate 40% (8 of 20)") {
		t.Errorf("the held route's row does not say it is held, and why:\n%s", r)
	}
	if r := row("list-photos"); strings.Contains(r, "held") {
		t.Errorf("a route the guard does not hold says held:\n%s", r)
	}
}

// TestTheGuardTripsOnlyPastItsBound: with max_error_rate 5% and
// min_requests 20, modern failing exactly 5% of the time is within the
// bound, and 20 requests in the window are enough to judge.
func TestTheGuardTripsOnlyPastItsBound(t *testing.T) {
	for _, c := range []struct {
		name             string
		failed, answered int
		rollback         bool
	}{
		{"19 requests, all failing: too few to judge", 19, 0, false},
		{"20 requests, all failing: enough", 20, 0, true},
		{"2 of 40 failing: 5%, at the bound", 2, 38, false},
		{"3 of 40 failing: past the bound", 3, 37, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPlane(t)
			guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
			p.flip(t, "get-patient", domain.ModeModern, nil)
			p.modernFails("get-patient", c.failed)
			for range c.answered {
				p.counters.Route("get-patient").Modern(p.clock.Now(), false)
			}
			guard.Check(context.Background())
			if got := len(p.rollbacks(t, "get-patient")) == 1; got != c.rollback {
				t.Errorf("rolled back: %v, want %v", got, c.rollback)
			}
		})
	}
}

// TestAGateRefusesOnlyARateAboveIt: a flip to a later stage is refused
// while a rate is above its gate; a rate at the gate passes.
func TestAGateRefusesOnlyARateAboveIt(t *testing.T) {
	mismatchGate, fallbackGate := config.Percent(0.1), config.Percent(1)
	g := config.Gates{MaxMismatchRate: &mismatchGate, MaxFallbackRate: &fallbackGate}
	for _, c := range []struct {
		mismatch, fallback domain.Share
		want               [2]bool
	}{
		{domain.Share{N: 1, Of: 1000}, domain.Share{N: 1, Of: 100}, [2]bool{true, true}},
		{domain.Share{N: 2, Of: 1000}, domain.Share{N: 1, Of: 100}, [2]bool{false, true}},
		{domain.Share{N: 1, Of: 1000}, domain.Share{N: 2, Of: 100}, [2]bool{true, false}},
	} {
		checks := gateChecks(g, c.mismatch, c.fallback)
		if len(checks) != 2 || checks[0].Passes != c.want[0] || checks[1].Passes != c.want[1] {
			t.Errorf("mismatch %v%%, fallback %v%% under gates of 0.1%% and 1%%: got %+v, want passes %v",
				c.mismatch.Percent(), c.fallback.Percent(), checks, c.want)
		}
	}
}

// modernAnswers records n answers of modern on route that did not fail.
func (p *plane) modernAnswers(route string, n int) {
	r := p.counters.Route(route)
	for range n {
		r.Modern(p.clock.Now(), false)
	}
}

// TestTheGuardJudgesAFlipByWhatCameAfterIt: modern failed, the guard
// rolled the route back and held it; modern is fixed and an operator
// flips the route to modern again, in the same minute. The errors that
// tripped the guard were still in its window: it rolled the route back
// at once, on modern's old answers, and went on doing so after every
// flip until the window had passed. It judges what modern answered since
// the flip, and trips again only if modern fails again.
func TestTheGuardJudgesAFlipByWhatCameAfterIt(t *testing.T) {
	p := newPlane(t)
	guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
	ctx := context.Background()
	p.flip(t, "get-patient", domain.ModeModern, nil)
	guard.Check(ctx)
	p.clock.Advance(time.Second)
	p.modernFails("get-patient", 25)
	guard.Check(ctx)
	if got := len(p.rollbacks(t, "get-patient")); got != 1 {
		t.Fatalf("modern failing: got %d rollbacks, want 1", got)
	}
	for range 10 { // held, the guard looking every second
		p.clock.Advance(time.Second)
		guard.Check(ctx)
	}

	p.flip(t, "get-patient", domain.ModeModern, nil) // modern fixed
	for range 30 {
		p.clock.Advance(time.Second)
		p.modernAnswers("get-patient", 1)
		guard.Check(ctx)
	}
	if got := len(p.rollbacks(t, "get-patient")); got != 1 {
		t.Errorf("modern answering well since the operator's flip: got %d rollbacks, want still 1", got)
	}
	if got, want := p.served("get-patient"), "modern"; got != want {
		t.Errorf("the route 30 s after the operator's flip: got %s, want %s", got, want)
	}

	p.modernFails("get-patient", 25) // 25 of 55 since the flip
	guard.Check(ctx)
	rb := p.rollbacks(t, "get-patient")
	if len(rb) != 2 {
		t.Fatalf("modern failing again after the flip: got %d rollbacks, want 2", len(rb))
	}
	// The reason names the span judged: since the flip, not the window.
	if want := "(25 of 55) over 30s passed"; !strings.Contains(rb[0].Reason, want) {
		t.Errorf("the second rollback's reason %q, want it to say %q", rb[0].Reason, want)
	}
}

// TestTheGuardSaysOnceThatItCannotRollBack: with the state store away a
// rollback cannot be audited, so the guard cannot make it; it tried
// every second and logged an error each time, a line a second per route
// for as long as the store was away. One line says it, until a rollback
// of the route works again or it no longer needs one.
func TestTheGuardSaysOnceThatItCannotRollBack(t *testing.T) {
	p := newPlane(t)
	guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
	ctx := context.Background()
	p.flip(t, "get-patient", domain.ModeModern, nil)
	p.modernFails("get-patient", 25)
	p.store.Close() // the store goes away
	for range 10 {
		guard.Check(ctx)
		p.clock.Advance(time.Second)
	}
	if got := len(p.logs.matching(t, "guard rollback failed")); got != 1 {
		t.Errorf("10 looks at a route it could not roll back: %d lines, want 1", got)
	}
	if got, want := p.served("get-patient"), "modern"; got != want {
		t.Errorf("the route: got %s, want %s (no flip without its audit entry)", got, want)
	}
}

// TestTheGuardsWindowSlides: the route's window is the last minute, not
// the calendar minute so far. Kept by calendar minute, errors at
// hh:mm:50 were forgotten at hh:(mm+1):00, and a modern failing every
// answer from then on rolled back only once min_requests had come within
// the new minute, up to a minute later.
func TestTheGuardsWindowSlides(t *testing.T) {
	at := func(clock string) time.Time {
		d, err := time.ParseDuration(clock)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).Add(d)
	}
	// failures are n failed answers of modern at a moment, minutes and
	// seconds past 12:00.
	type failures struct {
		at string
		n  int
	}
	for _, tc := range []struct {
		name     string
		failures []failures
		// look is when the guard looks, past 12:00.
		look     string
		rollback bool
	}{
		{"20 errors straddling the minute trip it", []failures{{"50s", 10}, {"1m5s", 10}}, "1m5s", true},
		{"errors 59 s old are in the window", []failures{{"10s", 20}}, "1m9s", true},
		{"errors a window old are not", []failures{{"10s", 20}}, "1m10.5s", false},
		{"min_requests is reached by errors of both minutes", []failures{{"30s", 19}, {"1m20s", 1}}, "1m20s", true},
		{"min_requests is not reached by errors that left the window", []failures{{"10s", 19}, {"1m20s", 1}}, "1m20s", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlane(t)
			guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
			p.flip(t, "get-patient", domain.ModeModern, nil)
			guard.Check(context.Background()) // the look before modern fails
			for _, f := range tc.failures {
				p.clock.set(at(f.at))
				p.modernFails("get-patient", f.n)
			}
			p.clock.set(at(tc.look))
			guard.Check(context.Background())
			rb := p.rollbacks(t, "get-patient")
			if got := len(rb) == 1; got != tc.rollback {
				t.Fatalf("at %s: rolled back %v, want %v", at(tc.look).Format("15:04:05.0"), got, tc.rollback)
			}
			if tc.rollback && !strings.Contains(rb[0].Reason, "(20 of 20) over 1m0s") {
				t.Errorf("the rollback's reason %q, want it to count the 20 errors over 1m0s", rb[0].Reason)
			}
		})
	}
}

// TestTheGuardLeavesModesWithoutAShareAlone: a shadow route with modern
// as its primary counts modern's answers as any route does, but shadow
// and legacy take no percent and have no step back for the guard to
// take: modern failing there is the operator's to judge, and the guard
// neither flips nor holds the route.
func TestTheGuardLeavesModesWithoutAShareAlone(t *testing.T) {
	for _, mode := range []domain.Mode{domain.ModeShadow, domain.ModeLegacy} {
		t.Run(string(mode), func(t *testing.T) {
			p := newPlane(t)
			guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
			p.flip(t, "get-patient", mode, nil)
			p.modernFails("get-patient", 40)
			guard.Check(context.Background())
			if got := len(p.rollbacks(t, "get-patient")); got != 0 {
				t.Errorf("the guard rolled a %s route back %d times, want never", mode, got)
			}
			if got := p.served("get-patient"); got != string(mode) {
				t.Errorf("the route is served %s, want %s as the operator left it", got, mode)
			}
		})
	}
}
