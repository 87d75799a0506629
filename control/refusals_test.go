package control

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/store"
)

// TestAdminAPIRefusesAmbiguousChanges: a change whose meaning is unclear
// (no version, a key twice, two bodies, an endless reason) is refused with
// 400 or 428 and changes nothing.
func TestAdminAPIRefusesAmbiguousChanges(t *testing.T) {
	p := newPlane(t)
	const path = "/admin/routes/get-patient"
	for _, tc := range []struct {
		name, body, ifMatch string
		status              int
		says                string
	}{
		{"a flip without If-Match", `{"mode":"modern","reason":"go"}`, "", 428, "If-Match is required"},
		{"a flip with If-Match: *", `{"mode":"modern","reason":"go"}`, "*", 400, "If-Match must be the route's ETag"},
		{"a flip with a list of ETags", `{"mode":"modern","reason":"go"}`, `"0", "1"`, 400, "If-Match must be the route's ETag, one"},
		{"a body with a key twice", `{"mode":"modern","reason":"go","mode":"legacy"}`, `"0"`, 400, `the key "mode" appears twice`},
		{"a body with a key twice in two spellings", `{"mode":"modern","reason":"go","MODE":"legacy"}`, `"0"`, 400, `the key "MODE" appears twice`},
		{"a body with a key twice in a nested object", `{"mode":"modern","reason":"go","x":[{"a":1,"a":2}]}`, `"0"`, 400, `the key "a" appears twice`},
		{"a body of two JSON values", `{"mode":"modern","reason":"go"} {"mode":"legacy","reason":"go"}`, `"0"`, 400, "more follows the first JSON value"},
		{"a reason of 501 characters", `{"mode":"modern","reason":"` + strings.Repeat("é", 501) + `"}`, `"0"`, 400, "the reason is 501 characters long; at most 500"},
		{"a reason of only spaces", `{"mode":"modern","reason":"   "}`, `"0"`, 400, "a reason is required"},
		{"a reason of only zero-width characters, which lists as none", `{"mode":"modern","reason":"\u200b\ufeff\u200d \u034f"}`, `"0"`, 400, "a reason is required"},
		{"a reason with half a surrogate pair, which would be stored as U+FFFD", `{"mode":"modern","reason":"ok \ud83d"}`, `"0"`, 400, `the escape \ud83d at byte 31 is half of a UTF-16 surrogate pair`},
		{"a reason with a low surrogate alone", `{"mode":"modern","reason":"\\\udc00"}`, `"0"`, 400, `the escape \udc00`},
		{"a reason with a high surrogate before another escape", `{"mode":"modern","reason":"\ud83d\u0041"}`, `"0"`, 400, `the escape \ud83d`},
		{"a key with half a surrogate pair", `{"mode":"modern","reason":"go","\udfff":1}`, `"0"`, 400, `the escape \udfff`},
		{"a reason with a newline that would read as another entry", `{"mode":"modern","reason":"ok\n2026-11-01T12:00:00Z  alice  flip  get-patient  modern"}`, `"0"`, 400, "control character"},
		{"a reason with a terminal escape", `{"mode":"modern","reason":"ok \u001b[2J"}`, `"0"`, 400, "control character"},
		{"a reason with a carriage return", `{"mode":"modern","reason":"ok\rforged"}`, `"0"`, 400, "control character"},
		{"a reason that is not UTF-8", "{\"mode\":\"modern\",\"reason\":\"ok \xff\xfe\"}", `"0"`, 400, "not valid UTF-8"},
		{"a key that is not UTF-8", "{\"mode\":\"modern\",\"reason\":\"ok\",\"\xc0\":1}", `"0"`, 400, "not valid UTF-8"},
		{"a key in other cases", `{"Mode":"modern","reason":"go"}`, `"0"`, 400, `the key "Mode" is spelled "mode"`},
		{"a key with the long s for s", "{\"mode\":\"modern\",\"rea\u017fon\":\"go\"}", `"0"`, 400, `is spelled "reason"`},
		{"a key in other cases in a nested object", `{"ramp":{"Action":"pause"},"reason":"go"}`, `"0"`, 400, `the key "Action" is spelled "action"`},
		{"a reason that reverses the text after it", `{"mode":"modern","reason":"ok \u202egnp.exe"}`, `"0"`, 400, "bidirectional"},
		{"a reason with a line separator that splitlines takes as a newline", `{"mode":"modern","reason":"ok\u20282026-11-01T12:00:00Z  alice  flip"}`, `"0"`, 400, "line or paragraph separator"},
		{"a reason with a paragraph separator", `{"mode":"modern","reason":"ok\u2029forged"}`, `"0"`, 400, "line or paragraph separator"},
		{"a clear with a mode it would drop", `{"clear":true,"mode":"modern","reason":"go"}`, `"0"`, 400, "takes no mode or percent"},
		{"a clear with a percent it would drop", `{"clear":true,"percent":5,"reason":"go"}`, `"0"`, 400, "takes no mode or percent"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			var header []string
			if tc.ifMatch != "" {
				header = []string{"If-Match", tc.ifMatch}
			}
			resp, body := p.call(t, "PATCH", path, aliceToken, tc.body, header...)
			if msg, _ := body["error"].(string); resp.StatusCode != tc.status || !strings.Contains(msg, tc.says) {
				t.Errorf("got %d %q, want %d saying %q", resp.StatusCode, msg, tc.status, tc.says)
			}
		})
	}
	t.Run("a flip with an ETag on each of two lines is refused", func(t *testing.T) {
		req, err := http.NewRequest("PATCH", p.URL+path, strings.NewReader(`{"mode":"modern","reason":"go"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+aliceToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header["If-Match"] = []string{`"0"`, `"1"`}
		resp, err := p.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("got %d, want 400: the change was decided on one of two versions", resp.StatusCode)
		}
	})
	if p.mode("get-patient") != domain.ModeFallback {
		t.Errorf("a refused change moved the route to %s", p.mode("get-patient"))
	}
	t.Run("a reason with a whole surrogate pair and an escaped backslash is taken as sent", func(t *testing.T) {
		body := `{"mode":"fallback","percent":50,"reason":"ok \ud83d\ude00 \\ud800"}`
		if resp, out := p.call(t, "PATCH", path, aliceToken, body, "If-Match", `"0"`); resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d %v, want 200", resp.StatusCode, out)
		}
		entries, err := p.store.AuditLog(t.Context(), store.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := entries[0].Reason, "ok \U0001F600 \\ud800"; got != want {
			t.Errorf("the audit log holds the reason %q, want %q", got, want)
		}
	})
	t.Run("a reason of 500 characters is enough", func(t *testing.T) {
		body := `{"mode":"fallback","percent":40,"reason":"` + strings.Repeat("é", 500) + `"}`
		if resp, out := p.call(t, "PATCH", path, aliceToken, body, "If-Match", `"1"`); resp.StatusCode != http.StatusOK {
			t.Errorf("got %d %v, want 200", resp.StatusCode, out)
		}
	})
	t.Run("a reason of punctuation or symbols alone is one", func(t *testing.T) {
		for i, reason := range []string{"!!", "\u2713"} { // ✓
			body := fmt.Sprintf(`{"mode":"fallback","percent":%d,"reason":"%s"}`, 30-i, reason)
			if resp, out := p.call(t, "PATCH", path, aliceToken, body, "If-Match", fmt.Sprintf(`"%d"`, 2+i)); resp.StatusCode != http.StatusOK {
				t.Errorf("reason %s: got %d %v, want 200", reason, resp.StatusCode, out)
			}
		}
	})
}

// TestRefusedChangesAreAudited: each refusal that says something about who
// tried a change (401, 403, 409, 412, 428) leaves a denied entry naming
// them and why, and never the token; malformed requests and made-up
// routes leave none.
func TestRefusedChangesAreAudited(t *testing.T) {
	p := newPlane(t)
	ctx := context.Background()
	in := domain.Intent{ID: "w-1", Route: "create-patient", Resource: "/patients", Method: "POST", Target: "/patients", Primary: "legacy"}
	if err := p.store.BeginWrite(ctx, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := p.store.RecordOutcome(ctx, in.ID, domain.Outcome{Status: 201}); err != nil {
		t.Fatal(err)
	}
	const wrongToken = "not-the-token-0123456789"
	flip := `{"mode":"modern","reason":"go"}`
	for _, tc := range []struct {
		name, method, path, token, body string
		header                          []string
		status                          int
		// audit is "actor route (status)", or "" for no entry.
		audit string
	}{
		{"a change with a wrong token", "PATCH", "/admin/routes/get-patient", wrongToken, flip, []string{"If-Match", `"0"`}, 401, "unauthenticated get-patient (401)"},
		{"a change from another site", "PATCH", "/admin/routes/get-patient", aliceToken, flip, []string{"If-Match", `"0"`, "Origin", "https://evil.example"}, 403, "alice get-patient (403)"},
		{"a change without If-Match", "PATCH", "/admin/routes/get-patient", aliceToken, flip, nil, 428, "alice get-patient (428)"},
		{"a change of an older version", "PATCH", "/admin/routes/get-patient", bobToken, flip, []string{"If-Match", `"7"`}, 412, "bob get-patient (412)"},
		{"a retry of a repair that is not dead", "POST", "/admin/repairs/w-1/retry", aliceToken, `{"reason":"again"}`, nil, 409, "alice create-patient (409)"},
		{"a discard with a wrong token", "DELETE", "/admin/repairs/w-1", wrongToken, `{"reason":"x"}`, nil, 401, "unauthenticated create-patient (401)"},
		{"a change of a made-up route", "PATCH", "/admin/routes/no-such-route", wrongToken, flip, nil, 401, ""},
		{"a change of a made-up repair", "POST", "/admin/repairs/no-such-id/retry", wrongToken, `{"reason":"x"}`, nil, 401, ""},
		{"a malformed change", "PATCH", "/admin/routes/get-patient", aliceToken, `{"mode":`, []string{"If-Match", `"0"`}, 400, ""},
		{"a change that is not JSON", "PATCH", "/admin/routes/get-patient", aliceToken, "", []string{"Content-Type", "text/plain"}, 415, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(p.auditActions(t))
			resp, body := p.call(t, tc.method, tc.path, tc.token, tc.body, tc.header...)
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d %v, want %d", resp.StatusCode, body, tc.status)
			}
			entries, err := p.store.AuditLog(ctx, store.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			switch added := len(entries) - before; {
			case tc.audit == "" && added != 0:
				t.Errorf("%d audit entries added, want none: %+v", added, entries[0])
			case tc.audit != "" && added != 1:
				// An action on a repair is audited with its move, in one
				// transaction: a refused one leaves only its refusal.
				t.Errorf("%d audit entries added, want 1", added)
			case tc.audit != "":
				e := entries[0]
				actor, route, _ := strings.Cut(tc.audit, " ")
				route, status, _ := strings.Cut(route, " ")
				if e.Action != "denied" || e.Actor != actor || e.Route != route || !strings.Contains(e.Detail, tc.method+" "+tc.path+" refused "+status) {
					t.Errorf("audit entry %+v, want %s denied on %s with %q in its detail", e, actor, route, tc.method+" "+tc.path+" refused "+status)
				}
			}
		})
	}
	entries, err := p.store.AuditLog(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		for _, secret := range []string{aliceToken, bobToken, wrongToken} {
			if strings.Contains(e.Detail+e.Reason+e.Actor, secret) {
				t.Errorf("audit entry %+v holds a token", e)
			}
		}
	}
}

// TestStatusPageRefusalsAreAuditedLikeTheAPIs: the page's own If-Match
// (the form's version) is required and checked, and refusals are audited.
func TestStatusPageRefusalsAreAuditedLikeTheAPIs(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	_, csrf := h.page(t)
	for _, tc := range []struct {
		name   string
		form   url.Values
		flash  string
		detail string
	}{
		{"a form without the route's version", flipForm(csrf, "", "modern", "go"), "the form has no route version", "(428)"},
		{"a form of an older version", flipForm(csrf, "3", "modern", "go"), "someone else changed it", "(412)"},
		{"a form with a reason of 501 characters", flipForm(csrf, "0", "modern", strings.Repeat("x", 501)), "the reason is 501 characters long", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.auditEntries(t))
			h.send(t, "POST", "/ui/routes/get-patient", tc.form, "Origin", h.URL)
			body, _ := h.page(t)
			if got := flashOf(body); !strings.Contains(got, "get-patient was not changed: ") || !strings.Contains(got, tc.flash) {
				t.Errorf("flash %q, want it to say %q", got, tc.flash)
			}
			entries := h.auditEntries(t)
			switch {
			case tc.detail == "" && len(entries) != before:
				t.Errorf("audited %+v, want nothing", entries[0])
			case tc.detail != "" && (len(entries) != before+1 || entries[0].Action != "denied" || entries[0].Actor != "ops-alice" ||
				!strings.Contains(entries[0].Detail, tc.detail)):
				t.Errorf("audit log %+v, want a denied entry by ops-alice with %s", entries, tc.detail)
			}
		})
	}
	if rf, _ := h.flags.Get("get-patient"); rf.Override != nil {
		t.Errorf("a refused form flipped get-patient to %s", rf.Mode)
	}
}

// TestEveryBodyIsReadStrictly sends each endpoint that takes a body the
// same malformed ones: each is refused with 400 before it takes effect,
// through the one decode every endpoint shares.
func TestEveryBodyIsReadStrictly(t *testing.T) {
	p := newPlane(t)
	for _, ep := range []struct{ method, path string }{
		{"PATCH", "/admin/routes/get-patient"},
		{"POST", "/admin/routes/get-patient/force-token"},
		{"POST", "/admin/repairs/w-1/retry"},
		{"POST", "/admin/repairs/w-1/stop"},
		{"DELETE", "/admin/repairs/w-1"},
		{"POST", "/admin/changes/1/approve"},
		{"POST", "/admin/changes/1/reject"},
	} {
		for _, tc := range []struct{ name, body, says string }{
			{"not UTF-8", "{\"reason\":\"ok \xff\"}", "not valid UTF-8"},
			{"a key twice", `{"reason":"a","reason":"b"}`, "appears twice"},
			{"an unknown key", `{"reason":"a","bogus":1}`, "unknown field"},
			{"two values", `{"reason":"a"} {}`, "more follows"},
			{"a key in other cases", `{"REASON":"a"}`, `is spelled "reason"`},
		} {
			t.Run(ep.method+" "+ep.path+" "+tc.name, func(t *testing.T) {
				resp, body := p.call(t, ep.method, ep.path, aliceToken, tc.body, "If-Match", `"0"`)
				if resp.StatusCode == http.StatusServiceUnavailable {
					t.Skip("not available on this admin listener")
				}
				if msg, _ := body["error"].(string); resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, tc.says) {
					t.Errorf("got %d %q, want 400 saying %q", resp.StatusCode, msg, tc.says)
				}
			})
		}
	}
	if p.mode("get-patient") != domain.ModeFallback {
		t.Errorf("a refused change moved the route to %s", p.mode("get-patient"))
	}
}
