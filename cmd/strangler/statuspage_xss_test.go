package main

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"strangler/backfill"
)

// xssPayload is markup an operator, a backend or a legacy row might put
// where the page shows text: it breaks out of an attribute, adds an
// image whose error handler runs script, and a script element.
const xssPayload = `"'><img id=xss src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>`

// TestStatusPageAndReportShowMarkupAsText: in a real browser, a reason
// holding markup shows on the status page (the route's override and the
// audit log) and in the backfill's HTML report (a failure's reason and a
// row's key) as the text it is: no element is added, no script runs.
func TestStatusPageAndReportShowMarkupAsText(t *testing.T) {
	needChromium(t)
	legacy := backendAnswering(t, `{"served_by":"legacy"}`)
	modern := backendAnswering(t, `{"served_by":"modern"}`)
	path := writeStatusPageConfig(t, legacy.URL, modern.URL)
	r := startServeAt(t, path, time.Now)

	b := openBrowser(t)
	do, text := b.do, b.text
	const form = `form[action="/ui/routes/list-patients"] `
	do("logging in and flipping list-patients with markup for a reason",
		chromedp.Navigate("http://"+r.admin+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), statusPageToken),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
		chromedp.WaitVisible(chromedp.ID("routes")),
		chromedp.SetValue(chromedp.CSS(form+`select[name=mode]`), "fallback"),
		chromedp.SetValue(chromedp.CSS(form+`input[name=reason]`), xssPayload),
		chromedp.Click(chromedp.CSS(form+`input[name=confirm]`)),
		chromedp.Click(chromedp.CSS(form+`button[value=flip]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	for _, sel := range []chromedp.CSS{"#routes", "#audit"} {
		if got := text(sel); !strings.Contains(got, xssPayload) {
			t.Errorf("%s does not show the reason as text:\n%s", sel, got)
		}
	}
	checkNoScriptRan(t, b, "the status page")

	// The backfill's report is a file opened from disk: no policy header
	// protects it, only its escaping.
	report := &backfill.Report{Mode: "copy", Started: time.Now(), Finished: time.Now(), Tables: []backfill.TableReport{{
		Table: "patients", Read: 2, Failed: 2,
		Failures: []backfill.FailureGroup{{Reason: "value too long: " + xssPayload, Count: 2, SampleKeys: []string{xssPayload, "7"}}},
	}}, Error: "stopped: " + xssPayload}
	file := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := report.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	do("opening the backfill report",
		chromedp.Navigate("file://"+file),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	)
	if got := text("body"); strings.Count(got, xssPayload) != 3 {
		t.Errorf("the report does not show the reason, the key and the error as text:\n%s", got)
	}
	checkNoScriptRan(t, b, "the backfill report")

	// The blocked image and script of a page that let markup through
	// would show here; an escaped page has nothing to block.
	if errs := b.close(); len(errs) > 0 {
		t.Errorf("the browser's console has errors:\n%s", strings.Join(errs, "\n"))
	}
}

// checkNoScriptRan checks that the page in b has no element the payload
// would add and that no script of it ran.
func checkNoScriptRan(t *testing.T, b *browser, page string) {
	t.Helper()
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.title + "|" + document.querySelectorAll("#xss, img, script").length`))
	if err != nil {
		t.Fatal(err)
	}
	if title, n, _ := strings.Cut(got, "|"); strings.Contains(title, "pwned") || n != "0" {
		t.Errorf("%s: title %q and %s image or script elements; want the payload shown as text, nothing added", page, title, n)
	}
}

// TestStatusPagePolicyLoadsNoScriptAndKeepsItsBase: the status page runs
// no script, and its policy says so, so that markup a broken escape let
// through could neither load a script from the admin listener itself nor
// move the page's base to another site (where its relative links would
// then lead). The page's policy was default-src 'self', which allows both
// script-src 'self' and any base: a <script src> and a <base href> put in
// the page drew no violation, and the base moved. In a real browser, both
// are now refused by the policy.
func TestStatusPagePolicyLoadsNoScriptAndKeepsItsBase(t *testing.T) {
	needChromium(t)
	legacy := backendAnswering(t, `{"served_by":"legacy"}`)
	modern := backendAnswering(t, `{"served_by":"modern"}`)
	r := startServeAt(t, writeStatusPageConfig(t, legacy.URL, modern.URL), time.Now)

	b := openBrowser(t)
	b.do("logging in",
		chromedp.Navigate("http://"+r.admin+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), statusPageToken),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
		chromedp.WaitVisible(chromedp.ID("routes")),
	)
	// What injected markup would do, done through the DOM, which the
	// page's policy governs as it governs the page's own markup.
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`new Promise(done => {
		const refused = [];
		document.addEventListener("securitypolicyviolation", e => refused.push(e.effectiveDirective));
		const script = document.createElement("script");
		script.src = "/static/style.css";
		document.head.append(script);
		const base = document.createElement("base");
		base.href = "http://elsewhere.invalid/";
		document.head.prepend(base);
		setTimeout(() => done(new URL("x", document.baseURI).host + "|" + refused.sort().join(",")), 2000);
	})`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	host, refused, _ := strings.Cut(got, "|")
	if host != r.admin {
		t.Errorf("a relative link resolves on %s, want %s: the page's base moved", host, r.admin)
	}
	if refused != "base-uri,script-src-elem" {
		t.Errorf("the policy refused %q, want the base and the script (base-uri,script-src-elem)", refused)
	}
	b.close() // the refusals are the console's errors here
}

