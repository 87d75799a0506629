package modern

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/internal/dberr"
	"strangler/patients"
)

// Store keeps patients and photos in the modern PostgreSQL schema. It is a
// patients.Store and a patients.PhotoStore. Ids in and out are public ids
// (see the package documentation).
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store over pool, whose schema Migrate has set up.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// querier is what both a pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// txKey carries the transaction of an idempotent write, so the write
// commits together with its stored response.
type txKey struct{}

// q is the transaction ctx carries, or the pool.
func (s *Store) q(ctx context.Context) querier {
	if tx, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return tx
	}
	return s.pool
}

// inTx runs f in a transaction: a savepoint inside the idempotent write's
// transaction when there is one.
func (s *Store) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	tx, err := s.q(ctx).Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := f(tx); err != nil {
		return storeError(err)
	}
	return storeError(tx.Commit(ctx))
}

// byPublicID is the condition that finds a row by its public id: a legacy
// id below NativeIDBase, the internal id of a row born here above it. Two
// shapes rather than one COALESCE, so each uses its unique index.
func byPublicID(alias string, id int64) string {
	if id < NativeIDBase {
		return alias + ".legacy_id = $1"
	}
	return alias + ".id = $1 AND " + alias + ".legacy_id IS NULL"
}

const patientColumns = `p.id, coalesce(p.legacy_id, p.id), p.first_name, p.last_name,
	coalesce(to_char(p.birth_date, 'YYYY-MM-DD'), ''), coalesce(p.email, '')`

// row is a patient with its internal id, which the MRNs refer to.
type row struct {
	internal int64
	patients.Patient
}

func scanPatient(r pgx.Row) (row, error) {
	var p row
	err := r.Scan(&p.internal, &p.ID, &p.FirstName, &p.LastName, &p.BirthDate, &p.Email)
	return p, err
}

// Get implements patients.Store.
func (s *Store) Get(ctx context.Context, id int64) (patients.Patient, error) {
	p, err := s.get(ctx, s.q(ctx), id, "")
	if err != nil {
		return patients.Patient{}, err
	}
	ps := []row{p}
	if err := s.addMRNs(ctx, ps); err != nil {
		return patients.Patient{}, err
	}
	return ps[0].Patient, nil
}

// get reads one patient; lock is "" or a locking clause.
func (s *Store) get(ctx context.Context, q querier, id int64, lock string) (row, error) {
	p, err := scanPatient(q.QueryRow(ctx, "SELECT "+patientColumns+" FROM patients p WHERE "+byPublicID("p", id)+" "+lock, id))
	if err != nil {
		return p, storeError(err)
	}
	return p, nil
}

// List implements patients.Store. Legacy ids are all below native ones, so
// the page is the legacy rows after `after`, then the native rows.
func (s *Store) List(ctx context.Context, after int64, limit int) ([]patients.Patient, error) {
	rows, err := s.q(ctx).Query(ctx, `
		(SELECT `+patientColumns+` FROM patients p WHERE p.legacy_id > $1 ORDER BY p.legacy_id LIMIT $2)
		UNION ALL
		(SELECT `+patientColumns+` FROM patients p WHERE p.legacy_id IS NULL AND p.id > $1 ORDER BY p.id LIMIT $2)
		ORDER BY 2 LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("modern list patients: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) { return scanPatient(r) })
	if err != nil {
		return nil, fmt.Errorf("modern list patients: %w", err)
	}
	if err := s.addMRNs(ctx, ps); err != nil {
		return nil, err
	}
	out := make([]patients.Patient, len(ps))
	for i, p := range ps {
		out[i] = p.Patient
	}
	return out, nil
}

// addMRNs fills in the active MRNs of ps with one query.
func (s *Store) addMRNs(ctx context.Context, ps []row) error {
	ids := make([]int64, len(ps))
	at := map[int64]int{}
	for i, p := range ps {
		ids[i] = p.internal
		at[p.internal] = i
	}
	rows, err := s.q(ctx).Query(ctx, `SELECT patient_id, site, mrn FROM hospital_patients
		WHERE active AND patient_id = ANY($1) ORDER BY patient_id, site, mrn`, ids)
	if err != nil {
		return fmt.Errorf("modern read MRNs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var m patients.MRN
		if err := rows.Scan(&id, &m.Site, &m.MRN); err != nil {
			return fmt.Errorf("modern read MRNs: %w", err)
		}
		ps[at[id]].MRNs = append(ps[at[id]].MRNs, m)
	}
	return rows.Err()
}

// Create implements patients.Store: a non-zero p.ID is the legacy id.
func (s *Store) Create(ctx context.Context, p patients.Patient) (patients.Patient, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var internal int64
		err := tx.QueryRow(ctx, `INSERT INTO patients (legacy_id, first_name, last_name, birth_date, email)
			VALUES (NULLIF($1, 0), $2, $3, NULLIF($4, '')::date, NULLIF($5, ''))
			RETURNING id, coalesce(legacy_id, id)`, p.ID, p.FirstName, p.LastName, p.BirthDate, p.Email).Scan(&internal, &p.ID)
		if err != nil {
			return err
		}
		return setMRNs(ctx, tx, internal, p.MRNs)
	})
	if err != nil {
		return patients.Patient{}, fmt.Errorf("modern create patient: %w", err)
	}
	return s.Get(ctx, p.ID)
}

// Update implements patients.Store.
func (s *Store) Update(ctx context.Context, p patients.Patient) (patients.Patient, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := s.get(ctx, tx, p.ID, "FOR UPDATE")
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE patients SET first_name = $2, last_name = $3,
			birth_date = NULLIF($4, '')::date, email = NULLIF($5, ''), updated_at = now() WHERE id = $1`,
			old.internal, p.FirstName, p.LastName, p.BirthDate, p.Email); err != nil {
			return err
		}
		if p.MRNs == nil {
			return nil
		}
		return setMRNs(ctx, tx, old.internal, p.MRNs)
	})
	if err != nil {
		return patients.Patient{}, fmt.Errorf("modern update patient %d: %w", p.ID, err)
	}
	return s.Get(ctx, p.ID)
}

