package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// RekeyReport is what Rekey did, per kind of value.
type RekeyReport struct {
	// Repairs, Samples, RepairKeys and Secrets count the rows re-encrypted
	// under the first key (or encrypted for the first time).
	Repairs, Samples, RepairKeys, Secrets int
	// APIBackfill counts the API backfill ledger's failed rows and
	// shared runs' group values re-encrypted.
	APIBackfill int
	// Unreadable counts the rows encrypted with a key that is no longer
	// configured: they stay as they are, unreadable until it is again.
	Unreadable int
}

// rekeyBatch is how many rows one rekey transaction reads and rewrites:
// small, so that a running facade's writes wait on it only briefly.
const rekeyBatch = 200

// Rekey encrypts under the first key everything the store keeps
// encrypted, or would with store_encryption, that is not yet: rows
// written in clear before encryption was configured, and rows encrypted
// with an older key. Afterwards the older keys can be dropped from the
// configuration. It works in small transactions and may run while
// facades use the store: a row that changes under it is read again, and
// a facade's new rows are already under the first key. Without keys it
// refuses: there is nothing to encrypt with.
func (s *Store) Rekey(ctx context.Context) (RekeyReport, error) {
	var rep RekeyReport
	if s.keys == nil {
		return rep, errors.New("store: rekey: store_encryption lists no key to encrypt with")
	}
	for _, step := range []func(context.Context, *RekeyReport) error{s.rekeyRepairs, s.rekeySamples, s.rekeyRepairKeys, s.rekeySecrets,
		s.rekeyAPIRows, s.rekeyGroupValues} {
		if err := step(ctx, &rep); err != nil {
			return rep, fmt.Errorf("store: rekey: %w", err)
		}
	}
	return rep, nil
}

// readPage reads the rows query returns, each with scan: one page of a
// rekey's walk through a table.
func readPage[T any](ctx context.Context, db *sql.DB, scan func(*sql.Rows) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var page []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		page = append(page, v)
	}
	return page, rows.Err()
}

// rekeyRepairs re-encrypts journaled writes' payloads. Each row is
// rewritten only if its payload is still what was read (a facade may
// record an outcome, or erase a delivered write, meanwhile); else it is
// read again.
func (s *Store) rekeyRepairs(ctx context.Context, rep *RekeyReport) error {
	after := ""
	type row struct {
		id     string
		p      payload
		sealed bool
	}
	for {
		batch, err := readPage(ctx, s.db, func(rows *sql.Rows) (r row, err error) {
			err = rows.Scan(&r.id, &r.p.target, &r.p.header, &r.p.body, &r.p.location, &r.p.primaryID, &r.sealed)
			return
		}, `
			SELECT id, `+payloadColumns+` FROM strangler_repairs WHERE id > $1 ORDER BY id LIMIT $2`, after, rekeyBatch)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		after = batch[len(batch)-1].id
		for _, r := range batch {
			for attempt := 1; ; attempt++ {
				done, err := s.rekeyRepair(ctx, r.id, r.p, r.sealed, rep)
				if err != nil {
					return err
				}
				if done {
					break
				}
				if attempt == 3 {
					return fmt.Errorf("repair %s changed three times while it was re-encrypted; run rekey again", r.id)
				}
				// It changed since it was read: read it again.
				err = s.db.QueryRowContext(ctx, `SELECT `+payloadColumns+` FROM strangler_repairs WHERE id = $1`, r.id).
					Scan(&r.p.target, &r.p.header, &r.p.body, &r.p.location, &r.p.primaryID, &r.sealed)
				if errors.Is(err, sql.ErrNoRows) {
					break // purged meanwhile
				} else if err != nil {
					return err
				}
			}
		}
	}
}

// rekeyRepair rewrites one write's payload under the first key, if it
// needs it; done is false when the row changed since it was read.
func (s *Store) rekeyRepair(ctx context.Context, id string, stored payload, sealed bool, rep *RekeyReport) (done bool, err error) {
	k := s.keys
	if sealed && k.currentText(stored.target) && k.currentBytes(stored.header) && k.currentBytes(stored.body) &&
		k.currentText(stored.location) && k.currentText(stored.primaryID) {
		return true, nil
	}
	empty := stored.target == "" && len(stored.header) == 0 && len(stored.body) == 0 && stored.location == "" && stored.primaryID == ""
	if empty {
		return true, nil
	}
	plain, err := s.open(id, stored, sealed)
	if err != nil {
		rep.Unreadable++
		s.log.Warn("a journaled write cannot be re-encrypted", "id", id, "error", err)
		return true, nil
	}
	p, _ := s.seal(id, plain)
	res, err := s.db.ExecContext(ctx, `
		UPDATE strangler_repairs
		SET target = $2, header = $3, body = $4, location = $5, primary_id = $6, sealed = TRUE
		WHERE id = $1 AND target = $7 AND header = $8 AND body = $9 AND location = $10 AND primary_id = $11 AND sealed = $12`,
		id, p.target, p.header, nonNil(p.body), p.location, p.primaryID,
		stored.target, stored.header, nonNil(stored.body), stored.location, stored.primaryID, sealed)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	rep.Repairs++
	return true, nil
}

