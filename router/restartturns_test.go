package router

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/store"
)

// TestAWriteTheProcessBeforeLeftSentHoldsItsResourceAfterARestart: on
// SQLite, which one process uses, a PUT of an item to a primary that
// honours Idempotency-Key is applied and left sent (unanswered, kept for
// recovery; or in flight when the process died, its store gone). After
// a restart on the same file, a second PUT of the item must not reach
// the primary before recovery has sent the first again and recorded it:
// it would be applied after the first and recorded before it, and the
// secondary would end with the older body while the primary has the
// newer one. The second is refused with 503 resource_busy; once
// recovery recorded the first, a third goes through, and both sides got
// the item's bodies in the same order. The same on PostgreSQL, where the
// first write's journal entry holds the turn in the store.
func TestAWriteTheProcessBeforeLeftSentHoldsItsResourceAfterARestart(t *testing.T) {
	stores := map[string]func(t testing.TB) string{
		"sqlite":   func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "strangler.db") },
		"postgres": testdb.Postgres,
	}
	for _, name := range []string{"sqlite", "postgres"} {
		for _, c := range []struct {
			name string
			// dies says the process dies while the primary has the
			// first write; otherwise it answers the client 504 and
			// keeps the turn.
			dies bool
		}{{"kept", false}, {"in flight", true}} {
			t.Run(name+"/"+c.name, func(t *testing.T) { leftSentHoldsAcrossRestart(t, stores[name](t), c.dies) })
		}
	}
}

func leftSentHoldsAcrossRestart(t *testing.T, dsn string, dies bool) {
	const timeout = 300 * time.Millisecond
	kp := newKeyedPair(t, timeout)
	before := newDualWriteReplica(t, dsn, kp.legacy.URL, kp.modern.URL, timeout, dualWriteRoutes)
	answered := make(chan int, 1)
	go func() {
		code, _ := put(t, before, "/keyed/7", `{"v":1}`)
		answered <- code
	}()
	if dies {
		testkit.Eventually(t, 10*time.Second, "the primary applies v1", func() bool { return kp.appliedCount() == 1 })
		// The process dies with v1 at the primary: it writes nothing
		// more to the store.
		before.store.Close()
	}
	if code := <-answered; code != http.StatusGatewayTimeout {
		t.Fatalf("PUT v1: got %d, want 504", code)
	}
	before.Close()
	before.store.Close()

	after := newDualWriteReplica(t, dsn, kp.legacy.URL, kp.modern.URL, timeout, dualWriteRoutes)
	code, body := put(t, after, "/keyed/7", `{"v":2}`)
	var e struct{ Error string }
	if json.Unmarshal([]byte(body), &e); code != http.StatusServiceUnavailable || e.Error != errResourceBusy.Error() {
		t.Errorf("PUT v2 after the restart, while v1 is still sent: got %d %s, want 503 saying earlier writes are with the primary", code, body)
	}
	if code, body := put(t, after, "/keyed/8", `{"v":1}`); code != http.StatusOK {
		t.Errorf("PUT of another item after the restart: got %d %s, want 200", code, body)
	}

	kp.recoverThenWriteV3(t, after, dsn)
}

// TestAPostStandingForADeleteLeftSentHoldsItsResourceAfterARestart: on
// SQLite, a PUT of an item is with the primary and a POST of the item
// standing for a DELETE (X-HTTP-Method-Override, as some clients send
// one) waits behind it when the process dies: both are left sent. After
// the restart, once the PUT is recorded (as recovery does), a later PUT
// of the item must still wait for the DELETE, which recovery sends
// next: sent before it, it would be applied before the older DELETE,
// which would then remove the item the client wrote last. The later PUT
// is refused with 503 resource_busy. Taken for a create by the method it
// was sent with, the waiting POST held nothing after the restart and the
// later PUT reached the primary (200).
func TestAPostStandingForADeleteLeftSentHoldsItsResourceAfterARestart(t *testing.T) {
	const timeout = time.Second
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "strangler.db")
	routes := `
  - {name: keyed, match: "/keyed/{id}", mode: dual-write, primary_idempotent: true}
`
	kp := newKeyedPair(t, timeout)
	before := newDualWriteReplica(t, dsn, kp.legacy.URL, kp.modern.URL, timeout, routes)
	answered := make(chan int, 2)
	go func() {
		code, _ := put(t, before, "/keyed/7", `{"v":1}`)
		answered <- code
	}()
	testkit.Eventually(t, 10*time.Second, "the primary applies v1", func() bool { return kp.appliedCount() == 1 })
	go func() {
		req, _ := http.NewRequest(http.MethodPost, before.URL+"/keyed/7", nil)
		req.Header.Set("X-HTTP-Method-Override", "DELETE")
		resp, err := before.Client().Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	var v1 string
	testkit.Eventually(t, 10*time.Second, "the POST standing for a DELETE is journaled, waiting", func() bool {
		list, err := before.store.ListRepairs(context.Background(), store.RepairFilter{})
		for _, w := range list {
			if w.Method == http.MethodPut {
				v1 = w.ID
			}
		}
		return err == nil && len(list) == 2
	})
	// The process dies: it writes nothing more to the store.
	before.store.Close()
	<-answered
	<-answered
	before.Close()

	after := newDualWriteReplica(t, dsn, kp.legacy.URL, kp.modern.URL, timeout, routes)
	// Recovery resends v1 first and records it; the DELETE is next.
	if err := after.store.RecordOutcome(context.Background(), v1, domain.Outcome{Status: http.StatusOK}); err != nil {
		t.Fatal(err)
	}
	code, body := put(t, after, "/keyed/7", `{"v":3}`)
	var e struct{ Error string }
	if json.Unmarshal([]byte(body), &e); code != http.StatusServiceUnavailable || e.Error != errResourceBusy.Error() {
		t.Errorf("PUT v3 after the restart, while the POST standing for a DELETE is still sent: got %d %s, want 503 saying earlier writes are with the primary", code, body)
	}
}
