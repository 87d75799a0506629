package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
)

// writeHeadroom is the free space an embedded store's file system must
// keep, beyond what its write-ahead log may need, for a new dual write
// to be journaled and for ProbeWrites to pass. SQLite fails a write only
// once it needs a page the disk cannot give, and a small write that fits
// in pages already allocated still succeeds on a full disk: a write probe
// alone would say all is well until a client's larger write is refused.
// Below this much room the store counts as refusing writes before any
// write fails, and what is left takes the outcomes of the writes already
// at the primary.
const writeHeadroom = 1 << 20

// ProbeWrites checks, with no client's write at stake, whether the store
// would take one: on PostgreSQL an UPDATE (refused by a standby or a
// read-only server) in a transaction whose commit the server must write
// to its log, changing no row; on the embedded store its file still at
// its path, room for a new write (see room), the write lock (held by
// another session, it waits as a write would), and a commit that
// writes: it counts the probes in strangler_sequences. A commit that
// changes no page writes nothing, and passed on files the system no
// longer lets the store write (read-only, immutable, a failing disk),
// where every client's write fails.
func (s *Store) ProbeWrites(ctx context.Context) error {
	if f := s.dialect.file; f != nil {
		if _, err := f.refused(); err != nil {
			return err
		}
	}
	if err := s.room(ctx); err != nil {
		return err
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

// room checks that the embedded store's file system keeps writeHeadroom
// free beyond what its write-ahead log may need; nil on PostgreSQL.
// BeginWrite and BeginKeyedWrite ask before they journal a new write.
//
// The log counts because a checkpoint copies it into the database file,
// which grows by up to what the log holds, and the log's space is
// reused only once a checkpoint copied all of it. A reader in another
// session (an operator's sqlite3 shell left in a transaction, a long
// backup) holds checkpoints back, and the log grows under writes; once
// it had filled the disk no checkpoint could finish, even after the
// reader left, and the store refused every write until an operator
// freed space elsewhere (an 8 MiB disk: still refusing 30 s after).
//
// Short of room, it first runs a passive checkpoint, which waits for no
// reader: once that copied the whole log, the next commit writes the log
// over from its start and truncates it (journal_size_limit), so the
// log's space counts as free. SQLite checkpoints on its own only once
// the log holds 1000 pages: a log held below that by this room stayed
// in place, and writes refused, with the reader long gone.
func (s *Store) room(ctx context.Context) error {
	f := s.dialect.file
	if f == nil {
		return nil
	}
	avail, used, err := spaceOf(f.dir)
	if err != nil {
		return fmt.Errorf("store: free space for %s: %w", f.path, err)
	}
	if avail < 0 || avail-used >= writeHeadroom {
		// Not known, or the log fits, being at most what is in use: no
		// need to look at it (a lookup that would allocate).
		return nil
	}
	wal := walSize(f.path)
	if avail-wal >= writeHeadroom {
		return nil
	}
	var busy, frames, copied int
	err = s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	if err == nil && frames == copied {
		if avail, _, err = spaceOf(f.dir); err == nil && avail+walSize(f.path) >= writeHeadroom {
			return nil
		}
	}
	return fmt.Errorf("store: %s: %d KiB free on its file system, of which its write-ahead log may need %d KiB; new writes are refused below %d KiB to spare",
		f.path, avail>>10, wal>>10, writeHeadroom>>10)
}

// walSize is the size of the write-ahead log of the database at path; 0
// when there is none.
func walSize(path string) int64 {
	st, err := os.Stat(path + "-wal")
	if err != nil {
		return 0
	}
	return st.Size()
}
