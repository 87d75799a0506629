package modern

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"strangler/internal/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the modern schema up to date: it applies, in order, the
// embedded migrations/NNNN_*.sql files not yet recorded in
// schema_migrations, all in one transaction (PostgreSQL's DDL is
// transactional), under an advisory lock so that processes starting
// together migrate once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("modern migrate: %w", err)
	}
	list, err := migrate.Load(dir)
	if err != nil {
		return fmt.Errorf("modern migrate: %w", err)
	}
	// The runner speaks database/sql; closing this view leaves the pool open.
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	_, err = migrate.Schema{
		Migrations: list,
		Bootstrap: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`,
		Applied: "SELECT version FROM schema_migrations",
		Record: func(ctx context.Context, ex migrate.Execer, m migrate.Migration) error {
			_, err := ex.ExecContext(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", m.Version)
			return err
		},
		TxLock: "SELECT pg_advisory_xact_lock(hashtext('strangler_modern_migrate'), hashtext(current_schema()))",
	}.Run(ctx, db)
	if err != nil {
		return fmt.Errorf("modern migrate: %w", err)
	}
	return nil
}
