package control

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/store"
)

func TestAdminAPIRefusesWhatItShould(t *testing.T) {
	p := newPlane(t)
	flip := `{"mode":"modern","reason":"go"}`
	for _, tc := range []struct {
		name, method, path, token, body string
		header                          []string
		status                          int
	}{
		{"no token", "GET", "/admin/routes", "", "", nil, 401},
		{"a wrong token", "GET", "/admin/routes", "not-a-token-0123456789", "", nil, 401},
		{"a token in the query string", "GET", "/admin/routes?token=" + aliceToken, "", "", nil, 400},
		{"a GET on a path that mutates", "GET", "/admin/repairs/x/retry", aliceToken, "", nil, 405},
		{"a form post instead of JSON", "PATCH", "/admin/routes/get-patient", aliceToken, "", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"a cross-origin browser request", "PATCH", "/admin/routes/get-patient", aliceToken, flip, []string{"Origin", "https://evil.example"}, 403},
		{"a cross-site fetch that changes something", "DELETE", "/admin/repairs/x", aliceToken, `{"reason":"x"}`, []string{"Sec-Fetch-Site", "cross-site"}, 403},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			resp, body := p.call(t, tc.method, tc.path, tc.token, tc.body, tc.header...)
			if resp.StatusCode != tc.status {
				t.Errorf("got %d %v, want %d", resp.StatusCode, body, tc.status)
			}
			if body["error"] == nil {
				t.Errorf("no JSON error in %v", body)
			}
		})
	}
	if p.mode("get-patient") != domain.ModeFallback {
		t.Errorf("a refused request changed the route to %s", p.mode("get-patient"))
	}
	t.Run("a change with a bad token is audited as denied", func(t *testing.T) {
		p.call(t, "PATCH", "/admin/routes/get-patient", "wrong-token-0123456789", flip)
		if got := p.auditActions(t); !slices.Contains(got, "unauthenticated denied get-patient") {
			t.Errorf("audit log %q lacks the denied change", got)
		}
	})
	t.Run("wrong tokens ration one address's checks but never refuse a checked valid token", func(t *testing.T) {
		const guess = "guess-0123456789abcdef"
		p.clock.Advance(failureWindow + time.Second) // forget the wrong tokens above
		for range maxFailures {
			p.call(t, "GET", "/admin/routes", guess, "")
		}
		if resp, _ := p.call(t, "GET", "/admin/routes", aliceToken, ""); resp.StatusCode != 200 {
			t.Errorf("after %d failures from alice's address her token got %d, want 200", maxFailures, resp.StatusCode)
		}
		resp, body := p.call(t, "GET", "/admin/routes", guess, "")
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" || body["error"] == nil {
			t.Errorf("a guess within %v of the last check: got %d Retry-After %q %v, want 429 unchecked, Retry-After 2",
				lockedCheckEvery, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if resp, _ := p.call(t, "GET", "/admin/routes", aliceToken, ""); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("alice within the ration: got %d, want 429 (her token not compared)", resp.StatusCode)
		}
		p.clock.Advance(lockedCheckEvery)
		if resp, _ := p.call(t, "GET", "/admin/routes", guess, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a guess once the ration allows: got %d, want 401 (compared, wrong)", resp.StatusCode)
		}
		p.clock.Advance(failureWindow + time.Second)
		for range 3 {
			if resp, _ := p.call(t, "GET", "/admin/routes", aliceToken, ""); resp.StatusCode != 200 {
				t.Errorf("after the window a good token got %d, want 200", resp.StatusCode)
			}
		}
	})
}

