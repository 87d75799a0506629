package router

import (
	"net/http"
	"strings"
	"testing"
)

// TestRedirectsToABackendsAddressReachTheClientAsPathsOnTheFacade: a
// backend that builds a redirect or a created resource's URL from its own
// address (or, mid-migration, from the other backend's) sent the client
// to an address only the facade reaches, naming the backends' internal
// hosts and ports: 4 of 4 answers below did. Each is a path on the
// facade now, on every mode, and a Location elsewhere is left as it was.
func TestRedirectsToABackendsAddressReachTheClientAsPathsOnTheFacade(t *testing.T) {
	var legacyURL, modernURL string
	redirect := func(self bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			switch {
			case !self && strings.HasPrefix(r.URL.Path, "/fb/"):
				w.WriteHeader(http.StatusNotFound) // legacy answers it
				return
			case strings.HasSuffix(r.URL.Path, "/elsewhere"):
				w.Header().Set("Location", "https://login.example.com/sso?back=1")
			case self:
				w.Header().Set("Location", legacyURL+"/login?next=%2Fp")
			default: // modern sends the client to legacy
				w.Header().Set("Location", legacyURL+"/login?next=%2Fp")
				w.Header().Set("Content-Location", modernURL+"/patients/7")
			}
			w.WriteHeader(http.StatusFound)
		}
	}
	legacy := newBackend(t, redirect(true))
	modern := newBackend(t, redirect(false))
	legacyURL, modernURL = legacy.URL, modern.URL
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: leg, match: "GET /leg/{how}", mode: legacy}
  - {name: mod, match: "GET /mod/{how}", mode: modern}
  - {name: fb, match: "GET /fb/{how}", mode: fallback}
  - {name: sh, match: "GET /sh/{how}", mode: shadow}`)
	f.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct{ path, location, contentLocation string }{
		{"/leg/x", "/login?next=%2Fp", ""},
		{"/mod/x", "/login?next=%2Fp", "/patients/7"},
		{"/fb/x", "/login?next=%2Fp", ""},
		{"/sh/x", "/login?next=%2Fp", ""},
		{"/leg/elsewhere", "https://login.example.com/sso?back=1", ""},
	} {
		resp, _ := f.get(t, tc.path)
		if got := resp.Header.Get("Location"); got != tc.location {
			t.Errorf("%s: Location %q, want %q", tc.path, got, tc.location)
		}
		if got := resp.Header.Get("Content-Location"); got != tc.contentLocation {
			t.Errorf("%s: Content-Location %q, want %q", tc.path, got, tc.contentLocation)
		}
	}
}

// TestShadowComparesLocationsAsTheClientGetsThem: with Location among
// compare.headers, two backends that each redirect to their own address
// were a mismatch on every request (the primary's address against the
// other's). Both are compared as the client gets them, paths on the
// facade, and agree.
func TestShadowComparesLocationsAsTheClientGetsThem(t *testing.T) {
	self := func(url *string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", *url+"/login?next="+r.URL.Path)
			w.WriteHeader(http.StatusFound)
		}
	}
	var legacyURL, modernURL string
	legacy, modern := newBackend(t, self(&legacyURL)), newBackend(t, self(&modernURL))
	legacyURL, modernURL = legacy.URL, modern.URL
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: sh, match: "GET /sh/{how}", mode: shadow, compare: {headers: [Location]}}`)
	f.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, _ := f.get(t, "/sh/x"); resp.Header.Get("Location") != "/login?next=/sh/x" {
		t.Fatalf("Location %q", resp.Header.Get("Location"))
	}
	if got := f.comparisons(t, "sh", 1); got["match"] != 1 {
		t.Errorf("comparisons %v, want one match", got)
	}
}
