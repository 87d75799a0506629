package main

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/store"
)

// TestAFacadeServesWhileItsStoreMigrationWaitsForALock: the store's
// migration waits past serve's 10 s for a lock another session holds
// (a replica's long transaction). The facade serves meanwhile and says
// the truth: /readyz 503 waiting for the state store (no snapshot),
// strangler_store_up 0, a log line naming the lock; once the lock is
// let go it migrates and is ready with no restart. Before, serve failed
// after 10 s with the migration cancelled mid-way.
func TestAFacadeServesWhileItsStoreMigrationWaitsForALock(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	ctx := context.Background()
	// A store one migration short: 0140 empties strangler_samples, which
	// can run again.
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM strangler_schema_migrations WHERE version = 140`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`LOCK TABLE strangler_samples IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, routes: dualWriteRoutes})
	f := launch(t, "serve", "--config", cfg)
	line := f.logs.waitFor(t, "store migration still running", nil, 30*time.Second)
	if got, _ := line["waiting_for"].(string); !strings.Contains(got, "strangler_samples") {
		t.Errorf("the migration's log line says it waits for %q, want the table it waits for", got)
	}
	if code, body := getBody(t, "http://"+f.admin+"/readyz"); code != http.StatusServiceUnavailable || body != "waiting for the state store\n" {
		t.Errorf("while migrating: /readyz got %d %q, want 503 waiting for the state store", code, body)
	}
	if got := metricValue(t, f.admin, "strangler_store_up"); got != "0" {
		t.Errorf("while migrating: strangler_store_up %s, want 0", got)
	}

	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the facade ready once the migration is done", func() bool {
		code, body := getBody(t, "http://"+f.admin+"/readyz")
		return code == http.StatusOK && body == "ready\n"
	})
	if got := metricValue(t, f.admin, "strangler_store_up"); got != "1" {
		t.Errorf("once migrated: strangler_store_up %s, want 1", got)
	}
	if code, body, err := sendRequest("PUT", "http://"+f.public+"/items/1", `{"v":1}`, nil); code != http.StatusOK {
		t.Errorf("a dual write once migrated: got %d %s %v", code, body, err)
	}
}
