package legacy_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"strangler/internal/testdb"
	"strangler/legacy"
	"strangler/patients/patientstest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestMariaDBBackendKeepsTheContract(t *testing.T) {
	db, err := legacy.Open(context.Background(), testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	patientstest.Run(t, legacy.New(db, discard()), patientstest.Features{})
}

func TestMigratingTwiceChangesNothing(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.MySQL(t)
	db, err := legacy.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := legacy.Seed(ctx, db, 3); err != nil {
		t.Fatal(err)
	}
	if err := legacy.Migrate(ctx, db); err != nil {
		t.Fatalf("second migration: %v", err)
	}
	if err := legacy.Seed(ctx, db, 3); err != nil {
		t.Fatal(err)
	}
	var n, versions int
	db.QueryRow("SELECT COUNT(*) FROM Patient").Scan(&n)
	db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&versions)
	if n != 3 || versions != 1 {
		t.Errorf("got %d patients and %d migrations recorded, want 3 and 1", n, versions)
	}
}
