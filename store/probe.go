package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"

	"strangler/domain"
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

// bodyCopies is how many times the size of its body a new dual write
// needs of the room (see room). SQLite writes a row's overflow pages
// again whenever the row changes size, so the body goes to the
// write-ahead log when it is journaled and again with its outcome until
// it is erased, a checkpoint copies it into the database file, and what
// the log grows by counts twice in the room: as space gone, and as what
// the log may need. Measured on a small disk: a 1 MiB body took 4.7 MiB
// of the room, a 2 MiB one 10 MiB.
const bodyCopies = 6

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
	if err := s.room(ctx, 0); err != nil {
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
// free beyond what its write-ahead log may need, and beyond bodyCopies
// times size, the body of the write about to be journaled; nil on
// PostgreSQL. BeginWrite and BeginKeyedWrite ask before they journal a
// new write, ProbeWrites with no body.
//
// The log counts because a checkpoint copies it into the database file,
// which grows by up to what the log holds, and the log's space is
// reused only once a checkpoint copied all of it. A reader in another
// session (an operator's sqlite3 shell left in a transaction, a long
// backup) holds checkpoints back, and the log grows under writes; once
// it had filled the disk no checkpoint could finish, even after the
// reader left, and the store refused every write until an operator
// freed space elsewhere (an 8 MiB disk: still refusing 30 s after).
// A write's body counts for the same reason (bodyCopies): with 6 MiB
// free, a 9 MiB body (within max_replay_body) filled the disk with its
// log pages before SQLite refused it, and a 2 MiB one was taken and
// filled it when its outcome wrote the body again; no checkpoint could
// finish then, and every dual write answered 503 until an operator freed
// space. Such a write is now refused before it is begun, and the others
// go on. Such a refusal, of a write the store would take were it of
// ordinary size, is a *domain.TooLargeForRoomError: the write's alone,
// which leaves the store counted as taking writes.
//
// Short of room, it first runs a passive checkpoint, which waits for no
// reader: once that copied the whole log, the next commit writes the log
// over from its start and truncates it (journal_size_limit), so the
// log's space counts as free. SQLite checkpoints on its own only once
// the log holds 1000 pages: a log held below that by this room stayed
// in place, and writes refused, with the reader long gone.
func (s *Store) room(ctx context.Context, size int64) error {
	f := s.dialect.file
	if f == nil {
		return nil
	}
	need := writeHeadroom + bodyCopies*size
	avail, used, err := spaceOf(f.dir)
	if err != nil {
		return fmt.Errorf("store: free space for %s: %w", f.path, err)
	}
	if avail < 0 || avail-used >= need {
		// Not known, or the log fits, being at most what is in use: no
		// need to look at it (a lookup that would allocate).
		return nil
	}
	wal := walSize(f.path)
	free := avail - wal
	if free >= need {
		return nil
	}
	var busy, frames, copied int
	err = s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	if err == nil && frames == copied {
		if avail, _, err = spaceOf(f.dir); err == nil {
			if free = avail + walSize(f.path); free >= need {
				return nil
			}
		}
	}
	if free >= writeHeadroom {
		// The store takes a write of ordinary size (a probe passes): this
		// one's refusal is its own, and says nothing of the store.
		return &domain.TooLargeForRoomError{Need: need, Free: free}
	}
	return fmt.Errorf("store: %s: %d KiB free on its file system, of which its write-ahead log may need %d KiB and this write %d KiB; new writes are refused below %d KiB to spare",
		f.path, avail>>10, wal>>10, (need-writeHeadroom)>>10, writeHeadroom>>10)
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
