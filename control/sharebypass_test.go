package control

import (
	"net/http"
	"testing"
)

// TestAFlipBackThatGivesModernMoreClientsNeedsApproval: a route the file
// has at modern 10% is moved by one operator to fallback at 100%, an
// earlier stage, which was taken as a rollback: applied at once, with no
// gates and no second token name, while modern went from answering 10%
// of the clients to answering all of them (legacy only where modern
// fails). It is a change request like any other move forward; a move to
// fallback at the same share (the guard's rollback) or less still needs
// none.
func TestAFlipBackThatGivesModernMoreClientsNeedsApproval(t *testing.T) {
	routes := `
routes:
  - name: get-patient
    match: "GET /patients/{id}"
    mode: modern
    percent: 10
`
	for _, tc := range []struct {
		name, body string
		status     int
		served     string
	}{
		{"to fallback at 100%", `{"mode":"fallback","percent":100,"reason":"more clients"}`, http.StatusAccepted, "modern 10%"},
		{"to fallback at 10.01%", `{"mode":"fallback","percent":10.01,"reason":"more clients"}`, http.StatusAccepted, "modern 10%"},
		{"to fallback at the same 10%", `{"mode":"fallback","percent":10,"reason":"back"}`, http.StatusOK, "fallback 10%"},
		{"to fallback at 5%", `{"mode":"fallback","percent":5,"reason":"back"}`, http.StatusOK, "fallback 5%"},
		{"to legacy", `{"mode":"legacy","reason":"back"}`, http.StatusOK, "legacy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlaneWith(t, planeOptions{yaml: "approvals: 2\n", routes: routes})
			resp, out := p.patch(t, "get-patient", bobToken, tc.body)
			if resp.StatusCode != tc.status {
				t.Errorf("got %d %v, want %d", resp.StatusCode, out, tc.status)
			}
			if got := p.served("get-patient"); got != tc.served {
				t.Errorf("get-patient serves %s, want %s", got, tc.served)
			}
		})
	}
}

// TestAFlipToShadowWithModernAsPrimaryNeedsApproval: on a route whose
// primary is modern, shadow has modern answer every client, with no
// fallback; from fallback at 10% it is an earlier stage, and one
// operator applied it at once. It is a change request; with legacy the
// primary it is the rollback it looks like.
func TestAFlipToShadowWithModernAsPrimaryNeedsApproval(t *testing.T) {
	for _, tc := range []struct {
		primary string
		status  int
		served  string
	}{
		{"modern", http.StatusAccepted, "fallback 10%"},
		{"legacy", http.StatusOK, "shadow"},
	} {
		t.Run("primary "+tc.primary, func(t *testing.T) {
			p := newPlaneWith(t, planeOptions{yaml: "approvals: 2\n", routes: `
routes:
  - name: get-patient
    match: "GET /patients/{id}"
    mode: fallback
    percent: 10
    primary: ` + tc.primary + "\n"})
			resp, out := p.patch(t, "get-patient", bobToken, `{"mode":"shadow","reason":"compare again"}`)
			if resp.StatusCode != tc.status {
				t.Errorf("got %d %v, want %d", resp.StatusCode, out, tc.status)
			}
			if got := p.served("get-patient"); got != tc.served {
				t.Errorf("get-patient serves %s, want %s", got, tc.served)
			}
		})
	}
}
