package control

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestACrossSiteHeaderDoesNotExemptATokenFromTheLockout: a change marked
// as sent from another site (Sec-Fetch-Site: cross-site, which any
// client can write) with a bearer token had its token compared before
// the lockout was asked, and a wrong one was not counted: twenty wrong
// tokens from one address locked nothing out, and a right one was told
// apart from the wrong ones (its refusal was audited naming its holder),
// so the header turned the lockout off for whoever sent it. No browser
// sends a bearer token to another site, so such a request is no
// operator's browser: its token is checked and counted like any other.
func TestACrossSiteHeaderDoesNotExemptATokenFromTheLockout(t *testing.T) {
	p := newPlane(t)
	flip := `{"mode":"modern","reason":"guessing"}`
	crossSite := []string{"If-Match", `"0"`, "Sec-Fetch-Site", "cross-site"}
	before := deniedCounts(t, p.reg)
	for i := range 2 * maxFailures {
		resp, body := p.call(t, "PATCH", "/admin/routes/get-patient", fmt.Sprintf("guess-%04d-xxxxxxxxxxxx", i), flip, crossSite...)
		if resp.StatusCode < 400 {
			t.Fatalf("a cross-site guess: got %d %v, want a refusal", resp.StatusCode, body)
		}
	}
	if got := counterValue(t, p.reg, "strangler_admin_denied_total", "invalid_token") - before["invalid_token"]; got < maxFailures {
		t.Errorf("%v of %d cross-site guesses were counted as wrong tokens, want at least %d (the lockout's limit)", got, 2*maxFailures, maxFailures)
	}
	if resp, body := p.call(t, "GET", "/admin/routes", "guess-after-xxxxxxxxxxxx", ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a guess from the same address after %d cross-site ones: got %d %v, want 429 (locked out)", 2*maxFailures, resp.StatusCode, body)
	}
	resp, _ := p.call(t, "PATCH", "/admin/routes/get-patient", aliceToken, flip, crossSite...)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("alice's token sent cross-site from the locked address: got %d, want 429 (not compared)", resp.StatusCode)
	}
	for _, a := range p.auditActions(t) {
		if strings.HasPrefix(a, "alice ") {
			t.Errorf("the audit log holds %q: alice's token sent cross-site from a locked address was compared", a)
		}
	}
	if p.mode("get-patient") != "fallback" {
		t.Errorf("get-patient is %s, want fallback: a cross-site change went through", p.mode("get-patient"))
	}
}
