package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"strangler/internal/migrate"
)

// migrations lists the dialect's embedded migrations in version order.
func (d *dialect) migrationList() ([]migrate.Migration, error) {
	return migrate.Load(d.migrations)
}

// afterStep is the step a migration needs that SQL cannot take, run in
// the same transaction right after its SQL; nil for most. Keyed by the
// name without its version, which may be renumbered.
func (s *Store) afterStep(ctx context.Context, tx *sql.Tx, m migrate.Migration) error {
	_, name, _ := strings.Cut(m.Name, "_")
	switch name {
	case "audit_chain":
		return s.chainPreExisting(ctx, tx)
	case "journal_stands_for":
		return s.fillStandsFor(ctx, tx)
	case "journal_folded_resources", "journal_integer_resources":
		return s.foldResources(ctx, tx)
	case "client_versions_folded":
		return s.foldClientVersions(ctx, tx)
	}
	return nil
}

// migrate applies the migrations the database has not seen, all in one
// transaction: a failure leaves the schema as it was. Two processes
// starting at once take turns (the dialect's migration lock on PostgreSQL,
// SQLite's single writer), and the second finds nothing left to do.
func (s *Store) migrate(ctx context.Context) error {
	list, err := s.dialect.migrationList()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	run := newMigrationRun(s.dialect.name == "postgres")
	lock := s.dialect.migrationLock
	if run.tag != "" {
		// Names the session in pg_stat_activity until it commits, so
		// that reportMigration can ask what it waits for.
		lock = "SELECT set_config('application_name', '" + run.tag + "', true);\n" + lock
	}
	s.migration.Store(run)
	s.gate.migrating.Store(true)
	stop := s.reportWhileRunning(run)
	res, err := migrate.Schema{
		Migrations: list,
		Bootstrap:  s.dialect.bootstrap,
		Applied:    `SELECT version FROM strangler_schema_migrations`,
		Record: func(ctx context.Context, ex migrate.Execer, m migrate.Migration) error {
			_, err := ex.ExecContext(ctx, `INSERT INTO strangler_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, s.ts(s.clock()))
			return err
		},
		TxLock: lock,
		After:  s.afterStep,
	}.Run(ctx, s.db)
	stop()
	s.gate.migrating.Store(false)
	s.migration.Store(nil)
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", s.dialect.name, err)
	}
	for _, m := range res.Applied {
		s.log.Info("store migration applied", "store", s.dialect.name, "migration", m.Name)
	}
	if known := list[len(list)-1].Version; res.Newest > known {
		// A newer release migrated this database and this one was
		// rolled back to. Migrations only add, so carry on, but say so.
		s.log.Warn("store schema is newer than this release", "store", s.dialect.name,
			"schema_version", res.Newest, "known_version", known)
	}
	return nil
}
