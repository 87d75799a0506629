package control

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/domain"
)

// TestRefusalsWithoutCredentialsLeaveTheAuditLogAlone: a change refused
// to a caller that presented nothing (no token, a cross-site request
// without a valid one, a status page form without a session or from
// another site) is a security event (a log line and
// strangler_admin_denied_total), not an audit entry. Nothing rations
// such requests, so anyone who reaches the admin listener, or any web
// page an operator opens, filled the audit log with them: a thousand
// entries a second, pushing every flip off the status page's list, and
// each one a write to the store the dual-write journal writes to.
// A wrong token, which the lockout rations, is still audited.
func TestRefusalsWithoutCredentialsLeaveTheAuditLogAlone(t *testing.T) {
	p := newPlane(t)
	in := domain.Intent{ID: "w-1", Route: "create-patient", Resource: "/patients", Method: "POST", Target: "/patients", Primary: "legacy"}
	if err := p.store.BeginWrite(context.Background(), in, time.Minute); err != nil {
		t.Fatal(err)
	}
	const each = 25
	flip := `{"mode":"modern","reason":"go"}`
	form := url.Values{"csrf": {"x"}, "version": {"0"}, "mode": {"modern"}, "reason": {"go"}, "confirm": {"yes"}}.Encode()
	send := func(method, path, body, ctype string, header ...string) int {
		req, err := http.NewRequest(method, p.URL+path, strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0
		}
		req.Header.Set("Content-Type", ctype)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := p.Client().Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, method, path, body, ctype string
		header                          []string
		status                          int
		reason                          denyReason
	}{
		{"a change without a token", "PATCH", "/admin/routes/get-patient", flip, "application/json", []string{"If-Match", `"0"`}, 401, reasonMissingToken},
		{"a repair discard without a token", "DELETE", "/admin/repairs/w-1", `{"reason":"x"}`, "application/json", nil, 401, reasonMissingToken},
		{"a cross-site change without a token", "PATCH", "/admin/routes/get-patient", flip, "application/json", []string{"Sec-Fetch-Site", "cross-site"}, 403, reasonCrossOrigin},
		{"a cross-site status page form", "POST", "/ui/routes/get-patient", form, "application/x-www-form-urlencoded", []string{"Sec-Fetch-Site", "cross-site"}, 403, reasonCrossOrigin},
		{"a status page form without a session", "POST", "/ui/routes/get-patient", form, "application/x-www-form-urlencoded", nil, 403, reasonNoSession},
	} {
		t.Run(tc.name+" is a security event, not an audit entry", func(t *testing.T) {
			before := counterValue(t, p.reg, "strangler_admin_denied_total", string(tc.reason))
			var wg sync.WaitGroup
			for range each {
				wg.Go(func() {
					if got := send(tc.method, tc.path, tc.body, tc.ctype, tc.header...); got != tc.status {
						t.Errorf("got %d, want %d", got, tc.status)
					}
				})
			}
			wg.Wait()
			if got := counterValue(t, p.reg, "strangler_admin_denied_total", string(tc.reason)) - before; got != each {
				t.Errorf("strangler_admin_denied_total{reason=%q} rose by %v, want %d", tc.reason, got, each)
			}
			if got := p.auditActions(t); len(got) != 0 {
				t.Errorf("the audit log holds %d entries (%q ...), want none", len(got), got[0])
			}
		})
	}
	t.Run("a wrong token, which the lockout rations, is still audited", func(t *testing.T) {
		if got := send("PATCH", "/admin/routes/get-patient", flip, "application/json",
			"Authorization", "Bearer wrong-token-0123456789", "If-Match", `"0"`); got != 401 {
			t.Fatalf("got %d, want 401", got)
		}
		if got := p.auditActions(t); len(got) != 1 || got[0] != "unauthenticated denied get-patient" {
			t.Errorf("the audit log holds %q, want the wrong token's refusal", got)
		}
	})
}
