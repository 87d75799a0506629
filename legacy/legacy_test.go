package legacy_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"strangler/internal/testdb"
	"strangler/legacy"
	"strangler/patients"
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

// TestAConflictHoldsNoValue: MariaDB's duplicate-key message quotes the
// value (`Duplicate entry 'RVH-MRN7730019' for key 'PHI_Site_MRN'`),
// and the store's conflict error carried that message to whoever logs
// it; it names the key only.
func TestAConflictHoldsNoValue(t *testing.T) {
	ctx := context.Background()
	db, err := legacy.Open(ctx, testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := legacy.NewStore(db)
	p := patients.Patient{FirstName: "Zelda", LastName: "Canary", BirthDate: "1901-02-03",
		MRNs: []patients.MRN{{Site: "RVH", MRN: "MRN7730019"}}}
	if _, err := s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	_, err = s.Create(ctx, p)
	if !errors.Is(err, patients.ErrConflict) {
		t.Fatalf("second create: %v, want a conflict", err)
	}
	if !strings.Contains(err.Error(), "for key 'PHI_Site_MRN'") || strings.Contains(err.Error(), "7730019") {
		t.Errorf("the conflict says %q; want the key named and no record number", err)
	}
}
