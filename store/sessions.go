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

// CreateSession stores a new session, and deletes the sessions last used
// before expiredBefore: nobody can use them any more.
func (s *Store) CreateSession(ctx context.Context, sess Session, expiredBefore time.Time) error {
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM strangler_sessions WHERE last_seen < $1`, s.ts(expiredBefore)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO strangler_sessions (id, actor, binding, created_at, last_seen)
			VALUES ($1, $2, $3, $4, $5)`,
			sess.ID, sess.Actor, sess.Binding, s.ts(sess.CreatedAt), s.ts(sess.LastSeen))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// UseSession returns the session id names and records that it was used
// at now. A session last used before expiredBefore has expired: like one
// that does not exist (or was deleted), it is ErrNotFound.
func (s *Store) UseSession(ctx context.Context, id string, now, expiredBefore time.Time) (Session, error) {
	sess := Session{ID: id}
	err := s.db.QueryRowContext(ctx, `
		UPDATE strangler_sessions SET last_seen = $2
		WHERE id = $1 AND last_seen >= $3
		RETURNING actor, binding, created_at, last_seen`, id, s.ts(now), s.ts(expiredBefore)).
		Scan(&sess.Actor, &sess.Binding, scanTime(&sess.CreatedAt), scanTime(&sess.LastSeen))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("store: use session: %w", ErrNotFound)
	} else if err != nil {
		return Session{}, fmt.Errorf("store: use session: %w", err)
	}
	return sess, nil
}

// DeleteSession ends a session (a logout). Deleting one that does not
// exist is not an error: it has ended either way.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM strangler_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}
