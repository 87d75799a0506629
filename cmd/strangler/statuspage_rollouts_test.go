package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/control"
	"strangler/internal/testkit"

	"github.com/chromedp/chromedp"
)

const (
	rolloutsAliceToken = "rollouts-alice-token-0123456789"
	rolloutsBobToken   = "rollouts-bob-token-0123456789"
)

// TestRampsAndApprovalsInABrowser drives the status page's ramp and
// change request forms in headless Chromium: an operator starts a ramp
// and sees its first step; her flip of a route that needs approvals
// becomes a change request; a second operator approves it, which applies
// it, and pauses the ramp.
func TestRampsAndApprovalsInABrowser(t *testing.T) {
	needChromium(t)
	legacy := backendAnswering(t, `{"served_by":"legacy"}`)
	modern := backendAnswering(t, `{"served_by":"modern"}`)
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens:
    - { name: ops-alice, token: %q, role: operator }
    - { name: ops-bob, token: %q, role: operator }
backends:
  legacy: { url: %q, timeout: 2s }
  modern: { url: %q, timeout: 2s }
shutdown: { delay: 0s, grace: 5s }
store: "sqlite:%s"
state_snapshot: %q
routes:
  - { name: get-visit, match: "GET /visits/{id}", mode: fallback, percent: 0 }
  - { name: list-patients, match: "GET /patients", mode: shadow, approvals: 2 }
`, rolloutsAliceToken, rolloutsBobToken, legacy.URL, modern.URL, filepath.Join(dir, "strangler.db"), filepath.Join(dir, "state-snapshot.json"))
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	clock := &adminClock{}
	r := startServeAt(t, path, clock.Now)
	b := openBrowser(t)
	login := func(token string) {
		t.Helper()
		b.do("logging in",
			chromedp.Navigate("http://"+r.admin+"/"),
			chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), token),
			chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
			chromedp.WaitVisible(chromedp.ID("routes")),
		)
	}
	login(rolloutsAliceToken)

	const ramp = `form[action="/ui/routes/get-visit/ramp"] `
	b.do("starting a ramp of get-visit",
		chromedp.SetValue(chromedp.CSS(ramp+`input[name=steps]`), "1,5,50"),
		chromedp.SetValue(chromedp.CSS(ramp+`input[name=every]`), "30m"),
		chromedp.SendKeys(chromedp.CSS(ramp+`input[name=reason]`), "ticket 21"),
		chromedp.Click(chromedp.CSS(ramp+`input[name=confirm]`)),
		chromedp.Click(chromedp.CSS(ramp+`button[value=start]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if got, want := b.text(".flash"), "get-visit ramps to fallback at 1%, 5%, 50% every 30m; the first step is due now. Audited as ops-alice."; got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	testkit.Eventually(t, 10*time.Second, "the ramp's first step", func() bool {
		var route control.RouteJSON
		adminGetAs(t, r.admin, rolloutsAliceToken, "/admin/routes/get-visit", &route)
		return route.Percent != nil && *route.Percent == 1
	})
	b.do("reloading the page", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("ramp-get-visit")))
	if got := b.text("#ramp-get-visit"); !strings.Contains(got, "1 of 3 steps taken, running, at fallback at 1%") || !strings.Contains(got, "next: fallback at 5%, in 30m") {
		t.Errorf("the ramp shows %q, want its first step taken and the next due in 30m", got)
	}

	const flip = `form[action="/ui/routes/list-patients"] `
	b.do("flipping list-patients, which needs approvals",
		chromedp.SetValue(chromedp.CSS(flip+`select[name=mode]`), "fallback"),
		chromedp.SendKeys(chromedp.CSS(flip+`input[name=reason]`), "mismatches gone"),
		chromedp.Click(chromedp.CSS(flip+`input[name=confirm]`)),
		chromedp.Click(chromedp.CSS(flip+`button[value=flip]`)),
		chromedp.WaitVisible(chromedp.ID("changes")),
	)
	if got, want := b.text(".flash"), "list-patients needs 1 approval by another token name: change request 1 (shadow → fallback) waits for it until"; !strings.HasPrefix(got, want) {
		t.Errorf("flash %q, want %q…", got, want)
	}
	if got := b.text("#change-1"); !strings.Contains(got, "Yours: another token name must approve it.") {
		t.Errorf("alice's own request shows %q, want no approval of her own", got)
	}
	b.do("logging out", chromedp.Click(chromedp.CSS(`form.logout button`)), chromedp.WaitVisible(chromedp.ID("token")))

	login(rolloutsBobToken)
	const decide = `form[action="/ui/changes/1"] `
	b.do("approving alice's request",
		chromedp.Click(chromedp.CSS(decide+`input[name=confirm]`)),
		chromedp.Click(chromedp.CSS(decide+`button[value=approve]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if got, want := b.text(".flash"), "Change request 1 is approved and applied: list-patients is now fallback. Audited as ops-alice's, approved by ops-bob."; got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	if _, body := getBody(t, "http://"+r.public+"/patients"); body != `{"served_by":"modern"}` {
		t.Errorf("after the approval list-patients answered %q, want modern's answer", body)
	}
	b.do("pausing the ramp",
		chromedp.Reload(), // the approval's flash is gone: a flash shows once
		chromedp.WaitVisible(chromedp.ID("routes")),
		chromedp.SendKeys(chromedp.CSS(ramp+`input[name=reason]`), "incident 9"),
		chromedp.Click(chromedp.CSS(ramp+`button[value=pause]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if got, want := b.text(".flash"), "get-visit's ramp is paused (1 of 3 steps taken, paused). Audited as ops-bob."; got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	audit := b.text("#audit")
	for _, want := range []string{"ramp_start", "ramp_pause", "change_request", "change_approve", "change request 1, approved by ops-bob"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, audit)
		}
	}
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	artifacts := os.Getenv("STRANGLER_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artifacts, "statuspage-rollouts.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the status page with a ramp and a change request: %s", filepath.Join(artifacts, "statuspage-rollouts.png"))
	if errs := b.close(); len(errs) > 0 {
		t.Errorf("the browser's console has errors:\n%s", strings.Join(errs, "\n"))
	}
}

// adminGetAs calls the admin API with token and decodes its JSON into v.
func adminGetAs(t *testing.T, admin, token, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
