package legacy

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the legacy schema up to date: it applies, in order, the
// embedded migrations/NNNN_*.sql files not yet recorded in
// schema_migrations. Several processes may start at once: a lock named
// after the database lets one migrate while the others wait.
func Migrate(ctx context.Context, db *sql.DB) error {
	// GET_LOCK belongs to a session, so lock, migrate and unlock on one
	// connection.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("legacy migrate: %w", err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT('strangler_legacy_migrate.', DATABASE()), 30)").Scan(&got); err != nil || got.Int64 != 1 {
		return fmt.Errorf("legacy migrate: waiting for another process's migration: %v", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(CONCAT('strangler_legacy_migrate.', DATABASE()))")
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INT NOT NULL PRIMARY KEY,
		applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB`); err != nil {
		return fmt.Errorf("legacy migrate: %w", err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	for _, file := range files {
		version, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(file, "migrations/"), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("legacy migrate: %s: name must start with a version number", file)
		}
		var done int
		if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", version).Scan(&done); err != nil {
			return fmt.Errorf("legacy migrate: %w", err)
		}
		if done > 0 {
			continue
		}
		text, _ := migrations.ReadFile(file)
		for _, stmt := range statements(string(text)) {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("legacy migrate: %s: %w", file, err)
			}
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO schema_migrations (version) VALUES (?)", version); err != nil {
			return fmt.Errorf("legacy migrate: %w", err)
		}
	}
	return nil
}

// statements splits a migration file at the semicolons that end its
// lines, dropping comment lines: the driver runs one statement at a time.
func statements(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if s := strings.TrimSpace(cur.String()); s != ";" {
				out = append(out, strings.TrimSuffix(s, ";"))
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
