package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/control"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestAnOperatorStopsTheResendsOfAWriteTheFacadeLeftUnanswered: a PUT
// the primary (primary_idempotent) did not answer in time stays sent and
// holds its path; recovery resends it once its lease passes, and the
// primary answers 503 to it for ever. The operator sees it listed (its
// attempts, why it waits, its next try), stops it with the CLI, and the
// path is free at once: the next PUT reaches both sides, the stopped
// write is unknown for the operator, the stop audited once, the queue's
// depth says so. On PostgreSQL with two replicas, the writes go through
// the replica that did not stop it. Before, the path stayed held until
// repairs.max_attempts resends (here 100,000; about 8 h with the
// defaults) and the CLI had no such command.
func TestAnOperatorStopsTheResendsOfAWriteTheFacadeLeftUnanswered(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(dir string) string) {
		dir := t.TempDir()
		storeDSN := dsn(dir)
		var mu sync.Mutex
		var firstKey string
		stalled, release := make(chan struct{}), make(chan struct{})
		var releaseOnce sync.Once
		unstall := func() { releaseOnce.Do(func() { close(release) }) }
		t.Cleanup(unstall)
		legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
			key := r.Header.Get("Idempotency-Key")
			mu.Lock()
			first := firstKey == ""
			if first {
				firstKey = key
			}
			resent := key == firstKey
			mu.Unlock()
			switch {
			case first:
				close(stalled)
				<-release // past the facade's timeout: 504
			case resent:
				http.Error(w, `{"error":"restarting"}`, http.StatusServiceUnavailable)
			default:
				w.Write([]byte(`{"ok":true}`))
			}
		})
		var modernBodies []string
		modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
			if b, err := io.ReadAll(r.Body); err == nil {
				mu.Lock()
				modernBodies = append(modernBodies, string(b))
				mu.Unlock()
			}
			w.Write([]byte(`{"ok":true}`))
		})
		config := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL, modern: modern.URL, store: storeDSN, timeout: 2 * time.Second, routes: `
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write, primary_idempotent: true}
`})
		f := startRun(t, "serve", "--config", config)
		writer := f
		if strings.HasPrefix(storeDSN, "postgres") {
			writer = startRun(t, "serve", "--config", config) // a second replica
		}
		put := func(body string) int {
			t.Helper()
			code, _, err := sendRequest("PUT", "http://"+writer.public+"/items/7", body, map[string]string{"Content-Type": "application/json"})
			if err != nil {
				t.Fatal(err)
			}
			return code
		}

		if code, _, err := sendRequest("PUT", "http://"+f.public+"/items/7", `{"v":1}`, map[string]string{"Content-Type": "application/json"}); err != nil || code != http.StatusGatewayTimeout {
			t.Fatalf("the PUT the primary sits on: %d, %v; want 504", code, err)
		}
		<-stalled
		unstall()
		testdb.PassRepairTime(t, storeDSN, time.Hour, "lease_until") // its lease passed: recovery has it

		var held control.RepairView
		testkit.Eventually(t, 60*time.Second, "the write resent and listed as waiting", func() bool {
			var list struct{ Repairs []control.RepairView }
			adminGetJSON(t, f.admin, "/admin/repairs?state=sent", &list)
			if len(list.Repairs) != 1 || list.Repairs[0].Attempts == 0 {
				return false
			}
			held = list.Repairs[0]
			return true
		})
		if !strings.Contains(held.LastError, "answered 503") || held.NextAttemptAt == nil || strings.Contains(held.Resource, "/items/7") {
			t.Errorf("listed as %+v: want why it waits (503), its next try, the item's id hashed", held)
		}
		if code := put(`{"v":2}`); code != http.StatusServiceUnavailable {
			t.Fatalf("a PUT while the write is resent: %d, want 503 (its path is held)", code)
		}

		strangler := cliEnv(map[string]string{"STRANGLER_ADMIN": "http://" + f.admin, "STRANGLER_ADMIN_TOKEN": e2eAdminToken})
		if r := strangler(t, "repairs", "stop", held.ID); r.err == nil || !strings.Contains(r.err.Error(), "--reason is required") {
			t.Errorf("stop without a reason: %v, want a usage error asking for one", r.err)
		}
		out := strangler(t, "repairs", "stop", held.ID, "--reason", "the primary is down for the night; reconcile in the morning").must(t)
		if want := fmt.Sprintf("repair %s (put-item PUT %s) is unknown now\n", held.ID, held.Resource); out != want {
			t.Errorf("stop printed %q, want %q", out, want)
		}
		if r := strangler(t, "repairs", "stop", held.ID, "--reason", "again"); r.err == nil || !strings.Contains(r.err.Error(), "it is unknown, not sent") {
			t.Errorf("a second stop: %v, want the 409 saying it is unknown", r.err)
		}

		if code := put(`{"v":3}`); code != http.StatusOK {
			t.Fatalf("a PUT once the resends stopped: %d, want 200", code)
		}
		testkit.Eventually(t, 30*time.Second, "the later PUT delivered to the secondary", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(modernBodies) == 1 && modernBodies[0] == `{"v":3}`
		})
		var after control.RepairView
		adminGetJSON(t, writer.admin, "/admin/repairs/"+held.ID, &after)
		if after.State != "unknown" || after.NextAttemptAt != nil {
			t.Errorf("the stopped write: %+v, want unknown, no next try", after)
		}
		var audit struct{ Entries []map[string]any }
		adminGetJSON(t, writer.admin, "/admin/audit", &audit)
		stops := 0
		for _, e := range audit.Entries {
			if e["action"] == "repair_stop" {
				stops++
				if e["actor"] != "test" || e["detail"] != held.ID || !strings.Contains(fmt.Sprint(e["reason"]), "down for the night") {
					b, _ := json.Marshal(e)
					t.Errorf("audit entry %s, want the test token's stop of %s with its reason", b, held.ID)
				}
			}
		}
		if stops != 1 {
			t.Errorf("%d repair_stop entries, want 1", stops)
		}
		testkit.Eventually(t, 30*time.Second, "the queue's depth counting it unknown", func() bool {
			return metricValue(t, f.admin, `strangler_repair_queue_depth{state="unknown"}`) == "1" &&
				metricValue(t, f.admin, `strangler_repair_queue_depth{state="sent"}`) == "0"
		})
	})
}
