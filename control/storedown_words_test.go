package control

import (
	"net/http"
	"strings"
	"testing"
)

// TestAStoreOutageIsAnsweredInTheAPIsWords: with the state store gone, a
// read (the retirement report, the audit log, the repair queue) answers
// 503 saying the store is unavailable, not the store's or the database
// driver's error (which names tables, hosts and Go packages; with
// PostgreSQL the server's address) and not that a flip was refused,
// which nobody asked for.
func TestAStoreOutageIsAnsweredInTheAPIsWords(t *testing.T) {
	p := newPlane(t)
	p.store.Close()
	for _, path := range []string{"/admin/report", "/admin/routes/get-patient/report", "/admin/audit", "/admin/repairs"} {
		t.Run(path, func(t *testing.T) {
			resp, body := p.call(t, "GET", path, veraToken, "")
			msg, _ := body["error"].(string)
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(msg, "the state store is unavailable") {
				t.Errorf("got %d %q, want 503 saying the state store is unavailable", resp.StatusCode, msg)
			}
			for _, w := range []string{"sql", "store:", "database", "flip"} {
				if strings.Contains(msg, w) {
					t.Errorf("the error %q holds %q", msg, w)
				}
			}
		})
	}
}
