package control

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"strangler/domain"
)

// TestAFlipThatChangesNothingIsAnsweredNotRecorded: a flip to the mode
// and share a route already has is answered 200 with the route as it is
// and "unchanged": true; it writes no audit entry, keeps the version
// (ETag) and tells no replica anything. Before, each such flip was
// audited as a change from X to X and bumped the version, so a second
// engineer's If-Match went stale over nothing. A flip of a route the
// guard holds to its mode is a change: it releases the hold.
func TestAFlipThatChangesNothingIsAnsweredNotRecorded(t *testing.T) {
	p := newPlane(t)
	flip := func(route, body string, version int64) (*http.Response, map[string]any) {
		t.Helper()
		return p.call(t, "PATCH", "/admin/routes/"+route, aliceToken, body, "If-Match", fmt.Sprintf(`"%d"`, version))
	}
	if resp, body := flip("get-patient", `{"mode":"modern","percent":25,"reason":"ticket 1"}`, 0); resp.StatusCode != 200 {
		t.Fatalf("a real flip: %d %v", resp.StatusCode, body)
	}
	before := len(p.auditActions(t))
	for _, tc := range []struct {
		name, route, body string
		version           int64
	}{
		{"the same mode and percent", "get-patient", `{"mode":"modern","percent":25,"reason":"again"}`, 1},
		{"the same percent alone", "get-patient", `{"percent":25,"reason":"again"}`, 1},
		{"the same percent, spelled otherwise", "get-patient", `{"percent":25.00,"reason":"again"}`, 1},
		{"the file's mode of a route without an override", "create-patient", `{"mode":"legacy","reason":"again"}`, 0},
		// Before, 400 "has no override to clear": a script clearing
		// routes failed on its second run.
		{"a clear of a route without an override", "create-patient", `{"clear":true,"reason":"again"}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := flip(tc.route, tc.body, tc.version)
			if resp.StatusCode != 200 || body["unchanged"] != true {
				t.Errorf("got %d %v, want 200 with unchanged", resp.StatusCode, body)
			}
			if got, want := resp.Header.Get("ETag"), fmt.Sprintf(`"%d"`, tc.version); got != want {
				t.Errorf("ETag %s, want %s: the version moved", got, want)
			}
			if got := len(p.auditActions(t)); got != before {
				t.Errorf("%d audit entries, want %d: %v", got, before, p.auditActions(t)[0])
			}
		})
	}
	t.Run("all of the traffic, with or without a percent", func(t *testing.T) {
		if resp, body := flip("get-patient", `{"mode":"fallback","reason":"ticket 2"}`, 1); resp.StatusCode != 200 || body["unchanged"] != nil {
			t.Fatalf("a real flip: %d %v", resp.StatusCode, body)
		}
		before = len(p.auditActions(t))
		if resp, body := flip("get-patient", `{"percent":100,"reason":"again"}`, 2); resp.StatusCode != 200 || body["unchanged"] != true {
			t.Errorf("got %d %v, want 200 with unchanged", resp.StatusCode, body)
		}
		if got := len(p.auditActions(t)); got != before {
			t.Errorf("%d audit entries, want %d", got, before)
		}
	})
	t.Run("a changed share is a change", func(t *testing.T) {
		resp, body := flip("get-patient", `{"mode":"fallback","percent":99.99,"reason":"ticket 3"}`, 2)
		if resp.StatusCode != 200 || body["unchanged"] != nil || resp.Header.Get("ETag") != `"3"` {
			t.Errorf("got %d %v ETag %s, want a change to version 3", resp.StatusCode, body, resp.Header.Get("ETag"))
		}
	})
	t.Run("clearing an override that repeats the file's mode is a change", func(t *testing.T) {
		for i, body := range []string{`{"mode":"shadow","reason":"ticket 4"}`, `{"mode":"legacy","reason":"ticket 5"}`} {
			if resp, got := flip("create-patient", body, int64(i)); resp.StatusCode != 200 || got["unchanged"] != nil {
				t.Fatalf("a real flip: %d %v", resp.StatusCode, got)
			}
		}
		resp, body := flip("create-patient", `{"clear":true,"reason":"back to the file"}`, 2)
		if resp.StatusCode != 200 || body["unchanged"] != nil || body["override"] != nil {
			t.Errorf("got %d %v, want the override cleared", resp.StatusCode, body)
		}
		if got := p.auditActions(t)[0]; got != "alice clear create-patient" {
			t.Errorf("latest audit entry %q, want alice's clear", got)
		}
	})
	t.Run("the guard's hold is released by a flip to the mode it holds", func(t *testing.T) {
		mode, version := domain.ModeLegacy, int64(3)
		if _, err := p.flags.Apply(context.Background(), Flip{
			Route: "get-patient", Actor: guardActor, Reason: "modern error rate 40% passed the guard's 5%",
			Mode: &mode, Force: true, IfMatch: &version, action: "rollback",
		}); err != nil {
			t.Fatal(err)
		}
		resp, body := flip("get-patient", `{"mode":"legacy","reason":"looked at it"}`, 4)
		if resp.StatusCode != 200 || body["unchanged"] != nil || body["held"] != nil {
			t.Errorf("got %d %v, want the hold released", resp.StatusCode, body)
		}
		if got := p.auditActions(t)[0]; got != "alice flip get-patient" {
			t.Errorf("latest audit entry %q, want alice's flip", got)
		}
	})
}

// TestTheStatusPageSaysAFlipChangedNothingByTheSameRule: the page's flip
// form follows the API's rule. A flip to what the route is says so as an
// outcome, not a refusal; a flip of a route the guard holds to the mode
// it holds is a change that releases the hold (before, the page refused
// it as "already legacy": the hold could only be cleared).
func TestTheStatusPageSaysAFlipChangedNothingByTheSameRule(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	_, csrf := h.page(t)
	resp, _ := h.send(t, "POST", "/ui/routes/get-patient", flipForm(csrf, "0", "fallback", "again"), "Sec-Fetch-Site", "same-origin")
	msg, page := h.flash(t, resp)
	if want := "get-patient is already fallback; nothing was changed."; msg != want || !strings.Contains(page, `class="flash ok"`) {
		t.Errorf("the page says %q, want %q as an outcome, not an error", msg, want)
	}

	mode, version := domain.ModeLegacy, int64(0)
	if _, err := h.flags.Apply(context.Background(), Flip{
		Route: "get-patient", Actor: guardActor, Reason: "modern error rate 40% passed the guard's 5%",
		Mode: &mode, Force: true, IfMatch: &version, action: "rollback",
	}); err != nil {
		t.Fatal(err)
	}
	_, csrf = h.page(t)
	resp, _ = h.send(t, "POST", "/ui/routes/get-patient", flipForm(csrf, "1", "legacy", "looked at it; stay on legacy"), "Sec-Fetch-Site", "same-origin")
	if msg, _ := h.flash(t, resp); msg != "get-patient is now legacy (was legacy). Audited as ops-alice." {
		t.Errorf("the page says %q, want the flip that releases the hold", msg)
	}
	if rf, _ := h.flags.Get("get-patient"); rf.Hold() != nil {
		t.Errorf("the guard still holds get-patient: %+v", rf.Hold())
	}
}