func TestFlipsAreAuditedAndVersioned(t *testing.T) {
	p := newPlane(t)
	resp, body := p.call(t, "PATCH", "/admin/routes/create-patient", aliceToken, `{"mode":"dual-write","reason":"start copying writes"}`, "If-Match", `"0"`)
	if resp.StatusCode != 200 || body["mode"] != "dual-write" {
		t.Fatalf("flip got %d %v", resp.StatusCode, body)
	}
	if got := resp.Header.Get("ETag"); got != `"1"` {
		t.Errorf("ETag = %s, want \"1\"", got)
	}
	if p.mode("create-patient") != domain.ModeDualWrite {
		t.Errorf("the router still serves %s", p.mode("create-patient"))
	}
	entries, _ := p.store.AuditLog(context.Background(), store.AuditFilter{Route: "create-patient"})
	if len(entries) != 1 || entries[0].Actor != "alice" || entries[0].Reason != "start copying writes" ||
		entries[0].FromMode != "legacy" || entries[0].ToMode != "dual-write" {
		t.Errorf("audit = %+v", entries)
	}

	t.Run("a stale If-Match is refused with 412 and the route as it is", func(t *testing.T) {
		resp, body := p.call(t, "PATCH", "/admin/routes/create-patient", bobToken, `{"mode":"modern","reason":"late"}`, "If-Match", `"0"`)
		if resp.StatusCode != http.StatusPreconditionFailed {
			t.Errorf("got %d %v, want 412", resp.StatusCode, body)
		}
		if cur, _ := body["current"].(map[string]any); cur["mode"] != "dual-write" || resp.Header.Get("ETag") != `"1"` {
			t.Errorf("got current %v with ETag %s, want the route in dual-write at version 1", body["current"], resp.Header.Get("ETag"))
		}
		if p.mode("create-patient") != domain.ModeDualWrite {
			t.Errorf("a stale flip changed the route")
		}
	})
	t.Run("a flip without a reason is refused", func(t *testing.T) {
		if resp, _ := p.call(t, "PATCH", "/admin/routes/create-patient", bobToken, `{"mode":"modern"}`, "If-Match", `"1"`); resp.StatusCode != 400 {
			t.Errorf("got %d, want 400", resp.StatusCode)
		}
	})
	t.Run("clearing brings the file's mode back", func(t *testing.T) {
		resp, body := p.call(t, "PATCH", "/admin/routes/create-patient", bobToken, `{"clear":true,"reason":"back to the file"}`, "If-Match", `"1"`)
		if resp.StatusCode != 200 || body["mode"] != "legacy" || body["override"] != nil {
			t.Errorf("got %d %v", resp.StatusCode, body)
		}
		if got := p.auditActions(t)[0]; got != "bob clear create-patient" {
			t.Errorf("latest audit entry %q", got)
		}
	})
}

func TestGatesRefuseNamingTheNumber(t *testing.T) {
	p := newPlane(t)
	r := p.counters.Route("get-patient")
	for i := range 100 {
		if i < 30 {
			r.Fallback(p.clock.Now())
		} else {
			r.Request(p.clock.Now(), "modern", &http.Request{Header: http.Header{}})
		}
	}
	resp, body := p.call(t, "PATCH", "/admin/routes/get-patient", aliceToken, `{"mode":"modern","reason":"ready?"}`, "If-Match", `"0"`)
	msg, _ := body["error"].(string)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(msg, "fallback rate 30% is above the gate's 1%") {
		t.Fatalf("got %d %q, want 422 naming the fallback rate", resp.StatusCode, msg)
	}
	if p.mode("get-patient") != domain.ModeFallback {
		t.Errorf("a refused flip changed the route")
	}
	if got := p.auditActions(t)[0]; got != "alice denied get-patient" {
		t.Errorf("latest audit entry %q, want the denial", got)
	}
	t.Run("force flips anyway and is audited as forced", func(t *testing.T) {
		resp, _ := p.call(t, "PATCH", "/admin/routes/get-patient", aliceToken, `{"mode":"modern","reason":"accept the risk","force":true}`, "If-Match", `"0"`)
		if resp.StatusCode != 200 || p.mode("get-patient") != domain.ModeModern {
			t.Fatalf("forced flip got %d, route %s", resp.StatusCode, p.mode("get-patient"))
		}
		entries, _ := p.store.AuditLog(context.Background(), store.AuditFilter{Route: "get-patient", Limit: 1})
		if !entries[0].Forced {
			t.Errorf("the forced flip is not audited as forced: %+v", entries[0])
		}
	})
	t.Run("a flip back to an earlier stage passes the gates", func(t *testing.T) {
		if resp, body := p.call(t, "PATCH", "/admin/routes/get-patient", aliceToken, `{"mode":"fallback","reason":"back"}`, "If-Match", `"1"`); resp.StatusCode != 200 {
			t.Errorf("got %d %v", resp.StatusCode, body)
		}
	})
}

