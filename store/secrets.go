package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"strangler/phi"
)

// hashKeyName names the hash key among the store's secrets.
const hashKeyName = "hash_key"

// Why the hash key lives here: two samples of one mismatch on one patient
// must hash alike across restarts and replicas, and writes to one resource
// must share one ordering key on every replica, so the key must be one per
// deployment and outlive processes. The state store is the one thing every
// replica shares and keeps. Drawing it here, rather than asking operators
// for one more secret, means there is nothing to configure; with
// store_encryption it is kept encrypted, so a copy of the database alone
// does not let anyone test guesses against the hashes, and rotating the
// encryption keys (rekey) does not change it, so hashes stay comparable.

// errNoHashKey refuses a write journaled before the store's hash key is
// loaded (a store started unreachable and not reached yet): its resource
// could not be named like every other write to it.
var errNoHashKey = errors.New("the store's hash key is not loaded yet")

// loadHashKey gives the store's hasher its key: the one kept in the store,
// drawn and kept on first use. Replicas starting at once agree on one key:
// each inserts only where none is, then reads what is there.
//
// A key encrypted with a key that is no longer configured cannot be read.
// Refusing to start would turn a lost encryption key into an outage, so a
// new hash key replaces it, and hashes from before no longer match those
// from after: that is said in the log.
func (s *Store) loadHashKey(ctx context.Context) error {
	for range 3 {
		var value []byte
		var sealed bool
		err := s.db.QueryRowContext(ctx, `SELECT value, sealed FROM strangler_secrets WHERE name = $1`, hashKeyName).Scan(&value, &sealed)
		if errors.Is(err, sql.ErrNoRows) {
			if err := s.putHashKey(ctx, nil); err != nil {
				return fmt.Errorf("store: hash key: %w", err)
			}
			continue
		} else if err != nil {
			return fmt.Errorf("store: hash key: %w", err)
		}
		key, err := s.openSecret(hashKeyName, value, sealed)
		if err != nil {
			s.log.Error("the store's hash key cannot be read, so a new one is drawn: hashes in samples and repairs from before no longer match new ones",
				"error", err)
			if err := s.putHashKey(ctx, value); err != nil {
				return fmt.Errorf("store: hash key: %w", err)
			}
			continue
		}
		if len(key) != phi.KeySize {
			return fmt.Errorf("store: hash key: it has %d bytes, want %d", len(key), phi.KeySize)
		}
		s.hasher.SetKey([phi.KeySize]byte(key))
		return nil
	}
	return errors.New("store: hash key: it changed under us three times")
}

// putHashKey stores a new random hash key: where there is none when old
// is nil, else in place of old, unless another replica replaced it first.
func (s *Store) putHashKey(ctx context.Context, old []byte) error {
	key := phi.NewKey()
	value, sealed := s.sealSecret(hashKeyName, key[:])
	if old == nil {
		_, err := s.db.ExecContext(ctx, `
			INSERT INTO strangler_secrets (name, value, sealed, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO NOTHING`, hashKeyName, value, sealed, s.ts(s.clock()))
		return err
	}
	_, err := s.db.ExecContext(ctx, `
		UPDATE strangler_secrets SET value = $2, sealed = $3, created_at = $4
		WHERE name = $1 AND value = $5`, hashKeyName, value, sealed, s.ts(s.clock()), old)
	return err
}

func secretAAD(name string) string { return "strangler_secrets.value/" + name }

// sealSecret is how a secret is stored: encrypted when the store has keys.
func (s *Store) sealSecret(name string, plain []byte) ([]byte, bool) {
	if s.keys == nil {
		return plain, false
	}
	return s.keys.seal(secretAAD(name), plain), true
}

func (s *Store) openSecret(name string, value []byte, sealed bool) ([]byte, error) {
	if !sealed {
		return value, nil
	}
	return s.keys.open(secretAAD(name), value)
}
