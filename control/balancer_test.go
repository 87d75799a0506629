package control

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"strangler/config"
)

// TestCrossOriginProtectionBehindATLSBalancer: behind a real load
// balancer that ends TLS and speaks plain HTTP to the admin listener
// (admin.trusted_proxies), a browser's same-site login and change are
// taken, whether the browser sends Sec-Fetch-Site or only Origin (whose
// scheme, https, is not the listener's: the check compares hosts); a
// cross-site one is refused either way. A balancer that rewrites Host
// leaves only Sec-Fetch-Site to tell: a browser sending only Origin is
// refused there, as README says.
func TestCrossOriginProtectionBehindATLSBalancer(t *testing.T) {
	p := newPlane(t)
	var lb config.Prefix
	if err := lb.UnmarshalText([]byte("127.0.0.1/32")); err != nil {
		t.Fatal(err)
	}
	p.proxies.Set([]config.Prefix{lb})
	target, _ := url.Parse(p.URL)
	balancer := func(keepHost bool) *httptest.Server {
		s := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
			if keepHost {
				r.Out.Host = r.In.Host
			}
		}})
		t.Cleanup(s.Close)
		return s
	}
	for _, c := range []struct {
		name           string
		keepHost       bool
		origin, site   string // site "" sends no Sec-Fetch-Site
		wantLogin      int
		wantChange     int
		wantSecureSess bool
	}{
		{"same site, Sec-Fetch-Site", true, "self", "same-origin", http.StatusSeeOther, http.StatusOK, true},
		{"same site, Origin alone", true, "self", "", http.StatusSeeOther, http.StatusOK, true},
		{"cross site, Sec-Fetch-Site", true, "https://evil.example", "cross-site", http.StatusForbidden, http.StatusForbidden, false},
		{"cross site, Origin alone", true, "https://evil.example", "", http.StatusForbidden, http.StatusForbidden, false},
		{"Host rewritten, same site, Sec-Fetch-Site", false, "self", "same-origin", http.StatusSeeOther, http.StatusOK, true},
		{"Host rewritten, same site, Origin alone", false, "self", "", http.StatusForbidden, http.StatusForbidden, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := balancer(c.keepHost)
			origin := c.origin
			if origin == "self" {
				origin = s.URL
			}
			if !strings.HasPrefix(origin, "https://") {
				t.Fatalf("origin %q is not https", origin)
			}
			client := s.Client()
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			send := func(method, path, contentType, token, ifMatch, body string) *http.Response {
				req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
				req.Header.Set("Content-Type", contentType)
				req.Header.Set("Origin", origin)
				if c.site != "" {
					req.Header.Set("Sec-Fetch-Site", c.site)
				}
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				if ifMatch != "" {
					req.Header.Set("If-Match", ifMatch)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			login := send("POST", "/login", "application/x-www-form-urlencoded", "", "", "token="+aliceToken)
			if login.StatusCode != c.wantLogin {
				t.Errorf("login: got %d, want %d", login.StatusCode, c.wantLogin)
			}
			if secure := strings.Contains(login.Header.Get("Set-Cookie"), "; Secure"); secure != c.wantSecureSess {
				t.Errorf("login: cookie %q, want Secure %v", login.Header.Get("Set-Cookie"), c.wantSecureSess)
			}
			route, _ := p.call(t, "GET", "/admin/routes/create-patient", aliceToken, "")
			change := send("PATCH", "/admin/routes/create-patient", "application/json", aliceToken, route.Header.Get("ETag"),
				`{"mode":"legacy","reason":"ticket 7"}`)
			if change.StatusCode != c.wantChange {
				t.Errorf("change: got %d, want %d", change.StatusCode, c.wantChange)
			}
		})
	}
}
