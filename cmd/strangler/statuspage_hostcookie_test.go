package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"strangler/internal/testcert"
)

// TestOverTLSABackendsScriptCannotSetTheStatusPageSession: the facade
// drops a backend's Set-Cookie for the status page's cookies, but a
// backend's HTML page served through the public listener can still set
// cookies with script, and browsers do not keep cookies apart by port.
// With the admin listener on TLS and the public one on plain HTTP, such a
// page set strangler_session to the session of another token's holder
// (an auditor's): an operator who opened the status page next was
// "Signed in as auditor-vera". Over TLS the page's cookies are now named
// __Host-strangler_…, which script on a plain-HTTP origin cannot set (nor
// add for a longer path), and the strangler_… ones are ignored: in a real
// browser, the operator is asked to log in, stays signed in as
// themselves after the page ran again, and their form post goes through.
func TestOverTLSABackendsScriptCannotSetTheStatusPageSession(t *testing.T) {
	needChromium(t)
	ca := testcert.NewAuthority(t)
	certFile, keyFile := ca.Files("admin")
	ca.Issue(t, 1, certFile, keyFile, "127.0.0.1", browserHost)

	var fixed atomic.Value // the auditor's session id, once logged in
	legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		id, _ := fixed.Load().(string)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// Every spelling a page might try: both names, for the whole host
		// and for the status page's form paths, with and without Secure.
		fmt.Fprintf(w, `<!doctype html><title>legacy</title><script>
for (const name of ["strangler_session", "__Host-strangler_session"])
  for (const path of ["/", "/ui"])
    for (const attrs of ["", "; Secure"])
      document.cookie = name + "=%s; Path=" + path + attrs;
document.title = "cookies set";
</script>`, id)
	})
	modern := backendAnswering(t, `[]`)
	path := writeStatusPageConfig(t, legacy.URL, modern.URL)
	yaml, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	withTLS := strings.Replace(string(yaml), "admin:\n  listen: \"127.0.0.1:0\"\n",
		fmt.Sprintf("admin:\n  listen: \"127.0.0.1:0\"\n  tls: { cert: %q, key: %q }\n  hosts: [%s]\n", certFile, keyFile, browserHost), 1)
	if withTLS == string(yaml) {
		t.Fatal("the status page's config has no admin listen line to add tls to")
	}
	if err := os.WriteFile(path, []byte(withTLS), 0o644); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r := startServing(t, path, facadeOptions{adminNow: time.Now})
	waitReadyTLS(t, client, "https://"+r.admin)
	// The browser reaches both listeners by a name: Chromium counts
	// http://127.0.0.1 as a secure origin, whose script may set a
	// __Host- cookie.
	admin, public := "https://"+onBrowserHost(t, r.admin), "http://"+onBrowserHost(t, r.public)

	resp, err := client.PostForm("https://"+r.admin+"/login", url.Values{"token": {statusPageViewerToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "strangler_session") {
			fixed.Store(c.Value)
		}
	}
	if fixed.Load() == nil {
		t.Fatalf("logging in as the auditor set no session cookie (%s)", resp.Status)
	}

	// Chromium trusts the admin listener's certificate by its key's hash.
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	b := openBrowser(t,
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.Flag("host-resolver-rules", "MAP "+browserHost+" 127.0.0.1"))
	signedIn := func() string {
		t.Helper()
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	runBackendPage := func() {
		t.Helper()
		b.do("opening a backend's page through the public listener",
			chromedp.Navigate(public+"/patients"),
			chromedp.Poll[chromedp.Void](`document.title == "cookies set"`),
		)
	}

	runBackendPage()
	b.do("opening the status page", chromedp.Navigate(admin+"/"), chromedp.WaitVisible(chromedp.CSS("main")))
	if got := signedIn(); strings.Contains(got, "Signed in as") {
		t.Fatalf("before logging in, after a backend's page set cookies, the status page says %q; want the login form", got)
	}
	const form = `form[action="/ui/routes/list-patients"] `
	b.do("logging in",
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), statusPageToken),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
		chromedp.WaitVisible(chromedp.ID("routes")),
	)
	runBackendPage()
	b.do("opening the status page again", chromedp.Navigate(admin+"/"), chromedp.WaitVisible(chromedp.ID("routes")))
	if got := signedIn(); !strings.Contains(got, "Signed in as ops-alice") {
		t.Errorf("after a backend's page set cookies again, the operator is not signed in as themselves:\n%s", got)
	}
	b.do("flipping list-patients",
		chromedp.SetValue(chromedp.CSS(form+`select[name=mode]`), "fallback"),
		chromedp.SetValue(chromedp.CSS(form+`input[name=reason]`), "cookie check"),
		chromedp.Click(chromedp.CSS(form+`input[name=confirm]`)),
		chromedp.Click(chromedp.CSS(form+`button[value=flip]`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if got := b.text(".flash"); !strings.Contains(got, "list-patients") {
		t.Errorf("the flip's message is %q, want it to name list-patients", got)
	}
	b.close() // the refused cookies are the console's warnings, not errors; nothing else to check there
}

// waitReadyTLS is waitReady for an admin listener on TLS, reached with
// client.
func waitReadyTLS(t *testing.T, client *http.Client, admin string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz never became ready: %v", admin, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// browserHost is the name the browser reaches the facade by in
// TestOverTLSABackendsScriptCannotSetTheStatusPageSession, mapped to
// 127.0.0.1 by the browser's resolver.
const browserHost = "facade.test"

// onBrowserHost is the listener address addr with browserHost for its host.
func onBrowserHost(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(browserHost, port)
}
