package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// MergeSchema replaces the learned response schema of route, method and
// status with merge(stored), stored being nil when there is none yet. It
// runs in one transaction that other replicas' merges of the same schema
// wait for, so that what each replica learned adds up. The document must
// be JSON; it is stored as it is (schemas hold field names and types,
// never values, so they are not encrypted).
func (s *Store) MergeSchema(ctx context.Context, route, method string, status int, merge func(stored []byte) ([]byte, error)) error {
	route, method = clean(route), clean(method)
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if err := s.lock(ctx, tx, lockSchemas, fmt.Sprintf("%s %s %d", route, method, status)); err != nil {
			return err
		}
		var stored []byte
		err := tx.QueryRowContext(ctx, `
			SELECT doc FROM strangler_schemas WHERE route = $1 AND method = $2 AND status = $3`,
			route, method, status).Scan(&stored)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		doc, err := merge(stored)
		if err != nil {
			return err
		}
		if !json.Valid(doc) {
			return errors.New("the schema is not valid JSON")
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO strangler_schemas (route, method, status, doc, updated_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (route, method, status) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
			route, method, status, string(doc), s.ts(s.clock()))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: merge schema of %s %s %d: %w", route, method, status, err)
	}
	return nil
}

// LoadSchemas returns the learned response schemas of route ("" for every
// route).
func (s *Store) LoadSchemas(ctx context.Context, route string) ([][]byte, error) {
	q := `SELECT doc FROM strangler_schemas`
	var args []any
	if route != "" {
		q += ` WHERE route = $1`
		args = append(args, route)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY route, method, status`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: schemas: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("store: schemas: %w", err)
		}
		out = append(out, doc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: schemas: %w", err)
	}
	return out, nil
}
