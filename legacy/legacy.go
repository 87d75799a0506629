// Package legacy is the legacy side of a migration as the demo and the
// end-to-end tests run it: the reference patients API over the old
// monolith's data, in memory for the demo or in MariaDB/MySQL in the
// monolith's own schema (see migrations/).
//
// The legacy API ignores Idempotency-Key and X-Strangler-Primary-Id: it
// is the primary of a dual-write, and its ids (PatientSerNum, PhotoSerNum)
// are the ones clients know.
package legacy

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"strangler/internal/dsn"
	"strangler/internal/mysqldsn"
	"strangler/patients"
)

// DemoPatients is how many patients the demo's legacy backend holds.
const DemoPatients = 100

// NewDemo returns the legacy reference API over an in-memory store holding
// patients 1…DemoPatients.
func NewDemo(log *slog.Logger) http.Handler {
	s := patients.NewMemoryStore(DemoPatients, DemoPatients+1)
	return patients.NewAPI(patients.Backend{Patients: s, Photos: s}, log)
}

// New returns the legacy reference API over db, a database Open returned.
func New(db *sql.DB, log *slog.Logger) http.Handler {
	s := NewStore(db)
	return patients.NewAPI(patients.Backend{Patients: s, Photos: s}, log)
}

// Open connects to the legacy database, given as a mysql:// URL or in the
// driver's own DSN form, and migrates its schema.
func Open(ctx context.Context, addr string) (*sql.DB, error) {
	if strings.HasPrefix(addr, "mysql://") || strings.HasPrefix(addr, "mariadb://") {
		var err error
		if addr, err = mysqldsn.DriverDSN(addr); err != nil {
			return nil, err
		}
	}
	cfg, err := mysql.ParseDSN(addr)
	if err != nil {
		return nil, fmt.Errorf("legacy database: %w", dsn.RedactError(err, addr))
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("legacy database: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("legacy database: %w", err)
	}
	if err := Migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Seed gives an empty legacy database the synthetic patients 1…n, as the
// demo's in-memory store has them; a database with patients is left alone.
func Seed(ctx context.Context, db *sql.DB, n int64) error {
	var have int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM Patient").Scan(&have); err != nil {
		return fmt.Errorf("legacy seed: %w", err)
	}
	if have > 0 {
		return nil
	}
	s := NewStore(db)
	for id := int64(1); id <= n; id++ {
		if _, err := s.Create(ctx, patients.Synthetic(id)); err != nil {
			return fmt.Errorf("legacy seed: %w", err)
		}
	}
	return nil
}
