package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/internal/testcert"
	"strangler/internal/testkit"
)

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestTargetPutsTheRequestBelowTheBasePath(t *testing.T) {
	for _, tc := range []struct {
		base, request string
		want          string
	}{
		{"http://b:1", "/patients/7?x=1", "http://b:1/patients/7?x=1"},
		{"http://b:1/", "/patients/7", "http://b:1/patients/7"},
		{"http://b:1/api", "/patients/7?x=1&y=%20", "http://b:1/api/patients/7?x=1&y=%20"},
		{"http://b:1/api/", "/patients/7", "http://b:1/api/patients/7"},
		{"http://b:1/api/v2", "/", "http://b:1/api/v2/"},
		{"http://b:1/api", "/files/a%2Fb", "http://b:1/api/files/a%2Fb"},
		{"http://b:1/api", "/a%20b/c", "http://b:1/api/a%20b/c"},
		{"http://b:1/my%20api", "/x", "http://b:1/my%20api/x"},
		{"http://b:1/tenant%2F7", "/x", "http://b:1/tenant%2F7/x"},
		{"http://b:1/tenant%2F7/", "/a%2Fb", "http://b:1/tenant%2F7/a%2Fb"},
		{"https://b/api", "/x/", "https://b/api/x/"},
	} {
		u := New("legacy", Config{URL: mustURL(t, tc.base)})
		in := mustURL(t, tc.request)
		if got := u.Target(in).String(); got != tc.want {
			t.Errorf("%s below %s: got %s, want %s", tc.request, tc.base, got, tc.want)
		}
	}
}

func TestRoundTripReachesTheBackendWithTheBodyReplayable(t *testing.T) {
	b := testkit.NewBackend(t, testkit.Answer(201, `{"ok":true}`))
	u := New("modern", Config{URL: mustURL(t, b.URL+"/base"), Timeout: 5 * time.Second})
	req := NewRequest(context.Background(), http.MethodPost, u.Target(mustURL(t, "/items?q=1")), http.Header{"X-A": {"1"}}, []byte(`{"v":1}`))
	if req.GetBody == nil {
		t.Fatal("a request with a body cannot be sent again: no GetBody")
	}
	resp, err := u.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	got := b.Last(t)
	if resp.StatusCode != 201 || got.Method != http.MethodPost || got.Path != "/base/items" || got.RawQuery != "q=1" || string(got.Body) != `{"v":1}` || got.Header.Get("X-A") != "1" {
		t.Errorf("answered %d; the backend got %+v", resp.StatusCode, got)
	}
	again, _ := req.GetBody()
	if body, _ := io.ReadAll(again); string(body) != `{"v":1}` {
		t.Errorf("GetBody gives %q, want the body again", body)
	}
}

func TestClassifyTellsWhatWentWrong(t *testing.T) {
	hang := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	send := func(ctx context.Context, rawURL string, timeout time.Duration) error {
		u := New("legacy", Config{URL: mustURL(t, rawURL), Timeout: timeout})
		resp, err := u.RoundTrip(NewRequest(ctx, http.MethodGet, u.Target(mustURL(t, "/x")), http.Header{}, nil))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	t.Run("a refused connection was not sent", func(t *testing.T) {
		ctx := context.Background()
		if f := Classify(ctx, send(ctx, testkit.DeadURL(t), time.Second)); !f.NotSent || f.Timeout || f.Canceled {
			t.Errorf("got %+v, want NotSent only", f)
		}
	})
	t.Run("no answer within the timeout is a timeout, after the request was sent", func(t *testing.T) {
		ctx := context.Background()
		if f := Classify(ctx, send(ctx, hang.URL, 100*time.Millisecond)); !f.Timeout || f.NotSent || f.Canceled {
			t.Errorf("got %+v, want Timeout only", f)
		}
	})
	t.Run("a client that left is canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-hang.Arrived()
			cancel()
		}()
		if f := Classify(ctx, send(ctx, hang.URL, time.Minute)); !f.Canceled {
			t.Errorf("got %+v, want Canceled", f)
		}
	})
	t.Run("a deadline of the caller's is a timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if f := Classify(ctx, send(ctx, hang.URL, time.Minute)); !f.Timeout || f.Canceled {
			t.Errorf("got %+v, want Timeout", f)
		}
	})
	t.Run("another error is none of them", func(t *testing.T) {
		if f := Classify(context.Background(), errors.New("malformed HTTP response")); f != (Failure{}) {
			t.Errorf("got %+v, want the zero Failure", f)
		}
	})
}

