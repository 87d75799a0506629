package main

import (
	"strings"
	"testing"

	"strangler/domain"
)

// TestAnAuditEntryWithOddTextExportsAsItsHashCoversIt: text that reaches
// the audit log from elsewhere than a checked reason (a backend's error
// message in a detail, a name) may hold a NUL, invalid UTF-8, line and
// paragraph separators, quotes, markup or a formula's first character.
// On PostgreSQL (which refuses NUL and invalid UTF-8) it is stored, the
// chain verifies, and an auditor recomputes every hash from the JSON
// export alone.
func TestAnAuditEntryWithOddTextExportsAsItsHashCoversIt(t *testing.T) {
	odd := "nul\x00 bad\xff\xfe utf-8 \u2028\u2029 \"quoted\" \\ <b>&amp; =SUM(A1) \r\n\t 𝄞 é\u200b"
	cfg := auditLogHolding(t,
		domain.AuditEntry{Actor: "bob", Action: "denied", Route: "flag-a", Detail: odd},
		domain.AuditEntry{Actor: "bob", Action: "flip", Route: "flag-b", Reason: "ok", Detail: "after " + odd, FromMode: "legacy", ToMode: "shadow"})
	out, err := runCLI(t, "audit", "verify", "--config", cfg)
	if err != nil || !strings.HasPrefix(out, "OK: 2 entries") {
		t.Fatalf("audit verify: %v %q, want OK: 2 entries", err, out)
	}
	records := exportJSONL(t, cfg)
	checkChain(t, records)
	if got := records[0]["detail"].(string); !strings.Contains(got, "\u2028\u2029 \"quoted\" \\ <b>&amp; =SUM(A1) \r\n\t 𝄞") || strings.ContainsRune(got, 0) {
		t.Errorf("the exported detail %q: want the odd text, NUL and invalid UTF-8 replaced", got)
	}
}
