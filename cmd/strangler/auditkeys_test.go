package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestAuditCommandsKeepTheStoresHashKey: audit verify and export read a
// store under store_encryption without replacing its hash key, so a
// write journaled after them names its resource as the writes before did
// (the queue orders one resource's writes by that name).
func TestAuditCommandsKeepTheStoresHashKey(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(dir string) string) {
		legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		t.Cleanup(legacy.Close)
		dir := t.TempDir()
		// Modern is unreachable: each write stays pending.
		cfg := writeKeyedConfig(t, dir, "keyed.yaml", legacy.URL, "http://127.0.0.1:1", dsn(dir), hexKey(1))
		put := func() {
			t.Helper()
			f := startCanaryFacade(t, cfg)
			defer f.stop()
			if code, _, err := sendRequest("PUT", "http://"+f.public+"/dwdead/7", `{"v":1}`, nil); code != 200 {
				t.Fatalf("PUT /dwdead/7: %d %v", code, err)
			}
		}
		put()
		for _, args := range [][]string{{"audit", "verify", "--config", cfg}, {"audit", "export", "--config", cfg}} {
			if out, err := runCLI(t, args...); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
		put()

		f := startCanaryFacade(t, cfg)
		defer f.stop()
		var list struct {
			Repairs []struct{ Resource string } `json:"repairs"`
		}
		testkit.Eventually(t, 10*time.Second, "both writes listed", func() bool {
			json.Unmarshal([]byte(adminText(t, f.admin, "/admin/repairs?route=dw-dead")), &list)
			return len(list.Repairs) == 2
		})
		if a, b := list.Repairs[0].Resource, list.Repairs[1].Resource; a != b {
			t.Errorf("one resource listed as %s and %s: the audit commands replaced the store's hash key", a, b)
		}
	})
}
