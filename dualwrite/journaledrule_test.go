package dualwrite

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/domain"
)

// A write's delivery and recovery follow the rule its route had when it
// was journaled (domain.Intent.PrimaryIdempotent), not a reload since:
// an attempt the secondary applied but whose answer was lost, a reload
// that changed primary_idempotent, and the next attempt went under
// another key, so the secondary applied the write twice (2 entries
// against the primary's 1); a recovery after such a reload resent a
// write to a primary that applied it without a key, or asked an
// operator about one that honoured it.

// entries is a secondary (or primary) that honours Idempotency-Key:
// it applies a write once per key. The first write it gets it applies
// and then drops the connection, as a backend that crashed before
// answering does, when dropFirst says so.
type entries struct {
	mu        sync.Mutex
	applied   map[string]bool
	keys      []string
	dropFirst bool
	srv       *httptest.Server
}

func newEntries(t *testing.T, dropFirst bool) *entries {
	e := &entries{applied: map[string]bool{}, dropFirst: dropFirst}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		e.mu.Lock()
		key := req.Header.Get("Idempotency-Key")
		e.keys = append(e.keys, key)
		e.applied[key] = true
		drop := e.dropFirst && len(e.keys) == 1
		e.mu.Unlock()
		if drop {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// count is how many entries the backend holds and how many requests it got.
func (e *entries) count() (applied, requests int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.applied), len(e.keys)
}

func TestADeliveryKeepsTheKeyItWasJournaledUnder(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqlite, "postgres": postgres} {
		for _, tc := range []struct {
			name          string
			before, after bool
		}{
			{"primary_idempotent removed", true, false},
			{"primary_idempotent added", false, true},
		} {
			t.Run(name+"/"+tc.name+" between two attempts", func(t *testing.T) {
				r := newRig(t, dsn(t), testSettings)
				secondary := newEntries(t, true)
				r.routes.setBackend(t, "modern", secondary.srv.URL, 2*time.Second)
				r.routes.dualWrite["put-item"] = routeSettings{idempotent: tc.before}
				in := put("w1", "7", `{"amount":5}`)
				in.Header.Set("Idempotency-Key", "client-key")
				r.journal(in, domain.Outcome{Status: http.StatusOK})

				r.deliverDue(r.w) // applied, but the answer is lost
				if rep := r.repair("w1"); rep.State != domain.StatePending || rep.Attempts != 1 {
					t.Fatalf("after the lost answer: %s with %d attempts, want pending, to be sent again", rep.State, rep.Attempts)
				}
				r.routes.mu.Lock()
				r.routes.dualWrite["put-item"] = routeSettings{idempotent: tc.after} // a reload
				r.routes.mu.Unlock()
				r.advance(2 * time.Duration(testSettings.MaxBackoff))
				r.deliverDue(r.w)

				if rep := r.repair("w1"); rep.State != domain.StateDone {
					t.Fatalf("after the second attempt: %s, want done", rep.State)
				}
				if applied, requests := secondary.count(); applied != 1 || requests != 2 {
					t.Errorf("the secondary holds %d entries after %d requests (keys %q), want 1: the primary holds 1", applied, requests, secondary.keys)
				}
			})
		}
	}
}

func TestRecoveryKeepsTheRuleTheWriteWasJournaledUnder(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqlite, "postgres": postgres} {
		t.Run(name+"/primary_idempotent added: the primary that applied it without a key gets no resend", func(t *testing.T) {
			r := newRig(t, dsn(t), testSettings)
			primary := newEntries(t, false)
			r.routes.setBackend(t, "legacy", primary.srv.URL, 2*time.Second)
			r.routes.dualWrite["put-item"] = routeSettings{}
			r.abandon(put("w1", "7", `{"amount":5}`))
			r.routes.dualWrite["put-item"] = routeSettings{idempotent: true}
			r.w.recover(context.Background())
			if _, requests := primary.count(); requests != 0 {
				t.Errorf("the primary got %d resends, want 0: it may have applied the write, and does not tell a resend by its key", requests)
			}
			if rep := r.repair("w1"); rep.State != domain.StateUnknown {
				t.Errorf("got %s, want unknown, for an operator", rep.State)
			}
		})
		for _, reload := range []struct {
			name string
			set  func(r *rig)
		}{
			{"primary_idempotent removed", func(r *rig) { r.routes.dualWrite["put-item"] = routeSettings{} }},
			{"the route removed", func(r *rig) { delete(r.routes.dualWrite, "put-item") }},
		} {
			t.Run(name+"/"+reload.name+": the primary that honours keys is asked", func(t *testing.T) {
				r := newRig(t, dsn(t), testSettings)
				primary := newEntries(t, false)
				r.routes.setBackend(t, "legacy", primary.srv.URL, 2*time.Second)
				r.routes.dualWrite["put-item"] = routeSettings{idempotent: true}
				in := put("w1", "7", `{"amount":5}`)
				in.Header.Set("Idempotency-Key", "w1") // as the facade gave it
				r.abandon(in)
				reload.set(r)
				r.w.recover(context.Background())
				if rep := r.repair("w1"); rep.State != domain.StatePending || rep.Outcome.Status != http.StatusCreated {
					t.Fatalf("got %s %d, want pending with the primary's 201: its answer settles it", rep.State, rep.Outcome.Status)
				}
				if _, requests := primary.count(); requests != 1 || primary.keys[0] != "w1" {
					t.Errorf("the primary got %d resends with keys %q, want 1 with the key it saw", requests, primary.keys)
				}
			})
		}
		t.Run(name+"/a write journaled by an older release follows the route as it is now", func(t *testing.T) {
			r := newRig(t, dsn(t), testSettings)
			secondary := newEntries(t, false)
			r.routes.setBackend(t, "modern", secondary.srv.URL, 2*time.Second)
			r.routes.dualWrite["put-item"] = routeSettings{}
			in := put("w1", "7", `{"amount":5}`)
			in.Header.Set("Idempotency-Key", "client-key")
			r.journal(in, domain.Outcome{Status: http.StatusOK})
			asOlderRelease(t, r.dsn)
			r.routes.dualWrite["put-item"] = routeSettings{idempotent: true}
			r.deliverDue(r.w)
			if secondary.keys[0] != "client-key" {
				t.Errorf("the secondary got key %q, want the client's, as the route now says", secondary.keys[0])
			}
		})
	}
}

// asOlderRelease forgets what the journal at dsn recorded of its writes'
// primary_idempotent, as a release before it was recorded left it.
func asOlderRelease(t *testing.T, dsn string) {
	t.Helper()
	driver, name := "pgx", dsn
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, name = "sqlite", path
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE strangler_repairs SET primary_idempotent = NULL`); err != nil {
		t.Fatal(err)
	}
}