// TestInformationalResponsesLoseHopByHopHeaders: a 103 Early Hints the
// backend sends reaches the caller's trace without the headers that
// belong to one connection.
func TestInformationalResponsesLoseHopByHopHeaders(t *testing.T) {
	b := testkit.NewBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Connection")
		w.Header().Del("X-Hop")
		w.Header().Del("Keep-Alive")
		w.WriteHeader(http.StatusOK)
	})
	u := New("legacy", Config{URL: mustURL(t, b.URL), Timeout: 5 * time.Second})
	var got []textproto.MIMEHeader
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, h)
		return nil
	}})
	resp, err := u.RoundTrip(NewRequest(ctx, http.MethodGet, u.Target(mustURL(t, "/")), http.Header{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(got) != 1 || got[0].Get("Link") == "" || got[0].Get("X-Hop") != "" || got[0].Get("Connection") != "" || got[0].Get("Keep-Alive") != "" {
		t.Errorf("1xx headers reaching the caller: %v, want Link alone", got)
	}
}

func TestConnectionsAreReusedAndClosedOnRequest(t *testing.T) {
	b := testkit.NewBackend(t, nil)
	u := New("legacy", Config{URL: mustURL(t, b.URL), Timeout: 5 * time.Second})
	get := func() {
		resp, err := u.RoundTrip(NewRequest(context.Background(), http.MethodGet, u.Target(mustURL(t, "/")), http.Header{}, nil))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get()
	get()
	u.CloseIdleConnections()
	get()
	r := b.Requests()
	if r[0].RemoteAddr != r[1].RemoteAddr || r[1].RemoteAddr == r[2].RemoteAddr {
		t.Errorf("connections %s, %s, %s: want the first reused, then a new one after CloseIdleConnections", r[0].RemoteAddr, r[1].RemoteAddr, r[2].RemoteAddr)
	}
}

// TestTLSBackends: an https backend is reached with the configured
// authority and server name, over HTTP/2; an unknown authority or a name
// the certificate does not carry is refused.
func TestTLSBackends(t *testing.T) {
	ca := testcert.NewAuthority(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.Issue(t, 2, certFile, keyFile, "modern.internal")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	get := func(c *tls.Config) (string, error) {
		u := New("modern", Config{URL: mustURL(t, srv.URL), Timeout: 5 * time.Second, TLS: c})
		resp, err := u.RoundTrip(NewRequest(context.Background(), http.MethodGet, u.Target(mustURL(t, "/")), http.Header{}, nil))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), nil
	}
	if proto, err := get(&tls.Config{RootCAs: pool, ServerName: "modern.internal", MinVersion: tls.VersionTLS12}); err != nil || proto != "HTTP/2.0" {
		t.Errorf("with the authority and the server name: %q %v, want HTTP/2.0", proto, err)
	}
	if _, err := get(&tls.Config{ServerName: "modern.internal"}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the authority: %v, want a certificate error", err)
	}
	if _, err := get(&tls.Config{RootCAs: pool, ServerName: "legacy.internal"}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("with a name the certificate does not carry: %v, want a certificate error", err)
	}
}

// TestInformationalResponsesWaitUntilReleased: 1xx responses of an attempt
// whose outcome is open reach the caller only when released, in order,
// and not at all if the attempt is abandoned.
func TestInformationalResponsesWaitUntilReleased(t *testing.T) {
	b := testkit.NewBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		for _, link := range []string{"</a.css>", "</b.js>"} {
			w.Header().Set("Link", link+"; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
		}
		w.WriteHeader(http.StatusOK)
	})
	u := New("modern", Config{URL: mustURL(t, b.URL), Timeout: 5 * time.Second})
	for name, send := range holdingWays(u) {
		t.Run(name, func(t *testing.T) {
			var got []string
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				got = append(got, fmt.Sprint(code, " ", h.Get("Link")))
				return nil
			}})
			outer := NewRequest(ctx, http.MethodGet, u.Target(mustURL(t, "/")), http.Header{}, nil)
			var held Informational
			resp, err := send(outer, &held)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if len(got) != 0 {
				t.Fatalf("held 1xx responses reached the caller before the release: %q", got)
			}
			held.Release(outer)
			if want := []string{"103 </a.css>; rel=preload", "103 </b.js>; rel=preload"}; !slices.Equal(got, want) {
				t.Errorf("released: %q, want %q", got, want)
			}
		})
	}
}

