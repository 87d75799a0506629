package control

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"strangler/config/configfile"
	"strangler/force"
	"strangler/store"
)

// reconfigure gives the plane's flags another configuration file: the
// test plane's admin tokens with extra top-level YAML and routes.
func reconfigure(t *testing.T, p *plane, extra, routes string) {
	t.Helper()
	cfg, err := configfile.Parse("test.yaml", []byte(`
admin:
  tokens:
    - { name: alice, token: "`+aliceToken+`", role: admin }
    - { name: bob, token: "`+bobToken+`", role: operator }
    - { name: vera, token: "`+veraToken+`", role: viewer }
backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: "http://modern.internal" }
`+extra+"\nroutes:\n"+routes), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.flags.SetFile(cfg); err != nil {
		t.Fatal(err)
	}
}

const forceRoutes = `
  - { name: get-patient, match: "GET /patients/{id}", mode: fallback }
  - { name: update-patient, match: "PUT /patients/{id}", mode: dual-write }
  - { name: list-photos, match: "GET /photos", mode: legacy }
`

func TestForceTokensAreIssuedSignedAndAudited(t *testing.T) {
	p := newPlane(t)
	secret := [32]byte{'k', 'e', 'y'}
	reconfigure(t, p, "force_token_key: "+hex.EncodeToString(secret[:]), forceRoutes)

	resp, body := p.call(t, "POST", "/admin/routes/get-patient/force-token", aliceToken, `{"backend":"modern","ttl":"30m","reason":"QA checks the new photo API"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("got %d %v, want 201", resp.StatusCode, body)
	}
	value, _ := body["value"].(string)
	claim, err := force.NewKey(secret).Verify(value, p.clock.Now())
	if err != nil {
		t.Fatalf("the value does not verify under the configured key: %v", err)
	}
	if want := p.clock.Now().Add(30 * time.Minute); claim.Route != "get-patient" || claim.Backend != "modern" || !claim.Expires.Equal(want) {
		t.Errorf("claim %+v, want get-patient, modern, until %v", claim, want)
	}
	if body["header"] != "X-Strangler-Force" || body["id"] != claim.ID || body["ttl_seconds"] != 1800.0 {
		t.Errorf("answer %v, want the header name, the claim's id and 1800 seconds", body)
	}
	if _, err := force.NewKey(secret).Verify(value, p.clock.Now().Add(30*time.Minute)); err == nil {
		t.Error("the value still verifies after its 30 minutes")
	}
	entries, err := p.store.AuditLog(context.Background(), store.AuditFilter{Route: "get-patient"})
	if err != nil {
		t.Fatal(err)
	}
	e := entries[0]
	if e.Action != "force_token" || e.Actor != "alice" || e.Reason != "QA checks the new photo API" || !strings.Contains(e.Detail, claim.ID) || strings.Contains(e.Detail, value) {
		t.Errorf("audit entry %+v, want alice's force_token naming the id, never the value", e)
	}

	t.Run("the default is an hour", func(t *testing.T) {
		_, body := p.call(t, "POST", "/admin/routes/list-photos/force-token", bobToken, `{"backend":"legacy"}`)
		if body["ttl_seconds"] != 3600.0 || body["backend"] != "legacy" {
			t.Errorf("got %v, want legacy for 3600 seconds", body)
		}
	})

	for _, tc := range []struct {
		name, route, body string
		status            int
		says              string
	}{
		{"a dual-write route", "update-patient", `{"backend":"modern"}`, 409, "dual-write routes take no force tokens"},
		{"no backend", "get-patient", `{"ttl":"1h"}`, 400, "say which backend"},
		{"an unknown backend", "get-patient", `{"backend":"staging"}`, 400, `unknown backend "staging"`},
		{"a week", "get-patient", `{"backend":"modern","ttl":"7d"}`, 400, "is not from 1m0s to 24h0m0s"},
		{"a bad ttl", "get-patient", `{"backend":"modern","ttl":"soon"}`, 400, "ttl: invalid duration"},
		{"no such route", "nope", `{"backend":"modern"}`, 404, "no such route"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			resp, body := p.call(t, "POST", "/admin/routes/"+tc.route+"/force-token", aliceToken, tc.body)
			if msg, _ := body["error"].(string); resp.StatusCode != tc.status || !strings.Contains(msg, tc.says) {
				t.Errorf("got %d %v, want %d saying %q", resp.StatusCode, body, tc.status, tc.says)
			}
			if _, ok := body["value"]; ok {
				t.Error("a refusal carries a value")
			}
		})
	}
	t.Run("the refusal on a dual-write route is audited", func(t *testing.T) {
		if got := p.auditActions(t)[0]; got != "alice denied update-patient" {
			t.Errorf("newest audit entry %q, want alice's denial on update-patient", got)
		}
	})
	t.Run("without a token nothing is issued", func(t *testing.T) {
		if resp, _ := p.call(t, "POST", "/admin/routes/get-patient/force-token", "", `{"backend":"modern"}`); resp.StatusCode != 401 {
			t.Errorf("got %d, want 401", resp.StatusCode)
		}
	})
	t.Run("a viewer is refused: it takes the operator role", func(t *testing.T) {
		resp, body := p.call(t, "POST", "/admin/routes/get-patient/force-token", veraToken, `{"backend":"modern"}`)
		if resp.StatusCode != 403 || body["needs_role"] != "operator" {
			t.Errorf("got %d %v, want 403 naming the operator role", resp.StatusCode, body)
		}
	})
	t.Run("without force_token_key the endpoint says force tokens are off", func(t *testing.T) {
		reconfigure(t, p, "", forceRoutes)
		resp, body := p.call(t, "POST", "/admin/routes/get-patient/force-token", aliceToken, `{"backend":"modern"}`)
		if msg, _ := body["error"].(string); resp.StatusCode != 409 || !strings.Contains(msg, "force tokens are off: set force_token_key") {
			t.Errorf("got %d %v, want 409 saying force tokens are off", resp.StatusCode, body)
		}
	})
}