func TestAFlipThatCannotBeAuditedIsRefused(t *testing.T) {
	p := newPlane(t)
	p.store.Close()
	resp, body := p.call(t, "PATCH", "/admin/routes/create-patient", aliceToken, `{"mode":"modern","reason":"x","force":true}`, "If-Match", `"0"`)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("got %d %v, want 503", resp.StatusCode, body)
	}
	if p.mode("create-patient") != domain.ModeLegacy {
		t.Errorf("the route changed without an audit entry")
	}
}

func TestGuardRollsBackWhenModernFails(t *testing.T) {
	p := newPlane(t)
	guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
	ctx := context.Background()
	mode := domain.ModeModern
	if _, err := p.flags.Apply(ctx, Flip{Route: "get-patient", Actor: "alice", Reason: "go", Mode: &mode, Force: true}); err != nil {
		t.Fatal(err)
	}
	r := p.counters.Route("get-patient")
	for i := range 19 {
		r.Modern(p.clock.Now(), i < 10)
	}
	guard.Check(ctx)
	if p.mode("get-patient") != domain.ModeModern {
		t.Fatalf("the guard acted on %d requests, below min_requests", 19)
	}
	for range 20 {
		r.Modern(p.clock.Now(), false)
	}
	guard.Check(ctx)
	if p.mode("get-patient") != domain.ModeFallback {
		t.Fatalf("after 10 errors in 39 (25.6%%) the route is %s, want rolled back to fallback", p.mode("get-patient"))
	}
	entries, _ := p.store.AuditLog(ctx, store.AuditFilter{Route: "get-patient", Limit: 1})
	e := entries[0]
	if e.Actor != "guard" || e.Action != "rollback" || e.FromMode != "modern" || e.ToMode != "fallback" || !strings.Contains(e.Reason, "25.6% (10 of 39)") {
		t.Errorf("audit entry %+v", e)
	}
	if got := testutilCounter(t, p, "strangler_guard_rollbacks_total"); got != 1 {
		t.Errorf("strangler_guard_rollbacks_total = %v, want 1", got)
	}
}

func testutilCounter(t *testing.T, p *plane, name string) float64 {
	t.Helper()
	families, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			total := 0.0
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
			return total
		}
	}
	return 0
}

func TestRetirementVerdict(t *testing.T) {
	p := newPlane(t)
	ctx := context.Background()
	r := p.counters.Route("get-patient")
	req := &http.Request{Header: http.Header{"X-App-Version": {"ios/4.1"}}}
	r.Fallback(p.clock.Now())
	r.Request(p.clock.Now(), "legacy", req)
	for range 150 {
		r.Request(p.clock.Now(), "modern", req)
	}
	if err := p.counters.Flush(ctx, p.store, p.clock.Now()); err != nil {
		t.Fatal(err)
	}
	report := func() RouteReport {
		t.Helper()
		rf, _ := p.flags.Get("get-patient")
		rep, err := p.reports.Route(ctx, rf, p.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := report()
	if rep.Retirable || !strings.Contains(rep.Verdict, "1 fallbacks in the last 7d") {
		t.Errorf("with a fallback today: retirable %v, %q", rep.Retirable, rep.Verdict)
	}
	if len(rep.LegacyClients) != 1 || rep.LegacyClients[0].Client != "ios/4.1" {
		t.Errorf("legacy clients %+v", rep.LegacyClients)
	}
	p.clock.Advance(8 * 24 * time.Hour)
	for range 120 {
		r.Request(p.clock.Now(), "modern", req)
	}
	if err := p.counters.Flush(ctx, p.store, p.clock.Now()); err != nil {
		t.Fatal(err)
	}
	rep = report()
	if !rep.Retirable {
		t.Errorf("8 days after the last fallback with 120 modern requests: %q, want retirable", rep.Verdict)
	}
	if rep.LastFallback == nil || rep.Periods[2].Fallbacks != 1 {
		t.Errorf("the 30d period lost the old fallback: %+v", rep.Periods)
	}

	t.Run("the counts survive a restart", func(t *testing.T) {
		p.store.Close()
		st, err := store.Open(ctx, p.dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		rf, _ := p.flags.Get("get-patient")
		rep, err := (&Reports{Counts: st}).Route(ctx, rf, p.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Periods[2]; got.Requests != 271 || got.Modern != 270 || got.Fallbacks != 1 {
			t.Errorf("after reopening the store the 30d counts are %+v, want 271 requests, 270 modern, 1 fallback", got)
		}
	})
}
