package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
)

// writeHeadroom is the free space an embedded store's file system must
// keep for ProbeWrites to pass. SQLite fails a write only once it needs a
// page the disk cannot give, and a small write that fits in pages already
// allocated still succeeds on a full disk: a write probe alone would say
// all is well until a client's larger write is refused. Below this much
// free space the store counts as refusing writes before any write fails.
const writeHeadroom = 1 << 20

// ProbeWrites checks, with no client's write at stake, whether the store
// would take one: on PostgreSQL an UPDATE (refused by a standby or a
// read-only server) in a transaction whose commit the server must write
// to its log, changing no row; on the embedded store its file still at
// its path, writeHeadroom free on its file system, the write lock (held
// by another session, it waits as a write would), and a commit that
// writes: it counts the probes in strangler_sequences. A commit that
// changes no page writes nothing, and passed on files the system no
// longer lets the store write (read-only, immutable, a failing disk),
// where every client's write fails.
func (s *Store) ProbeWrites(ctx context.Context) error {
	if f := s.dialect.file; f != nil {
		if _, err := f.refused(); err != nil {
			return err
		}
		if free, err := freeSpace(filepath.Dir(f.path)); err != nil {
			return fmt.Errorf("store: probing free space for %s: %w", f.path, err)
		} else if free >= 0 && free < writeHeadroom {
			return fmt.Errorf("store: %s: %d KiB free on its file system, below the %d KiB a write may need", f.path, free>>10, writeHeadroom>>10)
		}
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		// An UPDATE of no row: refused by a read-only server or session,
		// and on SQLite it takes the write lock.
		if _, err := tx.ExecContext(ctx, `UPDATE strangler_repairs SET state = state WHERE false`); err != nil {
			return err
		}
		if s.dialect.name == "postgres" {
			// A transaction id makes the commit one the server must
			// write to its log (and wait for a synchronous standby on).
			_, err := tx.ExecContext(ctx, `SELECT txid_current()`)
			return err
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO strangler_sequences (name, value) VALUES ('strangler_write_probe', 1)
			ON CONFLICT (name) DO UPDATE SET value = value + 1`)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: write probe: %w", err)
	}
	return nil
}