// holdingWays are the two ways to send a request whose 1xx responses are
// held: through its context (Hold), and handed to the direct path
// (RoundTripHeld).
func holdingWays(u *Upstream) map[string]func(*http.Request, *Informational) (*http.Response, error) {
	return map[string]func(*http.Request, *Informational) (*http.Response, error){
		"Hold":          func(req *http.Request, i *Informational) (*http.Response, error) { return u.RoundTrip(i.Hold(req)) },
		"RoundTripHeld": u.RoundTripHeld,
	}
}

func TestFailureKindsNameWhatWentWrong(t *testing.T) {
	for f, want := range map[Failure]string{
		{Canceled: true}: "canceled", {Timeout: true}: "timeout", {NotSent: true}: "connect_failed",
		{Canceled: true, Timeout: true}: "canceled", {}: "",
	} {
		if got := f.Kind(); got != want {
			t.Errorf("%+v.Kind() = %q, want %q", f, got, want)
		}
	}
}

// TestHeldInformationalResponsesAreBounded: a backend sending 103s without
// end, over the direct client (GET) and the transport (POST), fails the
// attempt once the bound is passed instead of filling the facade's
// memory until its timeout (found by the red team: 256 MiB of 103s grew
// a fallback route's facade by up to 600 MiB).
func TestHeldInformationalResponsesAreBounded(t *testing.T) {
	hint := "HTTP/1.1 103 Early Hints\r\nLink: </" + strings.Repeat("a", 1000) + ">; rel=preload\r\n\r\n"
	flood := rawBackend(t, strings.Repeat(hint, 10000)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	few := rawBackend(t, strings.Repeat(hint, maxHeldInformational)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	// Three, fewer than the count allows, of 30 KB each: past the 64 KiB
	// of them the README allows.
	bigHint := "HTTP/1.1 103 Early Hints\r\nLink: </" + strings.Repeat("a", 30000) + ">; rel=preload\r\n\r\n"
	bulky := rawBackend(t, strings.Repeat(bigHint, 3)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		// A GET without a body takes the direct path, a POST with one the
		// transport.
		var body []byte
		if method == http.MethodPost {
			body = []byte("{}")
		}
		for name := range holdingWays(nil) {
			t.Run(method+" "+name, func(t *testing.T) {
				u := New("modern", Config{URL: mustURL(t, flood), Timeout: 5 * time.Second})
				var held Informational
				_, err := holdingWays(u)[name](NewRequest(context.Background(), method, u.Target(mustURL(t, "/")), http.Header{}, body), &held)
				if !errors.Is(err, ErrInformationalFlood) {
					t.Errorf("got %v, want ErrInformationalFlood", err)
				}
				if len(held.codes) > maxHeldInformational {
					t.Errorf("held %d responses, want at most %d", len(held.codes), maxHeldInformational)
				}
				u = New("modern", Config{URL: mustURL(t, bulky), Timeout: 5 * time.Second})
				held = Informational{}
				if _, err := holdingWays(u)[name](NewRequest(context.Background(), method, u.Target(mustURL(t, "/")), http.Header{}, body), &held); !errors.Is(err, ErrInformationalFlood) {
					t.Errorf("three 103s of 30 KB: got %v, want ErrInformationalFlood", err)
				}
				// Up to the bound, every 103 is held and the answer comes.
				u = New("modern", Config{URL: mustURL(t, few), Timeout: 5 * time.Second})
				held = Informational{}
				resp, err := holdingWays(u)[name](NewRequest(context.Background(), method, u.Target(mustURL(t, "/")), http.Header{}, body), &held)
				if err != nil {
					t.Fatalf("%d 103s: %v, want the answer", maxHeldInformational, err)
				}
				resp.Body.Close()
				if len(held.codes) != maxHeldInformational {
					t.Errorf("held %d responses, want %d", len(held.codes), maxHeldInformational)
				}
			})
		}
	}
}

// TestTLSServerNameIsTheURLsHost: without a configured server name, an
// https backend's certificate is checked against its URL's host, a name
// (sent as SNI) or an IP address (not sent, as RFC 6066 says), the port
// aside; a certificate for another name is refused.
func TestTLSServerNameIsTheURLsHost(t *testing.T) {
	ca := testcert.NewAuthority(t)
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	serve := func(hosts ...string) (port string, sni <-chan string) {
		certFile, keyFile := ca.Files(hosts[0])
		ca.Issue(t, 2, certFile, keyFile, hosts...)
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		names := make(chan string, 10)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			names <- h.ServerName
			return nil, nil
		}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return mustURL(t, srv.URL).Port(), names
	}
	get := func(raw string) error {
		u := New("modern", Config{URL: mustURL(t, raw), Timeout: 5 * time.Second, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
		resp, err := u.RoundTrip(NewRequest(context.Background(), http.MethodGet, u.Target(mustURL(t, "/")), http.Header{}, nil))
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	port, sni := serve("localhost", "127.0.0.1")
	for _, c := range []struct{ host, sni string }{{"localhost", "localhost"}, {"127.0.0.1", ""}} {
		if err := get("https://" + c.host + ":" + port); err != nil {
			t.Errorf("https://%s:%s with a certificate for it: %v", c.host, port, err)
			continue
		}
		if got := <-sni; got != c.sni {
			t.Errorf("https://%s:%s: the backend saw SNI %q, want %q", c.host, port, got, c.sni)
		}
	}
	other, _ := serve("other.internal")
	if err := get("https://localhost:" + other); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a certificate for another name: %v, want a certificate error", err)
	}
}

// TestTLSHandshakeIsBoundByTheTimeout: a backend that takes the
// connection and never answers the TLS handshake fails the attempt once
// the backend's timeout passed, not when the caller gives up.
func TestTLSHandshakeIsBoundByTheTimeout(t *testing.T) {
	addr := testkit.ServeConns(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	u := New("modern", Config{URL: mustURL(t, "https://"+addr), Timeout: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := u.RoundTrip(NewRequest(ctx, http.MethodGet, u.Target(mustURL(t, "/")), http.Header{}, nil))
	if took := time.Since(start); err == nil || ctx.Err() != nil || took > 5*time.Second {
		t.Errorf("a handshake never answered: %v after %v, want an error once the 300ms timeout passed", err, took)
	}
}

// CloneEndToEnd leaves out what RemoveHopByHop deletes and what its
// caller drops, and its values are its own: a field changed in place on
// the copy (a value rewritten, one appended) leaves the client's header
// as it came.
func TestCloneEndToEndKeepsTheEndToEndFieldsApart(t *testing.T) {
	h := http.Header{
		"Accept":       {"application/json"},
		"Connection":   {"keep-alive, X-Hop"},
		"X-Hop":        {"1"},
		"Keep-Alive":   {"timeout=5"},
		"Te":           {"trailers"},
		"X-Drop":       {"2"},
		"X-Two":        {"a", "b"},
		"X-Empty":      nil,
		"Content-Type": {"text/plain"},
	}
	out := CloneEndToEnd(h, 4, func(k string) bool { return k == "X-Drop" })
	want := http.Header{"Accept": {"application/json"}, "X-Two": {"a", "b"}, "X-Empty": nil, "Content-Type": {"text/plain"}}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %v, want %v", out, want)
	}
	out["Accept"][0] = "text/html"
	if got := h["Accept"][0]; got != "application/json" {
		t.Errorf("the client's Accept became %q", got)
	}
	// Each value has a capacity of its own: one appended to cannot
	// overwrite the next field's, which shares its allocation.
	for k := range out {
		out[k] = append(out[k], "more")
	}
	want = http.Header{"Accept": {"text/html", "more"}, "X-Two": {"a", "b", "more"}, "X-Empty": {"more"}, "Content-Type": {"text/plain", "more"}}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("appended to, the copy is %v, want %v", out, want)
	}
}
