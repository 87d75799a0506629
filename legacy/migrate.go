package legacy

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"strangler/internal/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the legacy schema up to date: it applies, in order, the
// embedded migrations/NNNN_*.sql files not yet recorded in
// schema_migrations. Several processes may start at once: a lock named
// after the database lets one migrate while the others wait. MariaDB
// commits DDL at once, so every statement of a migration must be safe to
// run again.
func Migrate(ctx context.Context, db *sql.DB) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("legacy migrate: %w", err)
	}
	list, err := migrate.Load(dir)
	if err != nil {
		return fmt.Errorf("legacy migrate: %w", err)
	}
	_, err = migrate.Schema{
		Migrations: list,
		Bootstrap: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INT NOT NULL PRIMARY KEY,
			applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB`,
		Applied: "SELECT version FROM schema_migrations",
		Record: func(ctx context.Context, ex migrate.Execer, m migrate.Migration) error {
			_, err := ex.ExecContext(ctx, "INSERT INTO schema_migrations (version) VALUES (?)", m.Version)
			return err
		},
		SessionLock: migrate.MySQLLock("strangler_legacy_migrate"),
	}.Run(ctx, db)
	if err != nil {
		return fmt.Errorf("legacy migrate: %w", err)
	}
	return nil
}
