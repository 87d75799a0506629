package store

import (
	"context"
	"database/sql"
	"net/http"
	"testing"
	"time"

	"strangler/domain"
)

// TestWritesJournaledBeforeMigration0160StandForWhatTheirRequestsSay: the
// release before recorded a write's method as sent, and its journal's
// rules read a POST as a create. After the upgrade each of its writes
// stands for what its kept request says: a POST with
// X-HTTP-Method-Override: DELETE for a DELETE, one whose form says
// _method=put for a PUT, a plain one for a POST, any other write for its
// method; a POST whose request was erased (delivered) for none known, and
// one whose override is no method (a patient's name) for none: what a
// write stands for is kept in clear.
// On SQLite a POST standing for a DELETE left sent holds its resource
// after the restart, and a create left sent does not hold its collection.
func TestWritesJournaledBeforeMigration0160StandForWhatTheirRequestsSay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn, d, db := migratedBefore(t, b, 160)
		at := d.encodeTime(t0)
		for _, w := range []struct {
			id, resource, method, target, state string
			header                              http.Header
			body                                string
		}{
			{"post-delete", "/patients/1", "POST", "/patients/1", "sent", http.Header{"X-Http-Method-Override": {"DELETE"}}, ``},
			{"post-form", "/patients/2", "POST", "/patients/2", "sent", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, `name=x&_method=put`},
			{"post-create", "/patients", "POST", "/patients", "sent", http.Header{"Content-Type": {"application/json"}}, `{"name":"x"}`},
			{"post-erased", "/patients/3", "POST", "", "done", http.Header{}, ``},
			{"post-name", "/patients/5", "POST", "/patients/5", "sent", http.Header{"X-Http-Method-Override": {"Ann Example"}}, ``},
			{"put", "/patients/4", "PUT", "/patients/4", "sent", http.Header{"Content-Type": {"application/json"}}, `{"v":1}`},
		} {
			// resource_view '': a clear resource, made a digest at start.
			if _, err := db.ExecContext(ctx, `
				INSERT INTO strangler_repairs (id, route, resource, resource_view, method, target, header, body, primary_side,
					state, created_at, updated_at, lease_until)
				VALUES ($1, 'update-patient', $2, '', $3, $4, $5, $6, 'legacy', $7, $8, $8, $8)`,
				w.id, w.resource, w.method, w.target, encodeHeader(w.header), []byte(w.body), w.state, at); err != nil {
				t.Fatal(err)
			}
		}
		// A POST whose request this store cannot open (sealed under a key
		// it no longer has) is read past, and stays not known.
		if _, err := db.ExecContext(ctx, `
			INSERT INTO strangler_repairs (id, route, resource, resource_view, method, target, header, body, primary_side,
				state, created_at, updated_at, lease_until, sealed)
			VALUES ('post-sealed', 'update-patient', '/patients/6', '', 'POST', 'not:sealed:here', $1, $1, 'legacy', 'sent', $2, $2, $2, $3)`,
			[]byte{}, at, true); err != nil {
			t.Fatal(err)
		}
		db.Close()

		s := openStore(t, dsn, newClock())
		list, err := s.ListRepairs(ctx, RepairFilter{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range list {
			got[r.ID] = r.StandsFor
		}
		want := map[string]string{"post-delete": "DELETE", "post-form": "PUT", "post-create": "POST", "post-erased": "", "post-name": "", "post-sealed": "", "put": "PUT"}
		for id, w := range want {
			if got[id] != w {
				t.Errorf("%s stands for %q in the listing, want %q", id, got[id], w)
			}
		}
		if r, err := s.GetRepair(ctx, "post-name", true); err != nil || r.StandsFor != "" {
			t.Errorf("post-name read whole stands for %q (%v), want \"\"", r.StandsFor, err)
		}
		var erased sql.NullString
		if err := s.db.QueryRowContext(ctx, `SELECT stands_for FROM strangler_repairs WHERE id = 'post-erased'`).Scan(&erased); err != nil || erased.Valid {
			t.Errorf("the erased POST's stands_for is %v (%v), want NULL: not known", erased, err)
		}
		if d.name != "sqlite" {
			return
		}
		takes := func(id, resource string) bool {
			t.Helper()
			in := intent(id, resource)
			if err := s.BeginWrite(ctx, in, time.Minute); err != nil {
				t.Fatal(err)
			}
			taken, err := s.TakeTurn(ctx, id, resource, time.Minute)
			if err != nil {
				t.Fatalf("TakeTurn(%s): %v", id, err)
			}
			return taken
		}
		if takes("after-delete", "/patients/1") {
			t.Error("a write to /patients/1 while a POST standing for a DELETE written before the upgrade is sent: got the turn")
		}
		if !takes("after-create", "/patients") {
			t.Error("a write to /patients, where a create written before the upgrade is sent: no turn")
		}
		if err := s.RecordOutcome(ctx, "post-delete", domain.Outcome{Status: http.StatusNoContent}); err != nil {
			t.Fatal(err)
		}
		if !takes("after-delete-2", "/patients/1") {
			t.Error("a write to /patients/1 once the POST standing for a DELETE left sent: no turn")
		}
	})
}
