package store

import (
	"bytes"
	"context"
	"log/slog"
	"strangler/domain"
	"strings"
	"sync"
	"testing"
	"time"
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