// TestAFlashMessageSetByAnotherPortIsNotShown: browsers keep cookies
// apart by host, not by port, so a cookie a backend sets through the
// public listener is sent to the admin listener on the same host too.
// The status page showed a strangler_flash cookie's text as the outcome
// of the operator's last change, so a backend (or any service on the
// host) could put its words there, styled as the facade's own ("log in
// again at …"). In a real browser, such a flash is no longer shown.
func TestAFlashMessageSetByAnotherPortIsNotShown(t *testing.T) {
	needChromium(t)
	const forged = "1get-patient is now modern. Your session expires soon: log in again at https://elsewhere.invalid/"
	legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "strangler_flash", Value: base64.RawURLEncoding.EncodeToString([]byte(forged)), Path: "/"})
		io.WriteString(w, `[]`)
	})
	modern := backendAnswering(t, `[]`)
	r := startServeAt(t, writeStatusPageConfig(t, legacy.URL, modern.URL), time.Now)

	b := openBrowser(t)
	b.do("reading through the public listener, then logging in to the status page",
		chromedp.Navigate("http://"+r.public+"/patients"),
		chromedp.Navigate("http://"+r.admin+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), statusPageToken),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
		chromedp.WaitVisible(chromedp.ID("routes")),
	)
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.cookie + "|" + (document.querySelector(".flash") || {textContent: ""}).textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "elsewhere.invalid") {
		t.Errorf("the status page shows a flash another port set: %q", got)
	}
	if errs := b.close(); len(errs) > 0 {
		t.Errorf("the browser's console has errors:\n%s", strings.Join(errs, "\n"))
	}
}

// A backend answering through the public listener on the admin
// listener's host could set the status page's cookies: browsers do not
// keep cookies apart by port. In a real browser, a backend that hands out
// the session of another token's holder (session fixation), a nameless
// cookie that reads as a session, and a CSRF cookie, leaves the operator
// signed in as themselves.
func TestABackendCannotSetTheStatusPageSession(t *testing.T) {
	needChromium(t)
	var fixed atomic.Value // the auditor's session id, once logged in
	legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		id, _ := fixed.Load().(string)
		w.Header().Add("Set-Cookie", "strangler_session="+id+"; Path=/; HttpOnly")
		w.Header().Add("Set-Cookie", "=strangler_session="+id+"; Path=/ui")
		w.Header().Add("Set-Cookie", "strangler_csrf=forged; Path=/")
		w.Header().Add("Set-Cookie", "theme=dark; Path=/")
		io.WriteString(w, `[]`)
	})
	modern := backendAnswering(t, `[]`)
	r := startServeAt(t, writeStatusPageConfig(t, legacy.URL, modern.URL), time.Now)

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm("http://"+r.admin+"/login", url.Values{"token": {statusPageViewerToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "strangler_session" {
			fixed.Store(c.Value)
		}
	}
	if fixed.Load() == nil {
		t.Fatalf("logging in as the auditor set no session cookie (%s)", resp.Status)
	}

	b := openBrowser(t)
	b.do("logging in to the status page, reading through the public listener, then opening the page again",
		chromedp.Navigate("http://"+r.admin+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), statusPageToken),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
		chromedp.WaitVisible(chromedp.ID("routes")),
		chromedp.Navigate("http://"+r.public+"/patients"),
		chromedp.Navigate("http://"+r.admin+"/"),
		chromedp.WaitVisible(chromedp.CSS("header")),
	)
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "Signed in as ops-alice") {
		t.Errorf("after a backend set the page's cookies, the operator is not signed in as themselves:\n%s", got)
	}
	cookies, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatal(err)
	}
	if cookies != "theme=dark" {
		t.Errorf("the browser's script-readable cookies are %q, want the backend's own theme=dark alone", cookies)
	}
	if errs := b.close(); len(errs) > 0 {
		t.Errorf("the browser's console has errors:\n%s", strings.Join(errs, "\n"))
	}
}
