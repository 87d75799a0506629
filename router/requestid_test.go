package router

import (
	"net/http"
	"strings"
	"testing"
)

// TestAHostileRequestIDIsReplacedEverywhere: the client's X-Request-Id
// reaches the backend and the log only when it is a sane
// token (printable ASCII without spaces, at most 128 bytes); anything
// else (very long, a tab, non-ASCII, a patient's name with its space) is
// replaced by a generated id, the same in both, and the log never
// holds what the client sent.
func TestAHostileRequestIDIsReplacedEverywhere(t *testing.T) {
	legacy := newBackend(t, answer(200, `{"from":"legacy"}`))
	modern := newBackend(t, answer(404, `{}`))
	for _, tc := range []struct {
		name, id string
		kept     bool
	}{
		{"a token of 128 bytes is kept", strings.Repeat("a", 128), true},
		{"one of 129 bytes is replaced", strings.Repeat("b", 129), false},
		{"one of 8 KiB is replaced", strings.Repeat("c", 8<<10), false},
		{"one with a tab is replaced", "req\t42", false},
		{"a non-ASCII one is replaced", "Jöns-Ågren", false},
		{"a patient's name is replaced", "Jane Doe 1970-01-01", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFacade(t, legacy.URL, modern.URL, "", `  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}`)
			req, _ := http.NewRequest(http.MethodGet, f.URL+"/patients/7", nil)
			req.Header.Set("X-Request-Id", tc.id)
			f.do(t, req)
			sent := legacy.last(t).Header.Get("X-Request-Id")
			lines := f.logLines(t, "fallback")
			if len(lines) != 1 {
				t.Fatalf("got %d fallback log lines, want 1:\n%s", len(lines), f.logs)
			}
			logged, _ := lines[0]["request_id"].(string)
			if sent != logged {
				t.Errorf("the backend got %q, the log %q; want one id", sent, logged)
			}
			if tc.kept {
				if logged != tc.id {
					t.Errorf("the id %q was replaced by %q", tc.id, logged)
				}
				return
			}
			if len(logged) != 36 {
				t.Errorf("the id was replaced by %q, want a generated UUID", logged)
			}
			if strings.Contains(f.logs.String(), tc.id) {
				t.Errorf("the log holds the client's id %q", tc.id)
			}
		})
	}
}