// setMRNs makes ms the patient's MRNs, keeping the rows of those that stay
// so their legacy_id survives.
func setMRNs(ctx context.Context, tx pgx.Tx, internal int64, ms []patients.MRN) error {
	sites, mrns := make([]string, len(ms)), make([]string, len(ms))
	for i, m := range ms {
		sites[i], mrns[i] = m.Site, m.MRN
	}
	if _, err := tx.Exec(ctx, `DELETE FROM hospital_patients WHERE patient_id = $1
		AND (site, mrn) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))`, internal, sites, mrns); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO hospital_patients (patient_id, site, mrn)
		SELECT $1, s, m FROM unnest($2::text[], $3::text[]) AS u (s, m)
		WHERE NOT EXISTS (SELECT 1 FROM hospital_patients h WHERE h.patient_id = $1 AND h.site = u.s AND h.mrn = u.m)`,
		internal, sites, mrns)
	return err
}

// Delete implements patients.Store; MRNs and photos go with the patient.
func (s *Store) Delete(ctx context.Context, id int64) error {
	tag, err := s.q(ctx).Exec(ctx, "DELETE FROM patients p WHERE "+byPublicID("p", id), id)
	if err != nil {
		return fmt.Errorf("modern delete patient %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return patients.ErrNotFound
	}
	return nil
}

// AddPhoto implements patients.PhotoStore: a non-zero ph.ID is the legacy
// id.
func (s *Store) AddPhoto(ctx context.Context, ph patients.Photo, data []byte) (patients.Photo, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		owner, err := s.get(ctx, tx, ph.PatientID, "FOR SHARE")
		if err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO photos (legacy_id, patient_id, content_type, data)
			VALUES (NULLIF($1, 0), $2, $3, $4) RETURNING coalesce(legacy_id, id)`,
			ph.ID, owner.internal, ph.ContentType, data).Scan(&ph.ID)
	})
	if err != nil {
		return patients.Photo{}, fmt.Errorf("modern add photo: %w", err)
	}
	ph.Size = int64(len(data))
	return ph, nil
}

// Photos implements patients.PhotoStore.
func (s *Store) Photos(ctx context.Context, patientID int64) ([]patients.Photo, error) {
	owner, err := s.get(ctx, s.q(ctx), patientID, "")
	if err != nil {
		return nil, err
	}
	rows, err := s.q(ctx).Query(ctx, `SELECT coalesce(legacy_id, id), content_type, octet_length(data)
		FROM photos WHERE patient_id = $1`, owner.internal)
	if err != nil {
		return nil, fmt.Errorf("modern list photos: %w", err)
	}
	phs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (patients.Photo, error) {
		ph := patients.Photo{PatientID: patientID}
		return ph, r.Scan(&ph.ID, &ph.ContentType, &ph.Size)
	})
	if err != nil {
		return nil, fmt.Errorf("modern list photos: %w", err)
	}
	slices.SortFunc(phs, func(a, b patients.Photo) int { return cmp.Compare(a.ID, b.ID) })
	return phs, nil
}

// OpenPhoto implements patients.PhotoStore: the bytes are read a chunk at
// a time, never the whole value at once.
func (s *Store) OpenPhoto(ctx context.Context, id int64) (patients.Photo, io.ReadCloser, error) {
	ph := patients.Photo{ID: id}
	var internal int64
	err := s.q(ctx).QueryRow(ctx, `SELECT ph.id, coalesce(p.legacy_id, p.id), ph.content_type, octet_length(ph.data)
		FROM photos ph JOIN patients p ON p.id = ph.patient_id WHERE `+byPublicID("ph", id), id).
		Scan(&internal, &ph.PatientID, &ph.ContentType, &ph.Size)
	if errors.Is(err, pgx.ErrNoRows) {
		return ph, nil, patients.ErrPhotoNotFound
	}
	if err != nil {
		return ph, nil, fmt.Errorf("modern open photo: %w", err)
	}
	return ph, patients.NewChunkReader(ctx, ph.Size, func(ctx context.Context, off int64, n int) ([]byte, error) {
		var b []byte
		// substring counts from 1.
		err := s.pool.QueryRow(ctx, "SELECT substring(data FROM $2 FOR $3) FROM photos WHERE id = $1", internal, off+1, n).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		return b, err
	}), nil
}

// storeError maps a missing row to patients.ErrNotFound and a unique or
// check violation to patients.ErrConflict; an error, logged or not, keeps
// no value PostgreSQL's message quotes (nor a trigger's RAISE message).
func storeError(err error) error {
	var pg *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return patients.ErrNotFound
	case errors.As(err, &pg) && (pg.Code == "23505" || pg.Code == "23514"):
		return fmt.Errorf("%w: %s", patients.ErrConflict, dberr.PostgresMessage(pg))
	}
	return dberr.Cut(err)
}
