package control

import (
	"net/http"
	"strings"
	"testing"
)

// TestAuditShowsTheChainHead: GET /admin/audit gives each entry its
// hashes, linked newest to oldest, and the chain's head, which is the
// newest entry; the status page shows the head too.
func TestAuditShowsTheChainHead(t *testing.T) {
	p := newPlane(t)
	for i, mode := range []string{"modern", "legacy"} {
		body := `{"mode":"` + mode + `","reason":"step","force":true}`
		if resp, out := p.call(t, "PATCH", "/admin/routes/get-patient", aliceToken, body, "If-Match", etag(int64(i))); resp.StatusCode != http.StatusOK {
			t.Fatalf("flip to %s: got %d %v", mode, resp.StatusCode, out)
		}
	}
	resp, out := p.call(t, "GET", "/admin/audit", veraToken, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %v", resp.StatusCode, out)
	}
	entries, _ := out["entries"].([]any)
	chain, _ := out["chain"].(map[string]any)
	if len(entries) != 2 || chain == nil {
		t.Fatalf("got %v, want two entries and the chain", out)
	}
	newest, oldest := entries[0].(map[string]any), entries[1].(map[string]any)
	if chain["head_id"] != newest["id"] || chain["head_hash"] != newest["hash"] || len(newest["hash"].(string)) != 64 {
		t.Errorf("chain %v, want the newest entry's id and hash (%v, %v)", chain, newest["id"], newest["hash"])
	}
	if newest["prev_hash"] != oldest["hash"] || oldest["prev_hash"] != strings.Repeat("0", 64) {
		t.Errorf("newest prev_hash %v, oldest hash %v and prev_hash %v: want linked, the oldest to the genesis hash",
			newest["prev_hash"], oldest["hash"], oldest["prev_hash"])
	}

	h := newPageAdmin(t)
	h.login(t, pageViewerToken)
	page, _ := h.page(t)
	head, err := h.store.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, `<code id="chain-head" class="hash">`+head.Hash+`</code>`) {
		t.Errorf("the status page does not show the chain's head %s", head.Hash)
	}
}
