package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// adminAct calls the admin API as alice with a JSON body and returns the
// status and the decoded JSON answer.
func adminAct(t *testing.T, admin, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %s answered %q", method, path, resp.Status, raw)
	}
	return resp.StatusCode, out
}

// TestDiscardOfAWriteBeingDelivered: an operator discards a dual write
// while the secondary holds its delivery, and the secondary then applies
// it. The discard is refused with 409 naming the state, the write ends
// done, and the audit log says the discard was denied: a discard that
// "succeeded" would leave the queue and the audit log saying the
// secondary never got a write it applied.
func TestDiscardOfAWriteBeingDelivered(t *testing.T) {
	legacy := backendAnswering(t, `{"ok":true}`)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	var applied atomic.Int32
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		applied.Add(1)
		w.Write([]byte(`{"ok":true}`))
	})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // before modern's Close, which waits for its handlers
	f := startAdminFacade(t, legacy.URL, modern.URL, `  - {name: update-patient, match: "PUT /patients/{id}", mode: dual-write, primary: legacy}
`)
	go sendRequest("PUT", "http://"+f.public+"/patients/1", `{"name":"Ann Example"}`, map[string]string{"Content-Type": "application/json"})
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the write did not reach the secondary in 5s")
	}
	var list struct {
		Repairs []struct{ ID, State string } `json:"repairs"`
	}
	adminGet(t, f.admin, "/admin/repairs", &list)
	if len(list.Repairs) != 1 || list.Repairs[0].State != "pending" {
		t.Fatalf("repairs %+v, want one pending", list.Repairs)
	}
	id := list.Repairs[0].ID

	status, body := adminAct(t, f.admin, "DELETE", "/admin/repairs/"+id, `{"reason":"operator gave up"}`)
	open()
	if msg, _ := body["error"].(string); status != http.StatusConflict || !strings.Contains(msg, "it is pending and being delivered to the secondary") {
		t.Errorf("discard while delivering: got %d %v, want 409 saying it is pending and being delivered", status, body)
	}
	testkit.Eventually(t, 10*time.Second, "the write done", func() bool {
		var r struct{ State string }
		adminGet(t, f.admin, "/admin/repairs/"+id, &r)
		return r.State == "done"
	})
	if n := applied.Load(); n != 1 {
		t.Errorf("the secondary applied the write %d times, want 1", n)
	}
	var audit struct {
		Entries []struct{ Action, Detail string } `json:"entries"`
	}
	adminGet(t, f.admin, "/admin/audit", &audit)
	if len(audit.Entries) == 0 || audit.Entries[0].Action != "denied" || !strings.Contains(audit.Entries[0].Detail, "refused (409)") {
		t.Errorf("audit %+v, want the discard's denial last", audit.Entries)
	}
}
