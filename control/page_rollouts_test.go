package control

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"strangler/domain"
	"strangler/store"
)

// flash follows a form's redirect and returns the page's flash message
// and the page.
func (h *pageAdmin) flash(t *testing.T, resp *http.Response) (string, string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the form answered %d, want 303 back to the page", resp.StatusCode)
	}
	page, _ := h.page(t)
	m := regexp.MustCompile(`(?s)<p class="flash [a-z]+" role="[a-z]+">(.*?)</p>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page shows no flash:\n%s", page)
	}
	return html.UnescapeString(m[1]), page
}

func rampForm(csrf, version, action string) url.Values {
	return url.Values{
		"csrf": {csrf}, "version": {version}, "action": {action}, "mode": {"fallback"},
		"steps": {"1, 5,25%"}, "every": {"30m"}, "reason": {"ticket 12"}, "confirm": {"yes"},
	}
}

func TestTheStatusPageStartsPausesAndResumesARamp(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageOtherToken) // dev-bob, an operator
	page, csrf := h.page(t)
	for _, want := range []string{`action="/ui/routes/list-photos/ramp"`, `value="1,5,25,50,100"`, ">Start ramp</button>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	t.Run("a ramp form that cannot work changes nothing and says why", func(t *testing.T) {
		for _, tc := range []struct {
			change func(url.Values)
			want   string
		}{
			{func(f url.Values) { f.Set("steps", "1,x") }, `list-photos was not changed: step 2, "x", is not a percent: write the steps like 1,5,25,50,100.`},
			{func(f url.Values) { f.Set("every", "10s") }, "list-photos was not changed: every must be from 1m to 7d"},
			{func(f url.Values) { f.Del("confirm") }, "tick “I understand this changes live traffic” to confirm"},
			{func(f url.Values) { f.Set("reason", " ") }, "a reason is required"},
		} {
			f := rampForm(csrf, "0", "start")
			tc.change(f)
			resp, _ := h.send(t, "POST", "/ui/routes/list-photos/ramp", f, "Origin", h.URL)
			if got, _ := h.flash(t, resp); !strings.Contains(got, tc.want) {
				t.Errorf("flash %q, want %q", got, tc.want)
			}
		}
		if rps, _ := h.store.Ramps(context.Background()); len(rps) != 0 {
			t.Errorf("a refused form started a ramp: %+v", rps)
		}
	})

	resp, _ := h.send(t, "POST", "/ui/routes/list-photos/ramp", rampForm(csrf, "0", "start"), "Origin", h.URL)
	got, page := h.flash(t, resp)
	if want := "list-photos ramps to fallback at 1%, 5%, 25% every 30m; the first step is due now. Audited as dev-bob."; got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	if !strings.Contains(page, "ramp running") || !strings.Contains(page, ">Pause ramp</button>") {
		t.Errorf("the page does not show the running ramp with a pause button")
	}
	h.rollouts.Check(context.Background())
	page, csrf = h.page(t)
	ramp := regexp.MustCompile(`(?s)<div class="ramp-status" id="ramp-list-photos">(.*?)</div>`).FindStringSubmatch(page)
	if ramp == nil || !strings.Contains(ramp[1], "1 of 3 steps taken, running, at fallback at 1%") ||
		!strings.Contains(ramp[1], "next: fallback at 5%, in 30m (13:00 UTC)") || !strings.Contains(ramp[1], "Started by dev-bob") {
		t.Errorf("the ramp after its first step shows %q", ramp)
	}
	rf, _ := h.flags.Get("list-photos")
	resp, _ = h.send(t, "POST", "/ui/routes/list-photos/ramp", url.Values{
		"csrf": {csrf}, "version": {"1"}, "action": {"pause"}, "reason": {"incident 4"},
	}, "Origin", h.URL)
	if got, page := h.flash(t, resp); got != "list-photos's ramp is paused (1 of 3 steps taken, paused). Audited as dev-bob." || !strings.Contains(page, ">Resume ramp</button>") {
		t.Errorf("pausing: flash %q, want it paused, with a resume button", got)
	}
	if rf.Version != 1 {
		t.Errorf("the route's version after the first step: %d, want 1", rf.Version)
	}
}

func TestTheStatusPageApprovesAndRejectsChangeRequests(t *testing.T) {
	h := newPageAdmin(t)
	ctx := context.Background()
	request := func(by, mode string) store.Change {
		t.Helper()
		now := h.clock.Now()
		c, err := h.store.CreateChange(ctx, store.Change{
			Route: "list-photos", Kind: store.ChangeFlip, Mode: domain.Mode(mode), FromMode: "legacy",
			Requester: by, Reason: "shadow photos", Needed: 1, CreatedAt: now, ExpiresAt: now.Add(changeTTL),
		}, domain.AuditEntry{At: now, Actor: by, Action: "change_request", Route: "list-photos"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	request("dev-bob", "shadow")
	h.login(t, pageToken) // ops-alice
	page, csrf := h.page(t)
	row := regexp.MustCompile(`(?s)<tr id="change-1">(.*?)</tr>`).FindStringSubmatch(page)
	if row == nil || !strings.Contains(row[1], "legacy → shadow") || !strings.Contains(row[1], "dev-bob") || !strings.Contains(row[1], ">Approve</button>") {
		t.Fatalf("the change requests table shows %q, want dev-bob's request with an approve button", row)
	}
	if !strings.Contains(page, "change request 1 pending") {
		t.Error("the route row does not say a change request is pending")
	}
	decide := url.Values{"csrf": {csrf}, "action": {"approve"}, "reason": {""}}
	resp, _ := h.send(t, "POST", "/ui/changes/1", decide, "Origin", h.URL)
	if got, _ := h.flash(t, resp); !strings.Contains(got, "Change request 1 was not approved: tick") {
		t.Errorf("an approval without the tick: flash %q", got)
	}
	decide.Set("confirm", "yes")
	resp, _ = h.send(t, "POST", "/ui/changes/1", decide, "Origin", h.URL)
	if got, _ := h.flash(t, resp); got != "Change request 1 is approved and applied: list-photos is now shadow. Audited as dev-bob's, approved by ops-alice." {
		t.Errorf("the approval: flash %q", got)
	}
	if got := h.appliedMode(t, "list-photos"); got != "shadow" {
		t.Errorf("after the approval list-photos is %s, want shadow", got)
	}

	t.Run("one's own request can be withdrawn, not approved", func(t *testing.T) {
		request("ops-alice", "fallback")
		page, csrf := h.page(t)
		row := regexp.MustCompile(`(?s)<tr id="change-2">(.*?)</tr>`).FindStringSubmatch(page)
		if row == nil || strings.Contains(row[1], ">Approve</button>") || !strings.Contains(row[1], "Yours: another token name must approve it.") {
			t.Fatalf("one's own request shows %q, want no approve button", row)
		}
		resp, _ := h.send(t, "POST", "/ui/changes/2", url.Values{"csrf": {csrf}, "action": {"approve"}, "confirm": {"yes"}}, "Origin", h.URL)
		if got, _ := h.flash(t, resp); got != "Change request 2: ops-alice requested change request 2: another token name must approve it (four eyes)." {
			t.Errorf("approving one's own: flash %q", got)
		}
		if e := h.auditEntries(t)[0]; e.Action != "denied" || e.Actor != "ops-alice" || e.Route != "list-photos" {
			t.Errorf("the self-approval is audited as %+v, want denied", e)
		}
		resp, _ = h.send(t, "POST", "/ui/changes/2", url.Values{"csrf": {csrf}, "action": {"reject"}, "reason": {"wrong route"}}, "Origin", h.URL)
		if got, _ := h.flash(t, resp); got != "Change request 2 (ops-alice's legacy → fallback) is rejected." {
			t.Errorf("withdrawing: flash %q", got)
		}
	})

	t.Run("a viewer sees the requests and cannot decide them nor ramp", func(t *testing.T) {
		request("dev-bob", "fallback")
		v := newPageAdminOn(t, h.store, h.clock)
		v.login(t, pageViewerToken)
		page, csrf := v.page(t)
		if strings.Contains(page, `action="/ui/changes/3"`) || strings.Contains(page, `/ramp"`) || !strings.Contains(page, "read-only") {
			t.Errorf("the viewer's page has decision or ramp forms")
		}
		resp, body := v.send(t, "POST", "/ui/routes/list-photos/ramp", rampForm(csrf, "1", "start"), "Origin", v.URL)
		if want := `POST /ui/routes/{name}/ramp needs the operator role`; resp.StatusCode != http.StatusForbidden || !strings.Contains(body, want) {
			t.Errorf("the viewer's ramp form: got %d, want 403 saying %q", resp.StatusCode, want)
		}
		resp, body = v.send(t, "POST", "/ui/changes/3", url.Values{"csrf": {csrf}, "action": {"approve"}, "confirm": {"yes"}}, "Origin", v.URL)
		if want := `POST /ui/changes/{change} needs the operator role`; resp.StatusCode != http.StatusForbidden || !strings.Contains(body, want) {
			t.Errorf("the viewer's approval: got %d, want 403 saying %q", resp.StatusCode, want)
		}
		if e := v.auditEntries(t)[0]; e.Action != "denied" || e.Actor != "audit-vera" || e.Route != "list-photos" {
			t.Errorf("the viewer's approval is audited as %+v, want denied on list-photos", e)
		}
	})
}
