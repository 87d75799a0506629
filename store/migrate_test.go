package store

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/domain"
)

func TestMigrations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)

		t.Run("replicas starting at once migrate once between them", func(t *testing.T) {
			var wg sync.WaitGroup
			stores := make([]*Store, 3)
			errs := make([]error, 3)
			for i := range stores {
				wg.Go(func() { stores[i], errs[i] = Open(ctx, dsn, testLogger(t)) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica %d: %v", i, err)
					continue
				}
				stores[i].Close()
			}
		})

		t.Run("opening again applies nothing and keeps the data", func(t *testing.T) {
			s := openStore(t, dsn, nil)
			journal(t, s, "w", "r")
			s.Close()
			s = openStore(t, dsn, nil)
			if got := state(t, s, "w"); got != domain.StatePending {
				t.Errorf("got %s, want pending", got)
			}
			list, err := s.dialect.migrationList()
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM strangler_schema_migrations`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != len(list) {
				t.Errorf("got %d migrations recorded, want %d, each once", n, len(list))
			}
		})
	})
}

// A store migrated by the store's own runner, before the shared one
// (internal/migrate) took over, recorded each version in
// strangler_schema_migrations as (version, name, applied_at); opening it
// now must find every version applied and run nothing again.
func TestStoreAtCurrentVersionMigratesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		d, db, err := openDB(dsn)
		if err != nil {
			t.Fatal(err)
		}
		list, err := d.migrationList()
		if err != nil {
			t.Fatal(err)
		}
		// What the earlier runner did, by hand: every file's SQL, then its
		// row, with a time it cannot have been written at again.
		then := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		if _, err := db.ExecContext(ctx, d.bootstrap); err != nil {
			t.Fatal(err)
		}
		for _, m := range list {
			if _, err := db.ExecContext(ctx, m.SQL); err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO strangler_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, d.encodeTime(then)); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()

		var logs bytes.Buffer
		s, err := Open(ctx, dsn, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var n, rewritten int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE applied_at <> $1) FROM strangler_schema_migrations`,
			d.encodeTime(then)).Scan(&n, &rewritten); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if n != len(list) || rewritten != 0 {
			t.Errorf("got %d migrations recorded, %d of them again; want %d, none again", n, rewritten, len(list))
		}
		if strings.Contains(logs.String(), "migration applied") {
			t.Errorf("opening ran migrations:\n%s", logs.String())
		}
	})
}

func TestOpenRefusesUnknownStores(t *testing.T) {
	for _, dsn := range []string{"mysql://root@localhost/db", "strangler.db", "sqlite:", "sqlite:./a?b.db"} {
		t.Run(dsn+" is refused with a clear error", func(t *testing.T) {
			_, err := Open(context.Background(), dsn, testLogger(t))
			if err == nil {
				t.Fatal("got no error")
			}
			if !strings.HasPrefix(err.Error(), "store: ") {
				t.Errorf("got %q, want an error starting with \"store: \"", err)
			}
		})
	}
}

