package store

import (
	"context"
	"strings"
	"sync"
	"testing"

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
