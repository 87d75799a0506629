package modern

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the modern schema up to date: it applies, in order, the
// embedded migrations/NNNN_*.sql files not yet recorded in
// schema_migrations, all in one transaction (PostgreSQL's DDL is
// transactional), under an advisory lock so that processes starting
// together migrate once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("modern migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('strangler_modern_migrate'), hashtext(current_schema()))"); err != nil {
		return fmt.Errorf("modern migrate: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("modern migrate: %w", err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	for _, file := range files {
		version, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(file, "migrations/"), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("modern migrate: %s: name must start with a version number", file)
		}
		var done bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", version).Scan(&done); err != nil {
			return fmt.Errorf("modern migrate: %w", err)
		}
		if done {
			continue
		}
		text, _ := migrations.ReadFile(file)
		// Without arguments pgx uses the simple protocol, which runs a
		// whole file of statements.
		if _, err := tx.Exec(ctx, string(text)); err != nil {
			return fmt.Errorf("modern migrate: %s: %w", file, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", version); err != nil {
			return fmt.Errorf("modern migrate: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("modern migrate: %w", err)
	}
	return nil
}
