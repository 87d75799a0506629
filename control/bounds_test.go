package control

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"strangler/domain"
)

// boundRoutes gate and guard get-patient at 7%: as floats, 7 of 100 is
// 7.000000000000001%.
const boundRoutes = `
routes:
  - name: get-patient
    match: "GET /patients/{id}"
    mode: fallback
    gates: { max_fallback_rate: 7%, max_mismatch_rate: 2.9% }
    guard: { max_error_rate: 7%, window: 1m, min_requests: 20 }
`

// TestARateAtItsGateOrGuardPassesWhateverItsDigits: a gate refuses a
// rate above it and the guard rolls back past its bound; a rate at the
// bound passes. Judged as floats, 7 fallbacks of 100 were above a 7%
// gate ("the fallback rate 7% is above the gate's 7%"), 29 mismatches of
// 1000 above 2.9%, and 7 errors of 100 tripped a 7% guard.
func TestARateAtItsGateOrGuardPassesWhateverItsDigits(t *testing.T) {
	t.Run("a flip past a fallback rate at its gate", func(t *testing.T) {
		p := newPlaneWith(t, planeOptions{routes: boundRoutes})
		r := p.counters.Route("get-patient")
		for i := range 100 {
			if i < 7 {
				r.Fallback(p.clock.Now())
			} else {
				r.Request(p.clock.Now(), "modern", &http.Request{Header: http.Header{}})
			}
		}
		if resp, body := p.call(t, "PATCH", "/admin/routes/get-patient", bobToken, `{"mode":"modern","reason":"7 of 100"}`, "If-Match", `"0"`); resp.StatusCode != 200 {
			t.Errorf("got %d %v, want 200: 7%% is not above 7%%", resp.StatusCode, body)
		}
	})
	t.Run("the gates judged for the report", func(t *testing.T) {
		p := newPlaneWith(t, planeOptions{routes: boundRoutes})
		rf, _ := p.flags.Get("get-patient")
		checks := gateChecks(rf.Route.Gates, domain.Share{N: 29, Of: 1000}, domain.Share{N: 7, Of: 100})
		for _, c := range checks {
			if !c.Passes {
				t.Errorf("%s at %v%%: refused, want passing at its bound", c.Gate, c.ValuePercent)
			}
		}
		checks = gateChecks(rf.Route.Gates, domain.Share{N: 30, Of: 1000}, domain.Share{N: 8, Of: 100})
		if len(checks) != 2 || checks[0].Passes || checks[1].Passes || checks[0].ValuePercent != 3 || checks[1].ValuePercent != 8 {
			t.Errorf("past both bounds: got %+v, want both refusing at 3%% and 8%%", checks)
		}
	})
	for _, c := range []struct {
		failed   int
		rollback bool
	}{{7, false}, {8, true}} {
		t.Run("the guard with "+map[bool]string{false: "7 of 100 failing", true: "8 of 100 failing"}[c.rollback], func(t *testing.T) {
			p := newPlaneWith(t, planeOptions{routes: boundRoutes})
			guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
			p.flip(t, "get-patient", domain.ModeModern, nil)
			p.modernFails("get-patient", c.failed)
			p.modernAnswers("get-patient", 100-c.failed)
			guard.Check(context.Background())
			rollbacks := p.rollbacks(t, "get-patient")
			if got := len(rollbacks) == 1; got != c.rollback {
				t.Errorf("rolled back: %v, want %v", got, c.rollback)
			}
			if c.rollback && !strings.Contains(rollbacks[0].Reason, "modern error rate 8% (8 of 100)") {
				t.Errorf("reason %q, want the rate as 8%%", rollbacks[0].Reason)
			}
		})
	}
}