// rekeySamples re-encrypts shadow samples. Samples are written once and
// never changed, so only the encryption flag is checked before rewriting.
func (s *Store) rekeySamples(ctx context.Context, rep *RekeyReport) error {
	var after int64
	type row struct {
		id     int64
		route  string
		data   []byte
		sealed bool
	}
	for {
		batch, err := readPage(ctx, s.db, func(rows *sql.Rows) (r row, err error) {
			err = rows.Scan(&r.id, &r.route, &r.data, &r.sealed)
			return
		}, `
			SELECT id, route, sample, sealed FROM strangler_samples WHERE id > $1 ORDER BY id LIMIT $2`, after, rekeyBatch)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		after = batch[len(batch)-1].id
		for _, r := range batch {
			if r.sealed {
				var text string
				if json.Unmarshal(r.data, &text) == nil && s.keys.currentText(text) {
					continue
				}
			}
			plain, err := s.openSample(r.route, r.data, r.sealed)
			if err != nil {
				rep.Unreadable++
				s.log.Warn("a shadow sample cannot be re-encrypted", "route", r.route, "error", err)
				continue
			}
			b, _ := json.Marshal(s.keys.sealText(sampleAAD(r.route), string(plain)))
			res, err := s.db.ExecContext(ctx, `UPDATE strangler_samples SET sample = $2, sealed = TRUE WHERE id = $1 AND sealed = $3`,
				r.id, string(b), r.sealed)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				rep.Samples++
			}
		}
	}
}

// rekeyRepairKeys encrypts queued read-repair keys. A key queued in clear
// moves to a row keyed by its digest, as one queued now would be.
func (s *Store) rekeyRepairKeys(ctx context.Context, rep *RekeyReport) error {
	afterEntity, afterKey := "", ""
	type row struct {
		entity, key, sealed string
		added               any
	}
	for {
		batch, err := readPage(ctx, s.db, func(rows *sql.Rows) (r row, err error) {
			err = rows.Scan(&r.entity, &r.key, &r.sealed, &r.added)
			return
		}, `
			SELECT entity, key, sealed_key, added_at FROM strangler_repair_keys
			WHERE entity > $1 OR (entity = $1 AND key > $2)
			ORDER BY entity, key LIMIT $3`, afterEntity, afterKey, rekeyBatch)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		afterEntity, afterKey = batch[len(batch)-1].entity, batch[len(batch)-1].key
		for _, r := range batch {
			if r.sealed != "" && s.keys.currentText(r.sealed) {
				continue
			}
			clear := r.key
			if r.sealed != "" {
				if clear, err = s.keys.openText(repairKeyAAD(r.entity, r.key), r.sealed); err != nil {
					rep.Unreadable++
					s.log.Warn("a queued read-repair key cannot be re-encrypted", "entity", r.entity, "error", err)
					continue
				}
			}
			digest := s.repairKeyDigest(clear)
			err := inTx(ctx, s.db, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, `DELETE FROM strangler_repair_keys WHERE entity = $1 AND key = $2 AND sealed_key = $3`,
					r.entity, r.key, r.sealed)
				if err != nil {
					return err
				}
				if n, err := res.RowsAffected(); err != nil || n == 0 {
					return err // done by the backfill meanwhile
				}
				_, err = tx.ExecContext(ctx, `
					INSERT INTO strangler_repair_keys (entity, key, sealed_key, added_at) VALUES ($1, $2, $3, $4)
					ON CONFLICT (entity, key) DO NOTHING`,
					r.entity, digest, s.keys.sealText(repairKeyAAD(r.entity, digest), clear), r.added)
				return err
			})
			if err != nil {
				return err
			}
			rep.RepairKeys++
		}
	}
}

// rekeySecrets encrypts the store's hash key under the first key. The
// key itself stays the same, so every hash stays comparable.
func (s *Store) rekeySecrets(ctx context.Context, rep *RekeyReport) error {
	var value []byte
	var sealed bool
	err := s.db.QueryRowContext(ctx, `SELECT value, sealed FROM strangler_secrets WHERE name = $1`, hashKeyName).Scan(&value, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	if sealed && s.keys.current(value) {
		return nil
	}
	plain, err := s.openSecret(hashKeyName, value, sealed)
	if err != nil {
		rep.Unreadable++
		return nil
	}
	next, _ := s.sealSecret(hashKeyName, plain)
	res, err := s.db.ExecContext(ctx, `UPDATE strangler_secrets SET value = $2, sealed = TRUE WHERE name = $1 AND value = $3`,
		hashKeyName, next, value)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return errors.New("the hash key changed while it was re-encrypted; run rekey again")
	}
	rep.Secrets++
	return nil
}
