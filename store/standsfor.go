package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"

	"strangler/edge/canonical"
)

// notCreate is the SQL condition for a journaled write that is no create:
// one standing for another method than POST (a POST with _method=DELETE
// included), for several (""), or for one not known (NULL: see
// fillStandsFor), which is ordered as a write to its resource, the safe
// reading.
const notCreate = `(stands_for IS NULL OR stands_for <> 'POST')`

// standsForRead is what a write journaled with method and, if valid,
// stored as its stands_for stands for: what is stored, else (a row of a
// release that did not record it) its method, but for a POST, which
// stands for what its request says (canonical.StandsFor, the rule the
// router followed), read from p, its opened payload; "" when that was
// erased, or names no standard method: an override is a token the client
// chose, which may be patient data, and stands_for is kept in clear (an
// allow_methods method, which the store does not know, is "" too: no
// create).
func standsForRead(method string, stored sql.NullString, p *payload) string {
	switch {
	case stored.Valid:
		return stored.String
	case method != http.MethodPost:
		return method
	case p == nil || p.target == "":
		return ""
	}
	h, err := decodeHeader(p.header)
	if err != nil {
		return ""
	}
	if sf := canonical.StandsFor(method, h, p.target, p.body); canonical.StandardMethod(sf) {
		return sf
	}
	return ""
}

// fillStandsFor records what the POSTs that earlier releases journaled
// stand for, read from their kept requests (standsForRead); migration
// 0160 did the other writes in SQL. A POST whose request was erased (a
// settled write) or cannot be read (its store_encryption key is gone)
// stays NULL, taken for no create (notCreate). Run after the migration,
// in its transaction, and by SweepRepairs for the rows replicas of an
// earlier release journal during an upgrade.
func (s *Store) fillStandsFor(ctx context.Context, q querier) error {
	type row struct {
		id     string
		p      payload
		sealed bool
	}
	after := ""
	for {
		rows, err := q.QueryContext(ctx, `
			SELECT id, `+payloadColumns+` FROM strangler_repairs
			WHERE stands_for IS NULL AND method = 'POST' AND target <> '' AND id > $1
			ORDER BY id LIMIT 500`, after)
		if err != nil {
			return fmt.Errorf("store: read what old writes stand for: %w", err)
		}
		// Read whole before updating: a transaction's connection runs
		// one statement at a time.
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.p.target, &r.p.header, &r.p.body, &r.p.location, &r.p.primaryID, &r.sealed); err != nil {
				rows.Close()
				return fmt.Errorf("store: read what old writes stand for: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: read what old writes stand for: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		for _, r := range page {
			after = r.id
			p, err := s.open(r.id, r.p, r.sealed)
			if err != nil {
				continue // stays NULL: no create
			}
			if _, err := q.ExecContext(ctx, `UPDATE strangler_repairs SET stands_for = $2 WHERE id = $1 AND stands_for IS NULL`,
				r.id, standsForRead(http.MethodPost, sql.NullString{}, &p)); err != nil {
				return fmt.Errorf("store: record what old writes stand for: %w", err)
			}
		}
	}
}
