package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	bobE2EToken   = "bob-e2e-token-0123456789"
	aliceE2EToken = "alice-e2e-token-0123456789"
)

// writeApprovalsConfig writes a configuration whose routes need four
// eyes, with bob's and alice's operator tokens and the route p in mode.
func writeApprovalsConfig(t *testing.T, path, mode string) {
	t.Helper()
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens:
    - { name: bob, token: %q, role: operator }
    - { name: alice, token: %q, role: operator }
approvals: 2
backends:
  legacy: { url: "http://127.0.0.1:1" }
  modern: { url: "http://127.0.0.1:1" }
store: "sqlite:%s"
routes:
  - { name: p, match: "GET /p/{id}", mode: %s }
`, bobE2EToken, aliceE2EToken, filepath.Join(filepath.Dir(path), "strangler.db"), mode)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tokenCall calls the admin API at admin with token, and decodes the
// JSON answer.
func tokenCall(t *testing.T, admin, token, method, path, ifMatch, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := e2eClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.NewDecoder(bytes.NewReader(b)).Decode(&out)
	return resp.StatusCode, out
}

// TestAChangeRequestOutlivedByAReloadIsVoid runs strangler as a process:
// bob asks to move p from legacy to shadow; the configuration file is
// changed to put p in fallback, and reloaded (SIGHUP); alice's approval
// then applies nothing (409), p stays in fallback, the request is stale,
// and the audit chain verifies.
func TestAChangeRequestOutlivedByAReloadIsVoid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strangler.yaml")
	writeApprovalsConfig(t, path, "legacy")
	p := startProcess(t, "serve", "--config", path)

	code, out := tokenCall(t, p.admin, bobE2EToken, "PATCH", "/admin/routes/p", `"0"`, `{"mode": "shadow", "reason": "copy reads"}`)
	cr, _ := out["change_request"].(map[string]any)
	if code != http.StatusAccepted || cr == nil {
		t.Fatalf("bob's flip: got %d %v, want 202 with a change request", code, out)
	}
	id := int64(cr["id"].(float64))

	writeApprovalsConfig(t, path, "fallback")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.logs.waitFor(t, "config reloaded", map[string]any{"cause": "SIGHUP"}, 15*time.Second)

	code, out = tokenCall(t, p.admin, aliceE2EToken, "POST", fmt.Sprintf("/admin/changes/%d/approve", id), "", `{}`)
	if msg, _ := out["error"].(string); code != http.StatusConflict || !strings.Contains(msg, "p changed since the request was made: it is fallback") {
		t.Errorf("alice's approval: got %d %v, want 409 saying p is fallback now", code, out)
	}
	if _, route := tokenCall(t, p.admin, aliceE2EToken, "GET", "/admin/routes/p", "", ""); route["mode"] != "fallback" {
		t.Errorf("p is %v, want fallback, as the file says", route["mode"])
	}
	if _, c := tokenCall(t, p.admin, aliceE2EToken, "GET", fmt.Sprintf("/admin/changes/%d", id), "", ""); c["state"] != "stale" {
		t.Errorf("the request is %v, want stale", c["state"])
	}
	verify, err := runCLI(t, "audit", "verify", "--config", path)
	if err != nil || !strings.HasPrefix(verify, "OK: ") {
		t.Errorf("audit verify: %v %q, want OK", err, verify)
	}
}
