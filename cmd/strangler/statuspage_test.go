package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"strangler/config/configfile"
	"strangler/domain"
	"strangler/internal/filecap"
	"strangler/store"
)

// chromium is Debian's Chromium, which CI installs (.ci/run).
const chromium = "/usr/bin/chromium"

const (
	statusPageToken = "status-page-token-0123456789"
	// statusPageViewerToken is an auditor's: the viewer role.
	statusPageViewerToken = "status-page-viewer-token-0123456789"
)

// writeStatusPageConfig writes a config with an operator's and a
// viewer's admin token, a SQLite store in its directory and three routes,
// and returns its path.
func writeStatusPageConfig(t *testing.T, legacy, modern string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens:
    - { name: ops-alice, token: %q, role: operator }
    - { name: auditor-vera, token: %q, role: viewer }
backends:
  legacy: { url: %q, timeout: 2s }
  modern: { url: %q, timeout: 2s }
debug_headers: true
shutdown: { delay: 0s, grace: 5s }
store: "sqlite:%s"
routes:
  - name: get-patient
    match: "GET /patients/{id}"
    mode: fallback
    gates: { max_fallback_rate: 1%% }
  - name: list-patients
    match: "GET /patients"
    mode: shadow
  - name: create-patient
    match: "POST /patients"
    mode: legacy
`, statusPageToken, statusPageViewerToken, legacy, modern, filepath.Join(dir, "strangler.db"))
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// seedHours gives get-patient a day of history: fallbacks that stop three
// hours ago, as after a backfill, so the chart has something to show and
// the gate lets a flip to modern through.
func seedHours(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC().Truncate(time.Hour)
	var counts []domain.HourCount
	for i := 23; i >= 0; i-- {
		hour := now.Add(-time.Duration(i) * time.Hour)
		fallbacks := int64(0)
		if i > 3 {
			fallbacks = int64(i) / 2
		}
		counts = append(counts,
			domain.HourCount{Route: "get-patient", Hour: hour, Requests: 400, Modern: 400 - fallbacks, Fallbacks: fallbacks},
			domain.HourCount{Route: "create-patient", Hour: hour, Requests: 40})
	}
	if err := st.AddCounts(ctx, counts); err != nil {
		t.Fatal(err)
	}
}

// adminClock is the admin listener's clock in a test: the real time,
// moved on by hand.
type adminClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *adminClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *adminClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// startServeAt runs the facade of the configuration at path in this
// process, as startRun does, with the admin listener on clock now.
func startServeAt(t *testing.T, path string, now func() time.Time) *running {
	t.Helper()
	return startServeWith(t, path, facadeOptions{adminNow: now})
}

// startServeWith is startServeAt with the facade's options.
func startServeWith(t *testing.T, path string, opts facadeOptions) *running {
	t.Helper()
	r := startServing(t, path, opts)
	waitReady(t, r.admin)
	return r
}

// startServing is startServeWith up to the facade's "serving" line,
// before its admin listener says it is ready: for an admin listener that
// waitReady's plain HTTP cannot reach.
func startServing(t *testing.T, path string, opts facadeOptions) *running {
	t.Helper()
	cfg, err := configfile.Load(path, configfile.Env{Getenv: noEnv, ReadFile: filecap.Read})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{logs: newLogBuffer(), stop: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- serve(ctx, cfg, slog.New(slog.NewJSONHandler(r.logs, nil)), opts)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	line := r.logs.waitFor(t, "serving", nil, startWait)
	r.public, r.admin = line["listen"].(string), line["admin"].(string)
	return r
}

// TestStatusPageInABrowser drives the status page in headless Chromium:
// log in, read the route table, flip a route with a reason, see the flash
// and the audit entry, and keep a screenshot; then leave the session
// unused for 8 hours, log in again, and log out; then log in as a viewer,
// whose page has no flip form.
func TestStatusPageInABrowser(t *testing.T) {
	needChromium(t)
	legacy := backendAnswering(t, `{"served_by":"legacy"}`)
	modern := backendAnswering(t, `{"served_by":"modern"}`)
	path := writeStatusPageConfig(t, legacy.URL, modern.URL)
	seedHours(t, "sqlite:"+filepath.Join(filepath.Dir(path), "strangler.db"))
	clock := &adminClock{}
	r := startServeAt(t, path, clock.Now)
	for range 10 {
		getBody(t, "http://"+r.public+"/patients/7")
		getBody(t, "http://"+r.public+"/patients")
	}

	b := openBrowser(t)
	ctx, do, text := b.ctx, b.do, b.text
	do("opening the status page",
		chromedp.Navigate("http://"+r.admin+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	loginShot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	do("logging in",
		chromedp.SendKeys(chromedp.ID("token"), statusPageToken),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
		chromedp.WaitVisible(chromedp.ID("routes")),
	)
	routes := text("#routes")
	// The stylesheet may still be on its way when the table is visible (a
	// loaded machine): the page's load event waits for it.
	headerColour, err := chromedp.Run(ctx, chromedp.Poll[string](
		`document.readyState === "complete" && getComputedStyle(document.querySelector("header.top")).backgroundColor`,
		chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	const form = `form[action="/ui/routes/get-patient"] `
	do("flipping get-patient",
		chromedp.SetValue(chromedp.CSS(form+`select[name=mode]`), "modern"),
		chromedp.SendKeys(chromedp.CSS(form+`input[name=reason]`), "backfill done; no fallback for 3h"),
		chromedp.Click(chromedp.CSS(form+`input[name=confirm]`)),
		chromedp.Click(chromedp.CSS(form+`button[value=flip]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	flash, audit := text(".flash"), text("#audit")

	for _, want := range []string{"get-patient", "GET /patients/{id}", "list-patients", "create-patient", "fallback", "shadow", "not yet", "next: modern"} {
		if !strings.Contains(routes, want) {
			t.Errorf("the route table lacks %q:\n%s", want, routes)
		}
	}
	if headerColour != "rgb(31, 41, 51)" {
		t.Errorf("the header's background is %q: the stylesheet did not load", headerColour)
	}
	if want := "get-patient is now modern (was fallback). Audited as ops-alice."; !strings.Contains(flash, want) {
		t.Errorf("flash %q, want %q", flash, want)
	}
	for _, want := range []string{"ops-alice", "flip", "fallback → modern", "backfill done; no fallback for 3h"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, audit)
		}
	}
	if _, body := getBody(t, "http://"+r.public+"/patients/7"); body != `{"served_by":"modern"}` {
		t.Errorf("after the flip get-patient answered %q, want modern's answer", body)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("STRANGLER_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, png := range map[string][]byte{"statuspage-login.png": loginShot, "statuspage.png": shot} {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot of the status page after the flip: %s", filepath.Join(dir, "statuspage.png"))

	clock.Advance(8*time.Hour + time.Second)
	do("reloading the page 8 hours later",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	if got, want := text(".flash"), "Your session has ended"; !strings.Contains(got, want) {
		t.Errorf("8 hours unused, the login page says %q, want %q", got, want)
	}
	do("logging in again",
		chromedp.SendKeys(chromedp.ID("token"), statusPageToken),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
		chromedp.WaitVisible(chromedp.ID("routes")),
	)
	cookies, err := chromedp.Run(ctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
		return res.Cookies, err
	}))
	if err != nil {
		t.Fatalf("reading the browser's cookies: %v", err)
	}
	var session *network.Cookie
	for _, c := range cookies {
		if c.Name == "strangler_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || strings.Contains(session.Value, statusPageToken) {
		t.Fatalf("session cookie %+v, want an HttpOnly, SameSite=Strict cookie without the token", session)
	}
	do("logging out",
		chromedp.Click(chromedp.CSS(`form.logout button`)),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	// The cookie the browser had opens nothing any more: the session is
	// over, not just forgotten by this browser.
	req, _ := http.NewRequest("GET", "http://"+r.admin+"/", nil)
	req.Header.Set("Cookie", "strangler_session="+session.Value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	replay, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(replay), "Your session has ended") || strings.Contains(string(replay), `id="routes"`) {
		t.Errorf("the logged-out session's cookie: got %d, want the login page saying the session ended", resp.StatusCode)
	}

	do("logging in as a viewer",
		chromedp.SendKeys(chromedp.ID("token"), statusPageViewerToken),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
		chromedp.WaitVisible(chromedp.ID("routes")),
	)
	forms, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("form.flip, select[name=mode], button[value=flip]").length`))
	if err != nil {
		t.Fatal(err)
	}
	if forms != 0 {
		t.Errorf("the viewer's page has %d flip forms and controls, want none", forms)
	}
	if got, want := text("#read-only"), "whose token has the viewer role: this page is read-only for you"; !strings.Contains(got, want) {
		t.Errorf("the viewer's page says %q, want %q", got, want)
	}
	if got := text("#audit"); !strings.Contains(got, "backfill done; no fallback for 3h") {
		t.Errorf("the viewer's audit log lacks the flip:\n%s", got)
	}
	if got := text("#chain-head"); len(got) != 64 {
		t.Errorf("the viewer's page shows the chain head %q, want a SHA-256 in hex", got)
	}
	viewerShot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "statuspage-viewer.png"), viewerShot, 0o644); err != nil {
		t.Fatal(err)
	}

	if errs := b.close(); len(errs) > 0 {
		t.Errorf("the browser's console has errors:\n%s", strings.Join(errs, "\n"))
	}
}

// needChromium skips the test without Chromium, or fails it when CI
// requires the browser.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("STRANGLER_REQUIRE_BROWSER") == "1" {
			t.Fatalf("%s is missing and STRANGLER_REQUIRE_BROWSER=1: install Debian's chromium package", chromium)
		}
		t.Skipf("%s is missing: install Debian's chromium package (apt-get install chromium) to test the status page in a browser", chromium)
	}
}

// browser is a tab of headless Chromium, with the errors of its console.
type browser struct {
	t   *testing.T
	ctx context.Context
	// close ends the tab and returns the console's errors.
	close func() []string
}

// openBrowser starts Chromium for the rest of the test, with the extra
// options (a flag trusting a test certificate).
func openBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
	}, extra...)...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)

	// The browser's console: a stylesheet the CSP blocked, or any other
	// error of the page, shows up here.
	var consoleErrors []string
	consoleDone := make(chan struct{})
	messages := chromedp.Console(ctx)
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				consoleErrors = append(consoleErrors, m.String()+" "+m.URL)
			}
		}
	}()
	return &browser{t: t, ctx: ctx, close: func() []string {
		cancelTab()
		<-consoleDone
		return consoleErrors
	}}
}

// do runs steps in the tab, failing the test with what it was doing.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text is the text of what sel selects.
func (b *browser) text(sel chromedp.CSS) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}
