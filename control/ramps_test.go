package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/domain"
	"strangler/store"
)

// version is the route's ETag, as If-Match wants it.
func (p *plane) version(t *testing.T, route string) string {
	t.Helper()
	rf, ok := p.flags.Get(route)
	if !ok {
		t.Fatalf("no route %s", route)
	}
	return etag(rf.Version)
}

// patch sends PATCH /admin/routes/{route} with token, at the route's
// current version.
func (p *plane) patch(t *testing.T, route, token, body string) (*http.Response, map[string]any) {
	t.Helper()
	return p.call(t, "PATCH", "/admin/routes/"+route, token, body, "If-Match", p.version(t, route))
}

// startRamp starts a ramp of route through the admin API as bob.
func (p *plane) startRamp(t *testing.T, route, ramp string) map[string]any {
	t.Helper()
	resp, body := p.patch(t, route, bobToken, `{"ramp": `+ramp+`, "reason": "ticket 7"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("starting a ramp of %s: got %d %v, want 200", route, resp.StatusCode, body)
	}
	return body
}

// ramp is route's ramp as GET /admin/routes/{route} shows it.
func (p *plane) ramp(t *testing.T, route string) map[string]any {
	t.Helper()
	resp, body := p.call(t, "GET", "/admin/routes/"+route, veraToken, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/routes/%s: %d %v", route, resp.StatusCode, body)
	}
	r, _ := body["ramp"].(map[string]any)
	return r
}

// rampEntries lists the audit entries of route by the ramp, oldest
// first, as "action from → to".
func (p *plane) rampEntries(t *testing.T, route string) []string {
	t.Helper()
	entries, err := p.store.AuditLog(context.Background(), store.AuditFilter{Route: route, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range slices.Backward(entries) {
		if e.Actor == config.RampActor {
			out = append(out, e.Action+" "+ModeText(domain.Mode(e.FromMode), e.FromPercent)+" → "+ModeText(domain.Mode(e.ToMode), e.ToPercent))
		}
	}
	return out
}

// atZero puts get-patient at fallback 0%: all of its traffic to legacy,
// ready to ramp.
func (p *plane) atZero(t *testing.T) {
	t.Helper()
	p.flip(t, "get-patient", domain.ModeFallback, pct(0))
}

func TestARampTakesEveryStepOnItsClock(t *testing.T) {
	p := newPlane(t)
	ctx := context.Background()
	p.atZero(t)
	started := p.startRamp(t, "get-patient", `{"steps": [1, 5, 25, 50, 100], "every": "30m"}`)
	ramp, _ := started["ramp"].(map[string]any)
	if ramp["state"] != "running" || ramp["next_percent"] != 1.0 || ramp["started_by"] != "bob" || ramp["mode"] != "fallback" {
		t.Errorf("the PATCH answered ramp %v, want bob's running fallback ramp, next at 1%%", ramp)
	}
	if got := p.auditActions(t)[0]; got != "bob ramp_start get-patient" {
		t.Errorf("latest audit entry %q, want bob's ramp_start", got)
	}
	// Another replica, on the same store and flags, with its own log.
	otherLogs := &logLines{}
	other := NewRollouts(p.flags, p.store, p.store, p.admin.Tokens, slog.New(slog.NewJSONHandler(otherLogs, nil)), p.clock.Now)

	p.rollouts.Check(ctx) // takes the lease, and the first step
	other.Check(ctx)
	if got, want := p.served("get-patient"), "fallback 1%"; got != want {
		t.Fatalf("after the first round: got %s, want %s (the first step is due at once)", got, want)
	}
	// elapse moves the clock on by d, both replicas doing their rounds
	// every few seconds, as they do.
	elapse := func(d time.Duration) {
		for end := p.clock.Now().Add(d); p.clock.Now().Before(end); {
			p.clock.Advance(min(leaseRenew, end.Sub(p.clock.Now())))
			other.Check(ctx)
			p.rollouts.Check(ctx)
		}
	}
	for i, want := range []string{"fallback 5%", "fallback 25%", "fallback 50%", "fallback 100%"} {
		elapse(30*time.Minute - time.Second)
		if got, before := p.served("get-patient"), []string{"fallback 1%", "fallback 5%", "fallback 25%", "fallback 50%"}[i]; got != before {
			t.Fatalf("a second before step %d was due: got %s, want %s", i+2, got, before)
		}
		elapse(time.Second)
		if got := p.served("get-patient"); got != want {
			t.Fatalf("step %d: got %s, want %s", i+2, got, want)
		}
	}
	want := []string{
		"flip fallback at 0% → fallback at 1%", "flip fallback at 1% → fallback at 5%", "flip fallback at 5% → fallback at 25%",
		"flip fallback at 25% → fallback at 50%", "flip fallback at 50% → fallback",
	}
	if got := p.rampEntries(t, "get-patient"); !slices.Equal(got, want) {
		t.Errorf("the ramp's audit entries: got %q, want %q (each step once, though two replicas drove)", got, want)
	}
	if got, want := [2]int{len(p.logs.matching(t, "ramp stepped")), len(otherLogs.matching(t, "ramp stepped"))}, [2]int{5, 0}; got != want {
		t.Errorf("steps taken by the replica holding the lease and by the other: got %v, want %v", got, want)
	}
	if r := p.ramp(t, "get-patient"); r["state"] != "done" || r["taken"] != 5.0 || r["next_at"] != nil {
		t.Errorf("after the last step the ramp is %v, want done with 5 steps taken", r)
	}
	entries, _ := p.store.AuditLog(ctx, store.AuditFilter{Route: "get-patient", Limit: 1})
	if e := entries[0]; e.Reason != "ticket 7" || !strings.Contains(e.Detail, "ramp step 5 of 5") || !strings.Contains(e.Detail, "started by bob") {
		t.Errorf("the last step's entry %+v, want the ramp's reason and which step of whose ramp", e)
	}
	p.clock.Advance(time.Hour)
	p.rollouts.Check(ctx)
	if got := len(p.rampEntries(t, "get-patient")); got != 5 {
		t.Errorf("a done ramp took more steps: %d entries", got)
	}
}

func TestARampWaitsWhileAGateRefuses(t *testing.T) {
	p := newPlane(t)
	ctx := context.Background()
	p.atZero(t)
	p.startRamp(t, "get-patient", `{"steps": [1, 5, 25], "every": "30m"}`)
	p.rollouts.Check(ctx)
	// Modern misses 3 in 100 requests: above the 1% fallback gate.
	r := p.counters.Route("get-patient")
	for i := range 100 {
		if i < 3 {
			r.Fallback(p.clock.Now())
		} else {
			r.Request(p.clock.Now(), "modern", &http.Request{Header: http.Header{}})
		}
	}
	p.clock.Advance(30 * time.Minute)
	p.rollouts.Check(ctx)
	if got, want := p.served("get-patient"), "fallback 1%"; got != want {
		t.Fatalf("with the gate refusing: got %s, want %s", got, want)
	}
	ramp := p.ramp(t, "get-patient")
	if w, _ := ramp["waiting"].(string); ramp["state"] != "running" || !strings.Contains(w, "fallback rate 3% is above the gate's 1%") || ramp["waiting_since"] == nil {
		t.Errorf("the waiting ramp shows %v, want it running and waiting on the fallback rate, with its number", ramp)
	}
	p.clock.Advance(time.Minute)
	if got := p.rolloutGauges(t); got[`strangler_ramp_state{route="get-patient",state="waiting"}`] != 1 ||
		got[`strangler_ramp_waiting_seconds{route="get-patient"}`] != 60 || len(got) != 5 {
		t.Errorf("the ramp's gauges while it waits: %v, want state waiting, 60 s waited", got)
	}
	// Each look at the gates flushes this replica's counts to the store:
	// a waiting ramp looks every 10 seconds, not at every round.
	looks, flush := 0, p.reports.Flush
	p.reports.Flush = func(ctx context.Context) error {
		looks++
		return flush(ctx)
	}
	for range 20 {
		p.clock.Advance(5 * time.Second)
		p.rollouts.Check(ctx)
	}
	if looks != 10 {
		t.Errorf("in 100 seconds of waiting the ramp looked at its gates %d times, want 10", looks)
	}
	denied := 0
	for _, a := range p.auditActions(t) {
		if a == "ramp denied get-patient" {
			denied++
		}
	}
	if denied != 1 {
		t.Errorf("the wait is audited %d times, want once, when it began", denied)
	}
	if got, want := p.served("get-patient"), "fallback 1%"; got != want {
		t.Fatalf("still refused: got %s, want %s", got, want)
	}
	// Two hours on, the fallbacks are out of the gates' window.
	p.clock.Advance(2 * time.Hour)
	p.rollouts.Check(ctx)
	if got, want := p.served("get-patient"), "fallback 5%"; got != want {
		t.Fatalf("once the gate passes: got %s, want %s", got, want)
	}
	if ramp := p.ramp(t, "get-patient"); ramp["waiting"] != nil || ramp["taken"] != 2.0 {
		t.Errorf("after the wait the ramp shows %v, want step 2 taken and no wait", ramp)
	}
}

// rolloutGauges scrapes the rollouts' collector: each sample's name and
// labels, as the exposition format writes them, to its value.
func (p *plane) rolloutGauges(t *testing.T) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.rollouts.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			out[name] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestRampAndChangeRequestGauges(t *testing.T) {
	p := newApprovalsPlane(t)
	ctx := context.Background()
	if got := p.rolloutGauges(t); len(got) != 4 || got["strangler_change_requests_pending"] != 0 || got["strangler_change_request_oldest_pending_seconds"] != 0 ||
		got[`strangler_ramp_waiting_seconds{route="create-patient"}`] != 0 {
		t.Errorf("without ramps or requests: %v, want no ramp state, each route's wait at 0 and 0 pending", got)
	}
	p.pendingChange(t, "alice")
	p.clock.Advance(90 * time.Minute)
	if got := p.rolloutGauges(t); got["strangler_change_requests_pending"] != 1 || got["strangler_change_request_oldest_pending_seconds"] != 5400 {
		t.Errorf("one request 90 minutes old: %v", got)
	}
	p2 := newPlane(t)
	p2.atZero(t)
	p2.startRamp(t, "get-patient", `{"steps": [1, 5, 25], "every": "30m"}`)
	p2.rollouts.Check(ctx)
	if got := p2.rolloutGauges(t); got[`strangler_ramp_state{route="get-patient",state="running"}`] != 1 || got[`strangler_ramp_waiting_seconds{route="get-patient"}`] != 0 {
		t.Errorf("a running ramp: %v", got)
	}
	resp, body := p2.patch(t, "get-patient", bobToken, `{"ramp": {"action": "pause"}, "reason": "hold on"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("pausing: %d %v", resp.StatusCode, body)
	}
	if got := p2.rolloutGauges(t); got[`strangler_ramp_state{route="get-patient",state="paused"}`] != 1 || len(got) != 5 {
		t.Errorf("a paused ramp: %v, want its one state paused", got)
	}
}

func TestTheGuardStepsARampBackOneStepAndHoldsIt(t *testing.T) {
	p := newPlane(t)
	ctx := context.Background()
	guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
	p.atZero(t)
	p.startRamp(t, "get-patient", `{"steps": [1, 5, 25, 50], "every": "30m"}`)
	p.rollouts.Check(ctx)
	for range 2 {
		p.clock.Advance(30 * time.Minute)
		p.rollouts.Check(ctx)
	}
	if got, want := p.served("get-patient"), "fallback 25%"; got != want {
		t.Fatalf("before modern fails: got %s, want %s", got, want)
	}
	p.modernFails("get-patient", 25)
	guard.Check(ctx)
	if got, want := p.served("get-patient"), "fallback 5%"; got != want {
		t.Fatalf("the guard's rollback: got %s, want %s (the ramp's previous step)", got, want)
	}
	p.rollouts.Check(ctx)
	ramp := p.ramp(t, "get-patient")
	if note, _ := ramp["note"].(string); ramp["state"] != "held" || !strings.Contains(note, "the guard stepped get-patient back to fallback at 5% and holds it: modern error rate") {
		t.Errorf("the ramp after the guard's rollback: %v, want held, saying why", ramp)
	}
	for range 3 {
		p.clock.Advance(30 * time.Minute)
		p.rollouts.Check(ctx)
		guard.Check(ctx)
	}
	if got, want := p.served("get-patient"), "fallback 5%"; got != want {
		t.Fatalf("a held ramp, 90 minutes on: got %s, want %s", got, want)
	}
	if got := p.rampEntries(t, "get-patient"); got[len(got)-1] != "ramp_hold  → " {
		t.Errorf("the ramp's entries end with %q, want its hold", got[len(got)-1])
	}

	t.Run("resumed, it goes on from where the guard left it", func(t *testing.T) {
		resp, body := p.patch(t, "get-patient", aliceToken, `{"ramp": {"action": "resume"}, "reason": "modern fixed"}`)
		ramp, _ := body["ramp"].(map[string]any)
		if resp.StatusCode != 200 || ramp["state"] != "running" || ramp["next_percent"] != 25.0 || ramp["taken"] != 2.0 {
			t.Fatalf("resume: got %d ramp %v, want running with 25%% next", resp.StatusCode, ramp)
		}
		p.clock.Advance(30*time.Minute - time.Second)
		p.rollouts.Check(ctx)
		if got, want := p.served("get-patient"), "fallback 5%"; got != want {
			t.Errorf("a second before the step after the resume: got %s, want %s", got, want)
		}
		p.clock.Advance(time.Second)
		p.rollouts.Check(ctx)
		if got, want := p.served("get-patient"), "fallback 25%"; got != want {
			t.Fatalf("every after the resume: got %s, want %s", got, want)
		}
		if rf, _ := p.flags.Get("get-patient"); rf.Hold() != nil {
			t.Errorf("the ramp's step left the guard's hold: %+v", rf.Hold())
		}
	})
}

func TestAChangeByHandPausesARampAndCancelLeavesTheRoute(t *testing.T) {
	p := newPlane(t)
	ctx := context.Background()
	p.atZero(t)
	p.startRamp(t, "get-patient", `{"steps": [1, 5, 25], "every": "30m"}`)
	p.rollouts.Check(ctx)
	p.flip(t, "get-patient", domain.ModeFallback, pct(2)) // alice, by hand
	p.rollouts.Check(ctx)
	ramp := p.ramp(t, "get-patient")
	if note, _ := ramp["note"].(string); ramp["state"] != "paused" || !strings.Contains(note, "alice moved get-patient by hand to fallback at 2%") {
		t.Errorf("after a flip by hand the ramp is %v, want paused, naming who moved it", ramp)
	}
	p.clock.Advance(time.Hour)
	p.rollouts.Check(ctx)
	if got, want := p.served("get-patient"), "fallback 2%"; got != want {
		t.Errorf("a paused ramp moved the route: got %s, want %s", got, want)
	}
	resp, body := p.patch(t, "get-patient", bobToken, `{"ramp": {"action": "cancel"}, "reason": "done by hand"}`)
	if ramp, _ := body["ramp"].(map[string]any); resp.StatusCode != 200 || ramp["state"] != "cancelled" || body["mode"] != "fallback" || body["percent"] != 2.0 {
		t.Fatalf("cancel: got %d %v, want the ramp cancelled and the route left at 2%%", resp.StatusCode, body)
	}
	if got := p.auditActions(t)[0]; got != "bob ramp_cancel get-patient" {
		t.Errorf("latest audit entry %q, want bob's ramp_cancel", got)
	}
	p.startRamp(t, "get-patient", `{"steps": [10, 100], "every": "1h"}`) // a new one may start
}

func TestAPausedRampTakesNoStepUntilResumed(t *testing.T) {
	p := newPlane(t)
	ctx := context.Background()
	p.atZero(t)
	p.startRamp(t, "get-patient", `{"steps": [1, 5], "every": "30m"}`)
	p.rollouts.Check(ctx)
	if resp, body := p.patch(t, "get-patient", bobToken, `{"ramp": {"action": "pause"}, "reason": "incident 12"}`); resp.StatusCode != 200 {
		t.Fatalf("pause: got %d %v", resp.StatusCode, body)
	}
	p.clock.Advance(2 * time.Hour)
	p.rollouts.Check(ctx)
	if got, want := p.served("get-patient"), "fallback 1%"; got != want {
		t.Fatalf("paused for two hours: got %s, want %s", got, want)
	}
	if resp, body := p.patch(t, "get-patient", bobToken, `{"ramp": {"action": "resume"}, "reason": "incident over"}`); resp.StatusCode != 200 {
		t.Fatalf("resume: got %d %v", resp.StatusCode, body)
	}
	p.rollouts.Check(ctx)
	if got, want := p.served("get-patient"), "fallback 1%"; got != want {
		t.Errorf("right after the resume: got %s, want %s (the next step comes every after it)", got, want)
	}
	p.clock.Advance(30 * time.Minute)
	p.rollouts.Check(ctx)
	if got, want := p.served("get-patient"), "fallback 5%"; got != want {
		t.Errorf("every after the resume: got %s, want %s", got, want)
	}
}

func TestRampsThatCannotWorkAreRefused(t *testing.T) {
	p := newPlane(t)
	p.atZero(t)
	for _, tc := range []struct {
		name, route, body string
		status            int
		want              string
	}{
		{"steps that do not rise", "get-patient", `{"ramp": {"steps": [5, 5, 25], "every": "30m"}, "reason": "x"}`, 400, "the steps must rise: step 2, 5%, is not above step 1, 5%"},
		{"a step above 100", "get-patient", `{"ramp": {"steps": [50, 150], "every": "30m"}, "reason": "x"}`, 400, "step 2, 150%, is not above 0 and at most 100"},
		{"a step of 0", "get-patient", `{"ramp": {"steps": [0, 50], "every": "30m"}, "reason": "x"}`, 400, "step 1, 0%, is not above 0"},
		{"no steps", "get-patient", `{"ramp": {"steps": [], "every": "30m"}, "reason": "x"}`, 400, "a ramp has from 1 to 20 steps"},
		{"too many steps", "get-patient", `{"ramp": {"steps": [` + strings.Trim(strings.Repeat("1,", 21), ",") + `], "every": "30m"}, "reason": "x"}`, 400, "this one has 21"},
		{"every under a minute", "get-patient", `{"ramp": {"steps": [1, 5], "every": "30s"}, "reason": "x"}`, 400, "every must be from 1m to 7d"},
		{"every of a month", "get-patient", `{"ramp": {"steps": [1, 5], "every": "30d"}, "reason": "x"}`, 400, "not 30d"},
		{"every that is no duration", "get-patient", `{"ramp": {"steps": [1, 5], "every": "soon"}, "reason": "x"}`, 400, "invalid duration"},
		{"no every", "get-patient", `{"ramp": {"steps": [1, 5]}, "reason": "x"}`, 400, "a ramp needs steps and every"},
		{"a mode without percent", "get-patient", `{"ramp": {"steps": [1, 5], "every": "30m", "mode": "shadow"}, "reason": "x"}`, 400, "a ramp raises the share of fallback or modern, not shadow"},
		{"a route without a percent mode and no mode named", "create-patient", `{"ramp": {"steps": [1, 5], "every": "30m"}, "reason": "x"}`, 400, "name the mode to ramp create-patient in, fallback or modern: it is legacy now"},
		{"a ramp with a flip", "get-patient", `{"mode": "modern", "ramp": {"steps": [1], "every": "30m"}, "reason": "x"}`, 400, "a ramp is changed on its own"},
		{"a forced ramp", "get-patient", `{"force": true, "ramp": {"steps": [1], "every": "30m"}, "reason": "x"}`, 400, "never forced past the gates"},
		{"an unknown action", "get-patient", `{"ramp": {"action": "faster"}, "reason": "x"}`, 400, `unknown ramp action "faster"`},
		{"a pause with steps", "get-patient", `{"ramp": {"action": "pause", "steps": [1]}, "reason": "x"}`, 400, "pause takes no steps"},
		{"a pause with no ramp", "get-patient", `{"ramp": {"action": "pause"}, "reason": "x"}`, 409, "get-patient has no ramp under way to pause"},
		{"no reason", "get-patient", `{"ramp": {"steps": [1, 5], "every": "30m"}}`, 400, "a reason is required"},
		{"an unknown field", "get-patient", `{"ramp": {"steps": [1], "every": "30m", "jitter": true}, "reason": "x"}`, 400, `unknown field "jitter"`},
		{"no such route", "nope", `{"ramp": {"steps": [1], "every": "30m"}, "reason": "x"}`, 404, "no such route"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			v := `"0"`
			if rf, ok := p.flags.Get(tc.route); ok {
				v = etag(rf.Version)
			}
			resp, body := p.call(t, "PATCH", "/admin/routes/"+tc.route, bobToken, tc.body, "If-Match", v)
			if msg, _ := body["error"].(string); resp.StatusCode != tc.status || !strings.Contains(msg, tc.want) {
				t.Errorf("got %d %q, want %d saying %q", resp.StatusCode, msg, tc.status, tc.want)
			}
		})
	}
	t.Run("a first step that does not move the route forward is refused", func(t *testing.T) {
		p.flip(t, "get-patient", domain.ModeFallback, pct(30))
		resp, body := p.patch(t, "get-patient", bobToken, `{"ramp": {"steps": [10, 50], "every": "30m"}, "reason": "x"}`)
		if msg, _ := body["error"].(string); resp.StatusCode != 400 || !strings.Contains(msg, "the first step, fallback at 10%, does not move get-patient forward from fallback at 30%") {
			t.Errorf("got %d %q, want 400 saying the first step moves it back", resp.StatusCode, msg)
		}
	})
	t.Run("a second ramp of a route is refused while the first is under way", func(t *testing.T) {
		p.startRamp(t, "get-patient", `{"steps": [50, 100], "every": "30m"}`)
		resp, body := p.patch(t, "get-patient", aliceToken, `{"ramp": {"steps": [60, 100], "every": "1h"}, "reason": "mine"}`)
		if msg, _ := body["error"].(string); resp.StatusCode != 409 || !strings.Contains(msg, "get-patient is already ramping (to fallback at 50%, 100% every 30m, 0 of 2 steps taken, running); cancel that ramp first") {
			t.Errorf("got %d %q, want 409 naming the ramp under way", resp.StatusCode, msg)
		}
		if got := p.auditActions(t)[0]; got != "alice denied get-patient" {
			t.Errorf("latest audit entry %q, want the refusal audited", got)
		}
	})
	t.Run("a ramp without If-Match, or from a stale version, is refused", func(t *testing.T) {
		body := `{"ramp": {"action": "cancel"}, "reason": "x"}`
		if resp, _ := p.call(t, "PATCH", "/admin/routes/get-patient", bobToken, body); resp.StatusCode != http.StatusPreconditionRequired {
			t.Errorf("without If-Match: got %d, want 428", resp.StatusCode)
		}
		resp, out := p.call(t, "PATCH", "/admin/routes/get-patient", bobToken, body, "If-Match", `"1"`)
		if cur, _ := out["current"].(map[string]any); resp.StatusCode != http.StatusPreconditionFailed || cur == nil || cur["percent"] != 30.0 {
			t.Errorf("from a stale version: got %d %v, want 412 with the route as it is", resp.StatusCode, out)
		}
		if r := p.ramp(t, "get-patient"); r["state"] != "running" {
			t.Errorf("a refused cancel changed the ramp to %v", r["state"])
		}
	})
}

func TestTheRampIsShownWithEveryRoute(t *testing.T) {
	p := newPlane(t)
	p.atZero(t)
	p.startRamp(t, "get-patient", `{"steps": [1, 5], "every": "90m", "mode": "fallback"}`)
	_, body := p.call(t, "GET", "/admin/routes", veraToken, "")
	raw, _ := json.Marshal(body["routes"])
	var routes []RouteJSON
	if err := json.Unmarshal(raw, &routes); err != nil {
		t.Fatal(err)
	}
	if len(routes) != 2 || routes[0].Ramp == nil || routes[1].Ramp != nil {
		t.Fatalf("got %+v, want get-patient's ramp and none on create-patient", routes)
	}
	r := routes[0].Ramp
	if want := p.clock.Now(); r.State != "running" || r.Every != "1h30m" || !slices.Equal(r.Steps, []float64{1, 5}) ||
		r.NextAt == nil || !r.NextAt.Equal(want) || r.Reason != "ticket 7" {
		t.Errorf("got %+v, want the running ramp, every 1h30m, first step due now", r)
	}
}
