package control

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"strangler/domain"
)

// TestClientFollowsNoRedirectOfAnyKind: 307 and 308 keep the method and
// body (so a flip would be sent on, with its token, had the client
// followed them), and 303 turns it into a GET: each is an error naming
// where it points, as 301 and 302 are, and the password of an --admin URL
// written with one stays out of it. Mutation round mut5: the client
// taking only 301 and 302 for redirects, or naming --admin unredacted,
// passed every test; this one fails on each.
func TestClientFollowsNoRedirectOfAnyKind(t *testing.T) {
	p := newPlane(t)
	for _, code := range []int{http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, p.URL+r.URL.RequestURI(), code)
			}))
			defer redirector.Close()
			base, _ := url.Parse(redirector.URL)
			base.User = url.UserPassword("operator", "s3cret-in-the-url")
			_, err := NewClient(base, bobToken).Send(context.Background(), http.MethodPatch, "/admin/routes/get-patient",
				map[string]any{"mode": "modern", "reason": "through a redirect"}, `"0"`, nil)
			if err == nil || !strings.Contains(err.Error(), "redirecting to "+p.URL) {
				t.Errorf("a flip through a %d: got error %v, want one saying it redirects to %s", code, err, p.URL)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret-in-the-url") {
				t.Errorf("the error names --admin's password: %v", err)
			}
		})
	}
	if got := p.mode("get-patient"); got != domain.ModeFallback {
		t.Errorf("get-patient is %s, want fallback", got)
	}
}
