package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"strangler/domain"
	"strangler/internal/dsn"
	"strangler/internal/filecap"
)

// Backup writes a consistent copy of the embedded store at dsn
// ("sqlite:PATH") to out, while a facade may be serving from it. VACUUM
// INTO reads one snapshot of the database in a read transaction, which in
// WAL mode never blocks the facade's writes, and writes it compacted into
// a new file. The copy goes to a temporary file next to out, synced and
// then renamed, so out is either a whole backup or absent; out must not
// exist. The store itself is opened read-only: a wrong path is an error,
// never a new empty store.
func Backup(ctx context.Context, dsn, out string) error {
	path, err := sqlitePath(dsn)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	if err := filecap.RegularOrAbsent(out); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("store: backup: %s exists; name a new file", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: backup: %w", err)
	}
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".partial")
	os.Remove(tmp) // left by an earlier backup that died
	createPrivate(tmp)
	if _, err := db.ExecContext(ctx, `VACUUM INTO $1`, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: backup of %s: %w", path, err)
	}
	if err := releaseCopiedLeases(ctx, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: backup: %w", err)
	}
	return syncFile(filepath.Dir(out))
}

// releaseCopiedLeases frees the deliveries leased in a fresh copy, and
// the named leases: the workers holding them deliver (and the replica
// holding a named lease drives) from the original, never from the copy,
// so a facade restored from it would otherwise wait for the leases to
// pass.
// Writes still sent keep theirs: whether the primary applied them is not
// in the copy, and once the lease passes they are unknown, for an operator.
func releaseCopiedLeases(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `
		UPDATE strangler_repairs SET lease_owner = NULL, lease_until = NULL
		WHERE state = 'pending' AND lease_owner IS NOT NULL`); err != nil {
		return fmt.Errorf("store: backup: releasing the copy's leases: %w", err)
	}
	// The named leases (one replica drives the ramps) too, where the
	// store has them: their holders run on the original.
	var named int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'strangler_leases'`).Scan(&named); err != nil {
		return fmt.Errorf("store: backup: releasing the copy's leases: %w", err)
	}
	if named > 0 {
		if _, err := db.ExecContext(ctx, `DELETE FROM strangler_leases`); err != nil {
			return fmt.Errorf("store: backup: releasing the copy's leases: %w", err)
		}
	}
	return nil
}

// sqlitePath is the file a "sqlite:PATH[?options]" store names.
func sqlitePath(addr string) (string, error) {
	path, _, ok := dsn.SQLite(addr)
	if !ok {
		return "", errors.New("store: backups are of the embedded store (sqlite:PATH); back up PostgreSQL with its own tools (pg_dump, pg_basebackup, your provider's snapshots)")
	}
	return path, nil
}

// openReadOnly opens the SQLite file at path without the right to change
// or create it.
func openReadOnly(path string) (*sql.DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: sqlite: file name %q must not contain ? or #", path)
	}
	if err := filecap.RegularOrAbsent(path); err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// syncFile flushes a file, or a directory's entries, to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: backup: sync %s: %w", path, err)
	}
	return nil
}

// BackupReport is what Verify found in a backup.
type BackupReport struct {
	// SchemaVersion is the backup's; KnownVersion the latest this build
	// knows. A facade started on an older backup migrates it.
	SchemaVersion, KnownVersion int
	Overrides, AuditEntries     int
	// Repairs counts the journaled writes still open, by state: pending,
	// dead, unknown and sent.
	Repairs map[domain.State]int
}

// Verify checks the SQLite file at path as a backup of the store: that
// SQLite finds it intact (integrity_check), that it holds a store whose
// schema this build knows, and what it holds. Any problem is an error; the
// file is only read.
func Verify(ctx context.Context, path string) (BackupReport, error) {
	rep := BackupReport{Repairs: map[domain.State]int{}}
	if _, err := os.Stat(path); err != nil {
		return rep, fmt.Errorf("store: verify: %w", err)
	}
	db, err := openReadOnly(path)
	if err != nil {
		return rep, err
	}
	defer db.Close()
	if err := integrity(ctx, db); err != nil {
		return rep, fmt.Errorf("store: verify %s: %w", path, err)
	}
	list, err := sqliteDialect().migrationList()
	if err != nil {
		return rep, fmt.Errorf("store: verify: %w", err)
	}
	rep.KnownVersion = list[len(list)-1].Version
	var version sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM strangler_schema_migrations`).Scan(&version); err != nil {
		return rep, fmt.Errorf("store: verify %s: not a strangler store: %w", path, err)
	}
	rep.SchemaVersion = int(version.Int64)
	if rep.SchemaVersion > rep.KnownVersion {
		return rep, fmt.Errorf("store: verify %s: schema version %d is newer than this strangler knows (%d); verify and restore it with a newer one",
			path, rep.SchemaVersion, rep.KnownVersion)
	}
	counts := []struct {
		n     *int
		query string
	}{
		{&rep.Overrides, `SELECT count(*) FROM strangler_overrides`},
		{&rep.AuditEntries, `SELECT count(*) FROM strangler_audit`},
	}
	for _, c := range counts {
		if err := db.QueryRowContext(ctx, c.query).Scan(c.n); err != nil {
			return rep, fmt.Errorf("store: verify %s: %w", path, err)
		}
	}
	rows, err := db.QueryContext(ctx, countOpen)
	if err != nil {
		return rep, fmt.Errorf("store: verify %s: %w", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var st domain.State
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return rep, fmt.Errorf("store: verify %s: %w", path, err)
		}
		rep.Repairs[st] = n
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("store: verify %s: %w", path, err)
	}
	return rep, nil
}

// integrity runs SQLite's integrity_check, which reads every page: nil
// when it answers "ok", else an error listing the first problems.
func integrity(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check(20)`)
	if err != nil {
		return fmt.Errorf("damaged: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("damaged: %w", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("damaged: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("damaged: %s", strings.Join(problems, "; "))
	}
	return nil
}
