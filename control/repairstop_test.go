package control

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/store"
)

// TestAnAdminStopsTheResendsOfAWrite: a write recovery keeps resending
// to a primary that does not answer is listed with its attempts, why it
// waits and its next try; an admin stops it with a reason, audited once,
// and it is unknown. What the stop does not apply to answers as the
// other repair actions do: 409 naming the state, 404 in the API's
// words, 400 for a missing reason, 403 for a viewer (audited as denied).
func TestAnAdminStopsTheResendsOfAWrite(t *testing.T) {
	p := newPlane(t)
	ctx := context.Background()
	p.journalWrite(t, "w-pending")
	in := domain.Intent{ID: "w-resent", Route: "update-patient", Resource: "/patients/42", Method: "PUT", Target: "/patients/42",
		Primary: "legacy", Body: []byte(`{"name":"Ada"}`)}
	if err := p.store.BeginWrite(ctx, in, -time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.ResendUnanswered(ctx, "w-resent", 0, "resent to the primary (legacy), which answered 503 Service Unavailable", time.Hour, false); err != nil {
		t.Fatal(err)
	}
	in.ID = "w-live"
	if err := p.store.BeginWrite(ctx, in, time.Hour); err != nil {
		t.Fatal(err)
	}

	resp, body := p.call(t, "GET", "/admin/repairs?state=sent", veraToken, "")
	listed, _ := body["repairs"].([]any)
	if resp.StatusCode != http.StatusOK || len(listed) != 2 {
		t.Fatalf("listing the sent writes: %d %v, want both", resp.StatusCode, body)
	}
	for _, item := range listed {
		r := item.(map[string]any)
		if r["id"] != "w-resent" {
			continue
		}
		nextText, _ := r["next_attempt_at"].(string)
		next, _ := time.Parse(time.RFC3339Nano, nextText)
		lastError, _ := r["last_error"].(string)
		if r["attempts"] != float64(1) || !strings.Contains(lastError, "answered 503") || time.Until(next) < 30*time.Minute {
			t.Errorf("the write being resent is listed as %v, want 1 attempt, the 503 and its next try in an hour", r)
		}
		if strings.Contains(r["resource"].(string), "/42") { // a hash may hold "42"
			t.Errorf("the listing names the patient: %v", r)
		}
	}

	for _, tc := range []struct {
		name, id, token, body string
		status                int
		says                  string
	}{
		{"a viewer", "w-resent", veraToken, `{"reason":"primary gone"}`, 403, "needs the admin role"},
		{"an operator", "w-resent", bobToken, `{"reason":"primary gone"}`, 403, "needs the admin role"},
		{"no reason", "w-resent", aliceToken, `{}`, 400, "a reason is required"},
		{"a blank reason", "w-resent", aliceToken, `{"reason":"  "}`, 400, "a reason is required"},
		{"a reason that is not UTF-8", "w-resent", aliceToken, "{\"reason\":\"gone \xff\"}", 400, "not valid UTF-8"},
		{"a reason of two lines", "w-resent", aliceToken, `{"reason":"gone\nrepair_stop by bob"}`, 400, "control character"},
		{"a made-up id", "w-404", aliceToken, `{"reason":"primary gone"}`, 404, "no such repair"},
		{"a write whose sender may still record its answer", "w-live", aliceToken, `{"reason":"primary gone"}`, 409, "may still record the primary's answer"},
		{"a write the primary applied", "w-pending", aliceToken, `{"reason":"primary gone"}`, 409, "it is pending, not sent"},
	} {
		resp, body := p.call(t, "POST", "/admin/repairs/"+tc.id+"/stop", tc.token, tc.body)
		if msg, _ := body["error"].(string); resp.StatusCode != tc.status || !strings.Contains(msg, tc.says) {
			t.Errorf("%s: got %d %v, want %d saying %q", tc.name, resp.StatusCode, body, tc.status, tc.says)
		}
	}
	if got := p.auditActions(t); slices.Contains(got, "alice repair_stop update-patient") {
		t.Errorf("refused stops left %q in the audit log", got)
	}

	resp, body = p.call(t, "POST", "/admin/repairs/w-resent/stop", aliceToken, `{"reason":"the primary is gone for the night"}`)
	if resp.StatusCode != http.StatusOK || body["state"] != "unknown" || body["attempts"] != float64(1) || body["next_attempt_at"] != nil {
		t.Fatalf("the stop: got %d %v, want 200, unknown, its attempt kept, no next try", resp.StatusCode, body)
	}
	resp, body = p.call(t, "POST", "/admin/repairs/w-resent/stop", aliceToken, `{"reason":"again"}`)
	if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict || !strings.Contains(msg, "it is unknown, not sent") {
		t.Errorf("a second stop: got %d %v, want 409 saying it is unknown", resp.StatusCode, body)
	}
	entries, err := p.store.AuditLog(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var stops []domain.AuditEntry
	for _, e := range entries {
		if e.Action == "repair_stop" {
			stops = append(stops, e)
		}
	}
	if len(stops) != 1 || stops[0].Actor != "alice" || stops[0].Route != "update-patient" || stops[0].Detail != "w-resent" ||
		stops[0].Reason != "the primary is gone for the night" {
		t.Errorf("repair_stop entries %+v, want alice's one, with her reason", stops)
	}
}
