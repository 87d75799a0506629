package router

import (
	"testing"
	"time"
)

func TestNotFoundFallbacksThatLegacyAlsoLacksAreConfirmedMissing(t *testing.T) {
	modern := newBackend(t, answer(404, `{"error":"no such patient"}`))
	for _, tc := range []struct {
		name         string
		legacyStatus int
		reason       string
		// gap says the fallback is a migration gap: counted as a fallback
		// and its key queued for read repair.
		gap bool
	}{
		{"legacy answering 404 too", 404, "confirmed_missing", false},
		{"legacy answering 410 Gone", 410, "confirmed_missing", false},
		{"legacy having the patient", 200, "not_found", true},
		{"legacy failing", 500, "not_found", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			legacy := newBackend(t, answer(tc.legacyStatus, `{"from":"legacy"}`))
			f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback, entity: patients, read_repair: true}
`)
			resp, body := f.get(t, "/patients/4711")
			if resp.StatusCode != tc.legacyStatus || body != `{"from":"legacy"}` {
				t.Fatalf("got %d %s, want legacy's answer: the client gets it either way", resp.StatusCode, body)
			}
			if got := f.metric(t, "strangler_fallback_total", map[string]string{"route": "get-patient", "reason": tc.reason}); got != 1 {
				t.Errorf("strangler_fallback_total{reason=%q} = %v, want 1", tc.reason, got)
			}
			other := map[string]string{"not_found": "confirmed_missing", "confirmed_missing": "not_found"}[tc.reason]
			if got := f.metric(t, "strangler_fallback_total", map[string]string{"route": "get-patient", "reason": other}); got != 0 {
				t.Errorf("strangler_fallback_total{reason=%q} = %v, want 0", other, got)
			}
			lines := f.logLines(t, "fallback")
			if len(lines) != 1 || lines[0]["reason"] != tc.reason || lines[0]["legacy_status"] != float64(tc.legacyStatus) {
				t.Errorf("got fallback log lines %v, want one with reason %s and legacy_status %d", lines, tc.reason, tc.legacyStatus)
			}
			w := f.router.deps.Stats.Window("get-patient", time.Now(), time.Minute)
			wantFallbacks, wantMissing := int64(0), int64(1)
			if tc.gap {
				wantFallbacks, wantMissing = 1, 0
			}
			if w.Fallbacks != wantFallbacks || w.ConfirmedMissing != wantMissing {
				t.Errorf("the route counts %d fallbacks and %d confirmed missing, want %d and %d",
					w.Fallbacks, w.ConfirmedMissing, wantFallbacks, wantMissing)
			}
			queued := len(f.router.repairs.ch)
			if tc.gap && queued != 1 || !tc.gap && queued != 0 {
				t.Errorf("%d keys queued for read repair, want %d: only a patient legacy has can be copied", queued, wantFallbacks)
			}
		})
	}
}
