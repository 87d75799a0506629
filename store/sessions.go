package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a login to the status page, kept in the store so that every
// replica knows it and a logout ends it everywhere.
type Session struct {
	// ID is a hash of the session id the browser holds, never the id
	// itself: a copy of the store opens no session.
	ID string
	// Actor is the name of the admin token the session was opened with.
	Actor string
	// Binding ties the session to that token's value, so that a token
	// changed or removed in the configuration ends its sessions.
	Binding   string
	CreatedAt time.Time
	// LastSeen is when the session was last used; idle sessions expire.
	LastSeen time.Time
}

// CreateSession stores a new session, and deletes the sessions unused for
// longer than idle: nobody can use them any more. It is created and last
// seen at now (sessionAt); sess's own times are not read.
func (s *Store) CreateSession(ctx context.Context, sess Session, now time.Time, idle time.Duration) error {
	expired, expiredArg := s.sessionAt(1, now, -idle)
	at, atArg := s.sessionAt(4, now, 0)
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM strangler_sessions WHERE last_seen < `+expired, expiredArg); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO strangler_sessions (id, actor, binding, created_at, last_seen)
			VALUES ($1, $2, $3, `+at+`, `+at+`)`,
			sess.ID, sess.Actor, sess.Binding, atArg)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// UseSession returns the session id names and records that it was used
// now (sessionAt). A session unused for longer than idle has expired:
// like one that does not exist (or was deleted), it is ErrNotFound.
//
// An id that names no live session costs a read, never a write: the
// status page takes the cookie from whoever sends one, and an UPDATE
// even of no row takes SQLite's write lock, which the dual-write journal
// waits for, and fails in a read-only PostgreSQL transaction (a full
// disk), closing the pool's connection.
func (s *Store) UseSession(ctx context.Context, id string, now time.Time, idle time.Duration) (Session, error) {
	expired, expiredArg := s.sessionAt(2, now, -idle)
	var live bool
	err := s.db.QueryRowContext(ctx, `
		SELECT EXISTS (SELECT 1 FROM strangler_sessions WHERE id = $1 AND last_seen >= `+expired+`)`,
		id, expiredArg).Scan(&live)
	if err != nil {
		return Session{}, fmt.Errorf("store: use session: %w", err)
	}
	if !live {
		return Session{}, fmt.Errorf("store: use session: %w", ErrNotFound)
	}
	at, atArg := s.sessionAt(2, now, 0)
	expired, expiredArg = s.sessionAt(3, now, -idle)
	sess := Session{ID: id}
	err = s.db.QueryRowContext(ctx, `
		UPDATE strangler_sessions SET last_seen = `+at+`
		WHERE id = $1 AND last_seen >= `+expired+`
		RETURNING actor, binding, created_at, last_seen`, id, atArg, expiredArg).
		Scan(&sess.Actor, &sess.Binding, scanTime(&sess.CreatedAt), scanTime(&sess.LastSeen))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("store: use session: %w", ErrNotFound)
	} else if err != nil {
		return Session{}, fmt.Errorf("store: use session: %w", err)
	}
	return sess, nil
}

// sessionAt returns the SQL for a session's time now+d, using parameter
// $n, and that parameter's argument. On PostgreSQL it is the server's
// clock, which every replica shares: a replica whose clock is hours off
// would otherwise stamp a use the others take for hours old (logging its
// user out there) or still to come (keeping a session idle past its end
// alive everywhere), and accept a session the others had ended. On the
// embedded store, which one process uses, it is that process's clock:
// now, as the caller read it.
func (s *Store) sessionAt(n int, now time.Time, d time.Duration) (string, any) {
	if s.dialect.name == "postgres" {
		return fmt.Sprintf("(now() + $%d * interval '1 microsecond')", n), d.Microseconds()
	}
	return fmt.Sprintf("$%d", n), s.ts(now.Add(d))
}

// DeleteSession ends a session (a logout). Deleting one that does not
// exist is not an error: it has ended either way.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM strangler_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}
