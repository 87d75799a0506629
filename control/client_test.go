package control

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"strangler/domain"
)

// TestClientSendsAnEscapedPathOnce: a name the caller escaped reaches the
// admin API as that name, not escaped a second time.
func TestClientSendsAnEscapedPathOnce(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.EscapedPath()
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL + "/base")
	c := NewClient(base, "t")
	if _, err := c.Call(context.Background(), http.MethodGet, "/admin/routes/"+url.PathEscape("a b/c"), nil, nil, ""); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != "/base/admin/routes/a%20b%2Fc" {
		t.Errorf("the API got %s, want /base/admin/routes/a%%20b%%2Fc", p)
	}
}

// TestClientErrorsActOnNoTerminal: the CLI prints an answer's error
// message; whatever answers at --admin (a garbled proxy, another
// program) must not reach the operator's terminal with an escape
// sequence, a C1 control or a bidirectional override through it.
func TestClientErrorsActOnNoTerminal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error": "no\u001b]0;pwned\u0007 such\u009b2J repair\u202e"}`))
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	_, err := NewClient(base, "t").Call(context.Background(), http.MethodGet, "/admin/repairs/1", nil, nil, "")
	if err == nil {
		t.Fatal("a 409 is no error")
	}
	if got, want := err.Error(), `no\u001b]0;pwned\u0007 such\u009b2J repair\u202e`; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

// TestClientFollowsNoRedirect: a redirect in front of the admin API (a
// load balancer sending http to https, an old address) turned the CLI's
// PATCH into a GET of the same path, as Go's client does for 301 and
// 302, and the GET's 200 read as the change's: routes set printed
// "get-patient: fallback -> fallback" and exited 0, nothing changed or
// audited; and the token went on to wherever the redirect pointed on
// that host. The client now follows none: a redirect is an error naming
// where it points, and only the first request carries the token.
func TestClientFollowsNoRedirect(t *testing.T) {
	p := newPlane(t)
	var tokensSent atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			tokensSent.Add(1)
		}
		w.Write([]byte("{}"))
	}))
	defer elsewhere.Close()
	var target atomic.Value
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.Load().(string)+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	defer redirector.Close()
	base, _ := url.Parse(redirector.URL)
	for _, tc := range []struct{ name, to string }{
		{"a redirect to the admin API", p.URL},
		{"a redirect to another port of the host", elsewhere.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target.Store(tc.to)
			_, err := NewClient(base, bobToken).Send(context.Background(), http.MethodPatch, "/admin/routes/get-patient",
				map[string]any{"mode": "modern", "reason": "through a redirect"}, `"0"`, nil)
			if err == nil || !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), tc.to) {
				t.Errorf("a flip through a redirect: got error %v, want one saying it redirects to %s", err, tc.to)
			}
		})
	}
	if got := tokensSent.Load(); got != 0 {
		t.Errorf("the token was sent on to where the redirect pointed %d times", got)
	}
	if got := p.mode("get-patient"); got != domain.ModeFallback {
		t.Errorf("get-patient is %s, want fallback", got)
	}
}
