package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRolesAndExpiryEndToEnd: the facade as run warns about a token that
// expires in 3 days in its log and /readyz (still 200); a viewer's flip
// is refused with 403 naming the role, logged as a security event and
// counted in strangler_admin_denied_total.
func TestRolesAndExpiryEndToEnd(t *testing.T) {
	const opsToken, viewerToken = "ops-token-0123456789abc", "viewer-token-0123456789"
	expires := time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly)
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens:
    - { name: ops, token: %q, role: operator, expires: %s }
    - { name: auditor, token: %q, role: viewer }
backends:
  legacy: { url: "http://127.0.0.1:1" }
  modern: { url: "http://127.0.0.1:1" }
shutdown: { delay: 0s, grace: 2s }
store: "sqlite:%s"
routes:
  - { name: flag, match: "GET /flag", mode: legacy }
`, opsToken, expires, viewerToken, filepath.Join(dir, "strangler.db"))
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, "serve", "--config", path)

	r.logs.waitFor(t, "admin token expires soon; renew it", map[string]any{"token_name": "ops", "expires": expires}, 10*time.Second)
	code, ready := getBody(t, "http://"+r.admin+"/readyz")
	if want := `warning: an admin token expires at the end of ` + expires + " (UTC), in"; code != http.StatusOK || !strings.HasPrefix(ready, "ready\n") || !strings.Contains(ready, want) {
		t.Errorf("/readyz: got %d %q, want 200, ready, with %q", code, ready, want)
	}

	req, _ := http.NewRequest("PATCH", "http://"+r.admin+"/admin/routes/flag", strings.NewReader(`{"mode":"modern","reason":"try"}`))
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", `"0"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's flip: got %d, want 403", resp.StatusCode)
	}
	r.logs.waitFor(t, "security", map[string]any{"actor": "auditor", "reason": "role", "action": "PATCH /admin/routes/{name}", "remote_addr": "127.0.0.1"}, 5*time.Second)
	if got := metricValue(t, r.admin, `strangler_admin_denied_total{reason="role"}`); got != "1" {
		t.Errorf(`strangler_admin_denied_total{reason="role"} = %q, want 1`, got)
	}
	if got := metricValue(t, r.admin, `strangler_admin_denied_total{reason="invalid_token"}`); got != "0" {
		t.Errorf(`strangler_admin_denied_total{reason="invalid_token"} = %q, want 0 before any`, got)
	}
	for _, secret := range []string{opsToken, viewerToken} {
		if strings.Contains(r.logs.String(), secret) {
			t.Errorf("the log holds the token %q", secret)
		}
	}
}
