package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"strangler/internal/testcert"
	"strangler/internal/testkit"
)

// TestTLSEverywhere serves the public and admin listeners over TLS and
// reaches an https backend whose certificate names a host other than the
// URL's, trusted through a CA bundle, all with certificates made here.
func TestTLSEverywhere(t *testing.T) {
	ca := testcert.NewAuthority(t)
	backendCert, backendKey := ca.Files("backend")
	ca.Issue(t, 1, backendCert, backendKey, "modern.internal")
	modern := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "modern over %s", r.Proto)
	}))
	pair, err := tls.LoadX509KeyPair(backendCert, backendKey)
	if err != nil {
		t.Fatal(err)
	}
	modern.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	modern.Config.ErrorLog = log.New(io.Discard, "", 0)
	modern.EnableHTTP2 = true
	modern.StartTLS()
	defer modern.Close()
	stranger := testcert.NewAuthority(t) // trusts nothing of ours
	legacy := backendAnswering(t, "legacy")

	facadeCert, facadeKey := ca.Files("facade")
	ca.Issue(t, 2, facadeCert, facadeKey, "127.0.0.1")
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	write := func(caFile string) {
		os.WriteFile(path, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
tls: { cert: %q, key: %q }
admin: { listen: "127.0.0.1:0", tls: { cert: %q, key: %q }, token: "tls-admin-token-0123456789" }
store: "sqlite:%s/s.db"
backends:
  legacy: { url: %q }
  modern: { url: %q, tls: { ca: %q, server_name: modern.internal } }
routes:
  - {name: get, match: "GET /x", mode: modern}
`, facadeCert, facadeKey, facadeCert, facadeKey, dir, legacy.URL, modern.URL, caFile)), 0o644)
	}
	write(ca.CAFile)

	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogBuffer()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", path}, noEnv, io.Discard, logs) }()
	defer func() { cancel(); <-done }()
	line := logs.waitFor(t, "serving", nil, startWait)

	pem, _ := os.ReadFile(ca.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	get := func(url string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, _ := get("https://" + line["admin"].(string) + "/readyz"); resp.StatusCode != 200 {
		t.Fatalf("admin /readyz over TLS: %d", resp.StatusCode)
	}
	resp, body := get("https://" + line["listen"].(string) + "/x")
	if resp.ProtoMajor != 2 || body != "modern over HTTP/2.0" {
		t.Errorf("got %s %q, want HTTP/2 from the client and to the backend", resp.Proto, body)
	}

	t.Run("both listeners offer HTTP/2 with the edge's stream limit", func(t *testing.T) {
		for _, addr := range []string{line["listen"].(string), line["admin"].(string)} {
			if got := maxStreams(t, addr, pool); got != 100 {
				t.Errorf("%s announces SETTINGS_MAX_CONCURRENT_STREAMS %d, want 100 (net/http alone allows 250)", addr, got)
			}
		}
	})
	t.Run("plain HTTP to either listener is a JSON refusal", func(t *testing.T) {
		for _, l := range []struct{ name, addr string }{{"public", line["listen"].(string)}, {"admin", line["admin"].(string)}} {
			resp, body, rest := refusalExchange(t, l.addr, "GET /x HTTP/1.1\r\nHost: facade\r\n\r\n")
			wantJSONRefusal(t, resp, body, rest, http.StatusBadRequest)
			logs.waitFor(t, "request refused", map[string]any{"listener": l.name, "reason": "not_tls"}, 10*time.Second)
		}
	})
	t.Run("the status page's session cookie is Secure and __Host-", func(t *testing.T) {
		noRedirect := &http.Client{Transport: client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.PostForm("https://"+line["admin"].(string)+"/login", url.Values{"token": {"tls-admin-token-0123456789"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cookies := resp.Cookies()
		if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || cookies[0].Name != "__Host-strangler_session" || !cookies[0].Secure || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != "/" || cookies[0].Domain != "" {
			t.Errorf("login over TLS: got %d with %q, want 303 and a Secure, HttpOnly, SameSite=Strict __Host-strangler_session cookie for Path=/", resp.StatusCode, resp.Header["Set-Cookie"])
		}
	})
	t.Run("a backend certificate from another authority is refused", func(t *testing.T) {
		write(stranger.CAFile)
		logs.waitFor(t, "config reloaded", nil, 15*time.Second)
		if resp, _ := get("https://" + line["listen"].(string) + "/x"); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("got %d, want 502: the backend's certificate must not be trusted", resp.StatusCode)
		}
	})
}

// maxStreams opens an HTTP/2 connection to addr and returns the stream
// limit the server's first SETTINGS frame announces.
func maxStreams(t *testing.T, addr string, roots *x509.CertPool) uint32 {
	t.Helper()
	conn := testkit.DialH2(t, addr, &tls.Config{RootCAs: roots}, 10*time.Second)
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("%s: reading its SETTINGS: %v", addr, err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			v, _ := sf.Value(http2.SettingMaxConcurrentStreams)
			return v
		}
	}
}