// TestWritesJournaledBeforeMigration0085KeepTheirPlace: the migration that
// took the UNIQUE constraint off sequence numbers (building the SQLite
// table again) keeps every journaled write as it was, the queue's order
// among them, and every index the journal's queries use.
func TestWritesJournaledBeforeMigration0085KeepTheirPlace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn, d, db := migratedBefore(t, b, 85)
		indexes := func(db *sql.DB) map[string]string {
			t.Helper()
			if d.name != "sqlite" {
				return nil
			}
			rows, err := db.QueryContext(ctx, `SELECT name, sql FROM sqlite_master
				WHERE type = 'index' AND tbl_name = 'strangler_repairs' AND sql IS NOT NULL`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]string{}
			for rows.Next() {
				var name, sql string
				if err := rows.Scan(&name, &sql); err != nil {
					t.Fatal(err)
				}
				out[name] = strings.Join(strings.Fields(sql), " ")
			}
			return out
		}
		before := indexes(db)
		// Writes as the release before wrote them: one in flight, two
		// queued to one resource (the later-numbered first in the table),
		// a dead one holding back another resource, one delivered.
		at := d.encodeTime(t0)
		for _, w := range []struct {
			id, resource, state string
			seq                 any
		}{
			{"w-sent", "r1", "sent", nil},
			{"w-later", "r2", "pending", 7},
			{"w-head", "r2", "pending", 5},
			{"w-dead", "r3", "dead", 3},
			{"w-behind-dead", "r3", "pending", 8},
			{"w-done", "r4", "done", 2},
		} {
			if _, err := db.ExecContext(ctx, `
				INSERT INTO strangler_repairs (id, route, resource, resource_view, method, target, header, body, primary_side,
					state, seq, status, location, primary_id, next_attempt_at, lease_until, created_at, updated_at)
				VALUES ($1, 'update-patient', $2, '/patients/{id:h:1}', 'PUT', '/patients/1', $3, $4, 'legacy',
					$5, $6, 200, '/patients/1', 'p-1', $8, NULL, $7, $7)`,
				w.id, w.resource, encodeHeader(http.Header{"Content-Type": {"application/json"}}), []byte(`{"v":1}`),
				w.state, w.seq, at, d.encodeTime(longAgo)); err != nil {
				t.Fatal(err)
			}
		}
		if d.bumpSeq != "" {
			if _, err := db.ExecContext(ctx, d.bumpSeq); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, d.nextSeq, "r0"); err != nil { // the counter stands at 1
			t.Fatal(err)
		}
		db.Close()

		s := openStore(t, dsn, newClock())
		// The same indexes, but for 0105's spelling of the settled states,
		// and 0130's turn index besides.
		for name, sql := range before {
			before[name] = strings.ReplaceAll(sql, "state IN ('skipped', 'done', 'discarded')", statesIn(finalStates))
		}
		if before != nil {
			before["strangler_repairs_turn"] = "CREATE UNIQUE INDEX strangler_repairs_turn ON strangler_repairs (resource) WHERE turn AND state = 'sent'"
		}
		if after := indexes(s.db); !maps.Equal(after, before) {
			t.Errorf("the journal's indexes changed:\nbefore %v\nafter  %v", before, after)
		}
		for id, want := range map[string]domain.State{"w-sent": "sent", "w-later": "pending", "w-head": "pending", "w-dead": "dead", "w-done": "done"} {
			r, err := s.GetRepair(ctx, id, true)
			if err != nil {
				t.Fatalf("GetRepair(%s): %v", id, err)
			}
			if r.State != want || r.Target != "/patients/1" || string(r.Body) != `{"v":1}` || r.Header.Get("Content-Type") != "application/json" ||
				r.Outcome.Location != "/patients/1" || r.Outcome.PrimaryID != "p-1" || r.Resource != "/patients/{id:h:1}" || !r.CreatedAt.Equal(t0) {
				t.Errorf("%s after the migration: %+v, want it %s as journaled", id, r, want)
			}
		}
		if got := claimIDs(t, s, "worker"); !slices.Equal(got, []string{"w-head"}) {
			t.Fatalf("claimed %v, want [w-head]: the head of r2, with r3 held back by its dead write", got)
		}
		if err := s.CompleteRepair(ctx, "w-head", "worker"); err != nil {
			t.Fatal(err)
		}
		if got := claimIDs(t, s, "worker"); !slices.Equal(got, []string{"w-later"}) {
			t.Errorf("after the head was delivered: claimed %v, want [w-later]", got)
		}
		// The sequence goes on from where it stood.
		if err := s.RecordOutcome(ctx, "w-sent", domain.Outcome{Status: 200}); err != nil {
			t.Fatal(err)
		}
		if r, err := s.GetRepair(ctx, "w-sent", false); err != nil || r.Seq <= 1 {
			t.Errorf("the write in flight was numbered %d (%v), want more than 1", r.Seq, err)
		}
	})
}

// migratedBefore opens a fresh store of backend b with the migrations
// before version applied and recorded, as a release before that version
// left it, and returns its DSN, dialect and database.
func migratedBefore(t *testing.T, b backend, version int) (string, *dialect, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	dsn := b.fresh(t)
	d, db, err := openDB(dsn)
	if err != nil {
		t.Fatal(err)
	}
	list, err := d.migrationList()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, d.bootstrap); err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if m.Version >= version {
			break
		}
		if _, err := db.ExecContext(ctx, m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO strangler_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, d.encodeTime(t0)); err != nil {
			t.Fatal(err)
		}
	}
	return dsn, d, db
}
