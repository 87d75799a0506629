package control

import (
	"net/http"
	"testing"

	"strangler/internal/testdb"
)

// TestAnETagReadBeforeAClearMatchesNoStateAfterIt: carol reads the route
// after alice set it to modern; alice clears it, reads it without an
// override and sets it to fallback 10% at that ETag. Carol's change,
// sent with the ETag she read, is refused (412, with the route as it
// is), on either store. Before, the clear took the version back to 0
// and alice's flip made it 1 again, the ETag carol held: her change
// overwrote alice's flip, which she had never seen.
func TestAnETagReadBeforeAClearMatchesNoStateAfterIt(t *testing.T) {
	for _, tc := range []struct{ name, dsn string }{{"sqlite", ""}, {"postgres", testdb.Postgres(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlaneWith(t, planeOptions{dsn: tc.dsn})
			const path = "/admin/routes/get-patient"
			send := func(etag, body string) (*http.Response, map[string]any) {
				t.Helper()
				return p.call(t, "PATCH", path, aliceToken, body, "If-Match", etag)
			}
			resp, _ := p.call(t, "GET", path, aliceToken, "")
			resp, body := send(resp.Header.Get("ETag"), `{"mode": "modern", "reason": "cut over"}`)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("alice's flip to modern: got %d %v, want 200", resp.StatusCode, body)
			}
			resp, _ = p.call(t, "GET", path, aliceToken, "")
			carols := resp.Header.Get("ETag")

			resp, body = send(carols, `{"clear": true, "reason": "back to the file"}`)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("alice's clear: got %d %v, want 200", resp.StatusCode, body)
			}
			resp, _ = p.call(t, "GET", path, aliceToken, "")
			cleared := resp.Header.Get("ETag")
			if cleared == carols {
				t.Fatalf("the route without an override has the ETag %s it had with it", cleared)
			}
			resp, body = send(cleared, `{"mode": "fallback", "percent": 10, "reason": "start over"}`)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("alice's flip at the ETag of the route without an override: got %d %v, want 200", resp.StatusCode, body)
			}
			now := resp.Header.Get("ETag")

			for _, change := range []string{`{"mode": "legacy", "reason": "roll back"}`, `{"clear": true, "reason": "roll back"}`} {
				resp, body = send(carols, change)
				cur, _ := body["current"].(map[string]any)
				if resp.StatusCode != http.StatusPreconditionFailed || cur == nil || cur["mode"] != "fallback" || cur["percent"] != 10.0 || resp.Header.Get("ETag") != now {
					t.Errorf("carol's %s at the ETag %s she read before the clear: got %d %v, ETag %s; want 412 with the route as it is, fallback 10%% at %s",
						change, carols, resp.StatusCode, body, resp.Header.Get("ETag"), now)
				}
			}
			if got, want := p.served("get-patient"), "fallback 10%"; got != want {
				t.Errorf("the route serves %s, want alice's %s", got, want)
			}
		})
	}
}

// TestIfMatchTakesAWeakETagAndAnEmptyOneAsNone: W/"0" names version 0
// as "0" does, and an If-Match line left empty is a change sent without
// an ETag (428, naming where to read one), not a malformed ETag (400).
func TestIfMatchTakesAWeakETagAndAnEmptyOneAsNone(t *testing.T) {
	p := newPlane(t)
	const path, flip = "/admin/routes/get-patient", `{"mode": "legacy", "reason": "roll back"}`
	if resp, body := p.call(t, "PATCH", path, aliceToken, flip, "If-Match", ""); resp.StatusCode != http.StatusPreconditionRequired {
		t.Errorf("a flip with an empty If-Match: got %d %v, want 428", resp.StatusCode, body)
	}
	if resp, body := p.call(t, "PATCH", path, aliceToken, flip, "If-Match", `W/"0"`); resp.StatusCode != http.StatusOK {
		t.Errorf(`a flip with If-Match: W/"0": got %d %v, want 200`, resp.StatusCode, body)
	}
	if got, want := p.served("get-patient"), "legacy"; got != want {
		t.Errorf("the route serves %s, want %s", got, want)
	}
}
