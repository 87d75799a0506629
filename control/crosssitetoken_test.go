package control

import (
	"net/http"
	"testing"
)

// TestACrossSiteChangeWithTheRightTokenIsRefused: a change marked as sent
// from another site (Sec-Fetch-Site: cross-site, or an Origin of
// another) that carries alice's right token is refused 403 once the
// token is compared, and the route stays as it was. Mutation round mut5:
// authenticate letting a right token through whatever the request's site
// (the refusal after the comparison dropped) passed every test, which
// sent only wrong tokens cross-site, or right ones from a locked-out
// address; this one fails on it (the route flipped to modern, 200).
func TestACrossSiteChangeWithTheRightTokenIsRefused(t *testing.T) {
	for _, marked := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://elsewhere.example"},
	} {
		t.Run(marked[0], func(t *testing.T) {
			p := newPlane(t)
			resp, body := p.call(t, "PATCH", "/admin/routes/get-patient", aliceToken, `{"mode":"modern","reason":"cross-site"}`,
				append([]string{"If-Match", `"0"`}, marked...)...)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("alice's change sent cross-site (%s): got %d %v, want 403", marked[0], resp.StatusCode, body)
			}
			if got := p.mode("get-patient"); got != "fallback" {
				t.Errorf("get-patient is %s, want fallback: a cross-site change went through", got)
			}
		})
	}
}
