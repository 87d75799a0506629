package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// migration is one embedded schema change, NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the dialect's embedded migrations in version order.
func (d *dialect) migrationList() ([]migration, error) {
	entries, err := fs.ReadDir(d.migrations, ".")
	if err != nil {
		return nil, err
	}
	var list []migration
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number", e.Name())
		}
		b, err := fs.ReadFile(d.migrations, e.Name())
		if err != nil {
			return nil, err
		}
		list = append(list, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].version < list[j].version })
	for i := 1; i < len(list); i++ {
		if list[i].version == list[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share a version", list[i-1].name, list[i].name)
		}
	}
	return list, nil
}

// afterStep is the step a migration needs that SQL cannot take, run in
// the same transaction right after its SQL; nil for most. Keyed by the
// name without its version, which may be renumbered.
func (s *Store) afterStep(name string) func(context.Context, *sql.Tx) error {
	_, name, _ = strings.Cut(name, "_")
	switch name {
	case "audit_chain":
		return s.chainPreExisting
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
	err = inTx(ctx, s.db, func(tx *sql.Tx) error {
		if s.dialect.migrationLock != "" {
			if _, err := tx.ExecContext(ctx, s.dialect.migrationLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.dialect.bootstrap); err != nil {
			return err
		}
		applied := map[int]bool{}
		latest := 0
		rows, err := tx.QueryContext(ctx, `SELECT version FROM strangler_schema_migrations`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
			latest = max(latest, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range list {
			if applied[m.version] {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if step := s.afterStep(m.name); step != nil {
				if err := step(ctx, tx); err != nil {
					return fmt.Errorf("%s: %w", m.name, err)
				}
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO strangler_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, s.ts(s.clock())); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			s.log.Info("store migration applied", "store", s.dialect.name, "migration", m.name)
		}
		if known := list[len(list)-1].version; latest > known {
			// A newer release migrated this database and this one was
			// rolled back to. Migrations only add, so carry on, but say so.
			s.log.Warn("store schema is newer than this release", "store", s.dialect.name,
				"schema_version", latest, "known_version", known)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", s.dialect.name, err)
	}
	return nil
}
