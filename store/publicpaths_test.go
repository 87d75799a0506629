package store

import (
	"context"
	"testing"
)

// TestDataKeysAnEarlierReleaseStoredAreGone plants noise fields and a
// mismatch sample as a release before migration 0100 wrote them, a
// patient's record number an object key in their paths (one reading like
// a field name, which only the request, not kept, shows to be data), and
// checks that once this release opened the store no table holds it.
func TestDataKeysAnEarlierReleaseStoredAreGone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn, d, db := migratedBefore(t, b, 100)
		for _, path := range []string{"visits.MRN-7Q4Z-TEST.seen_at", "visits.MRN7730019.seen_at", "updated_at"} {
			if _, err := db.ExecContext(ctx, `INSERT INTO strangler_noise (route, path, added_at) VALUES ($1, $2, $3)`,
				"patients", path, d.encodeTime(t0)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO strangler_samples (route, at, sample, sealed) VALUES ($1, $2, $3, $4)`,
			"patients", d.encodeTime(t0), `{"route":"patients","diffs":[{"path":"visits.MRN-7Q4Z-TEST.seen_at","primary":"{\"MRN-7Q4Z-TEST\":1}"}]}`, false); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		s := openStore(t, dsn, nil)
		for _, q := range []string{
			`SELECT COUNT(*) FROM strangler_noise WHERE path LIKE '%MRN%'`,
			`SELECT COUNT(*) FROM strangler_samples WHERE CAST(sample AS TEXT) LIKE '%MRN%'`,
		} {
			var n int
			if err := s.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%s: %d rows still hold the record number", q, n)
			}
		}
		if got, err := s.Noise(ctx, ""); err != nil || len(got) != 0 {
			t.Errorf("noise after the upgrade: %v (%v), want none: it is learned again", got, err)
		}
		if got, err := s.Samples(ctx, "", 0); err != nil || len(got) != 0 {
			t.Errorf("samples after the upgrade: %d (%v), want none", len(got), err)
		}
	})
}
