package control

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/domain"
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

// TestAuditListsTheChainInOrderPageByPage: entries whose times do not
// rise with their ids (a time is taken before the entry waits for the
// chain's head) are listed newest first in chain order, each page after
// the last entry of the one before (before_id), with an entry appended
// between pages neither skipped nor repeated; a before_id that names no
// entry is refused.
func TestAuditListsTheChainInOrderPageByPage(t *testing.T) {
	p := newPlane(t)
	t0 := p.clock.Now()
	add := func(m int) {
		t.Helper()
		e := domain.AuditEntry{At: t0.Add(time.Duration(m) * time.Minute), Actor: "bob", Action: "denied", Route: "get-patient"}
		if err := p.store.AppendAudit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []int{0, 10, 9, 11} {
		add(m)
	}
	var listed []map[string]any
	next := "/admin/audit?limit=2"
	for page := 0; next != "" && page < 5; page++ {
		resp, out := p.call(t, "GET", next, veraToken, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: got %d %v", next, resp.StatusCode, out)
		}
		entries, _ := out["entries"].([]any)
		next = ""
		for _, e := range entries {
			listed = append(listed, e.(map[string]any))
			next = fmt.Sprintf("/admin/audit?limit=2&before_id=%v", e.(map[string]any)["id"])
		}
		add(1) // between pages, timed early
	}
	var ids []any
	for i, e := range listed {
		ids = append(ids, e["id"])
		if i > 0 && listed[i-1]["prev_hash"] != e["hash"] {
			t.Errorf("entry %v is listed after entry %v, which does not follow it", e["id"], listed[i-1]["id"])
		}
	}
	if fmt.Sprint(ids) != "[4 3 2 1]" {
		t.Errorf("listed entries %v, want [4 3 2 1]", ids)
	}
	for _, bad := range []string{"x", "0", "-1"} {
		if resp, out := p.call(t, "GET", "/admin/audit?before_id="+bad, veraToken, ""); resp.StatusCode != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "before_id") {
			t.Errorf("before_id=%s: got %d %v, want 400 naming before_id", bad, resp.StatusCode, out)
		}
	}
}
