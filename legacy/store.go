package legacy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"

	"strangler/internal/dberr"
	"strangler/patients"
)

// Store keeps patients and photos in the legacy MariaDB/MySQL schema. It is
// a patients.Store and a patients.PhotoStore.
type Store struct {
	db *sql.DB
}

// NewStore returns a Store over db, whose schema Migrate has set up.
func NewStore(db *sql.DB) *Store { return &Store{db: db} }

// patientColumns reads a Patient row in the API's terms: the DATETIME
// birth date as a date, the empty-string email as absent.
const patientColumns = `PatientSerNum, FirstName, LastName,
	COALESCE(DATE_FORMAT(DateOfBirth, '%Y-%m-%d'), ''), Email`

type scanner interface{ Scan(...any) error }

func scanPatient(row scanner) (patients.Patient, error) {
	var p patients.Patient
	err := row.Scan(&p.ID, &p.FirstName, &p.LastName, &p.BirthDate, &p.Email)
	return p, err
}

// Get implements patients.Store.
func (s *Store) Get(ctx context.Context, id int64) (patients.Patient, error) {
	p, err := scanPatient(s.db.QueryRowContext(ctx, "SELECT "+patientColumns+" FROM Patient WHERE PatientSerNum = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, patients.ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("legacy get patient: %w", err)
	}
	ps := []patients.Patient{p}
	if err := s.addMRNs(ctx, ps); err != nil {
		return p, err
	}
	return ps[0], nil
}

// List implements patients.Store.
func (s *Store) List(ctx context.Context, after int64, limit int) ([]patients.Patient, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+patientColumns+" FROM Patient WHERE PatientSerNum > ? ORDER BY PatientSerNum LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("legacy list patients: %w", err)
	}
	defer rows.Close()
	var ps []patients.Patient
	for rows.Next() {
		p, err := scanPatient(rows)
		if err != nil {
			return nil, fmt.Errorf("legacy list patients: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("legacy list patients: %w", err)
	}
	return ps, s.addMRNs(ctx, ps)
}

// addMRNs fills in the active MRNs of ps with one query.
func (s *Store) addMRNs(ctx context.Context, ps []patients.Patient) error {
	if len(ps) == 0 {
		return nil
	}
	ids := make([]any, len(ps))
	at := map[int64]int{}
	for i, p := range ps {
		ids[i] = p.ID
		at[p.ID] = i
	}
	rows, err := s.db.QueryContext(ctx, `SELECT PatientSerNum, Hospital_Identifier_Type_Code, MRN
		FROM Patient_Hospital_Identifier WHERE Is_Active = 1 AND PatientSerNum IN (`+placeholders(len(ids))+`)
		ORDER BY PatientSerNum, Hospital_Identifier_Type_Code, MRN`, ids...)
	if err != nil {
		return fmt.Errorf("legacy read MRNs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var m patients.MRN
		if err := rows.Scan(&id, &m.Site, &m.MRN); err != nil {
			return fmt.Errorf("legacy read MRNs: %w", err)
		}
		ps[at[id]].MRNs = append(ps[at[id]].MRNs, m)
	}
	return rows.Err()
}

// Create implements patients.Store. Each patient also gets the portal
// login the monolith keeps in Users.
func (s *Store) Create(ctx context.Context, p patients.Patient) (patients.Patient, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO Patient (PatientSerNum, FirstName, LastName, DateOfBirth, Email)
			VALUES (NULLIF(?, 0), ?, ?, NULLIF(?, ''), ?)`, p.ID, p.FirstName, p.LastName, p.BirthDate, p.Email)
		if err != nil {
			return err
		}
		if p.ID == 0 {
			if p.ID, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO Users (UserType, UserTypeSerNum, Username) VALUES ('Patient', ?, CONCAT('P', ?))`, p.ID, p.ID); err != nil {
			return err
		}
		return s.setMRNs(ctx, tx, p.ID, p.MRNs)
	})
	if err != nil {
		return patients.Patient{}, fmt.Errorf("legacy create patient: %w", err)
	}
	return s.Get(ctx, p.ID)
}

// Update implements patients.Store.
func (s *Store) Update(ctx context.Context, p patients.Patient) (patients.Patient, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM Patient WHERE PatientSerNum = ? FOR UPDATE", p.ID).Scan(&exists); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE Patient SET FirstName = ?, LastName = ?, DateOfBirth = NULLIF(?, ''), Email = ?
			WHERE PatientSerNum = ?`, p.FirstName, p.LastName, p.BirthDate, p.Email, p.ID); err != nil {
			return err
		}
		if p.MRNs == nil {
			return nil
		}
		return s.setMRNs(ctx, tx, p.ID, p.MRNs)
	})
	if err != nil {
		return patients.Patient{}, fmt.Errorf("legacy update patient %d: %w", p.ID, err)
	}
	return s.Get(ctx, p.ID)
}

// setMRNs makes ms the patient's MRNs, keeping the rows of those that stay
// so their ids (and anything copied by them) survive.
func (s *Store) setMRNs(ctx context.Context, tx *sql.Tx, id int64, ms []patients.MRN) error {
	rows, err := tx.QueryContext(ctx, `SELECT Patient_Hospital_Identifier_Id, Hospital_Identifier_Type_Code, MRN
		FROM Patient_Hospital_Identifier WHERE PatientSerNum = ?`, id)
	if err != nil {
		return err
	}
	have := map[patients.MRN]int64{}
	for rows.Next() {
		var rowID int64
		var m patients.MRN
		if err := rows.Scan(&rowID, &m.Site, &m.MRN); err != nil {
			rows.Close()
			return err
		}
		have[m] = rowID
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for m, rowID := range have {
		if !slices.Contains(ms, m) {
			if _, err := tx.ExecContext(ctx, "DELETE FROM Patient_Hospital_Identifier WHERE Patient_Hospital_Identifier_Id = ?", rowID); err != nil {
				return err
			}
		}
	}
	for _, m := range ms {
		if _, ok := have[m]; ok {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO Patient_Hospital_Identifier
			(PatientSerNum, Hospital_Identifier_Type_Code, MRN) VALUES (?, ?, ?)`, id, m.Site, m.MRN); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements patients.Store; the patient's MRNs, login and photos
// go too, since the schema has no foreign keys to cascade.
func (s *Store) Delete(ctx context.Context, id int64) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM Patient WHERE PatientSerNum = ?", id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return sql.ErrNoRows
		}
		for _, q := range []string{
			"DELETE FROM Patient_Hospital_Identifier WHERE PatientSerNum = ?",
			"DELETE FROM Photo WHERE PatientSerNum = ?",
			"DELETE FROM Users WHERE UserType = 'Patient' AND UserTypeSerNum = ?",
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("legacy delete patient %d: %w", id, err)
	}
	return nil
}

// AddPhoto implements patients.PhotoStore.
func (s *Store) AddPhoto(ctx context.Context, ph patients.Photo, data []byte) (patients.Photo, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Locking the patient keeps a concurrent delete from orphaning the
		// photo.
		var exists int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM Patient WHERE PatientSerNum = ? FOR UPDATE", ph.PatientID).Scan(&exists); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO Photo (PhotoSerNum, PatientSerNum, MimeType, PhotoData) VALUES (NULLIF(?, 0), ?, ?, ?)",
			ph.ID, ph.PatientID, ph.ContentType, data)
		if err != nil {
			return err
		}
		if ph.ID == 0 {
			ph.ID, err = res.LastInsertId()
		}
		return err
	})
	if err != nil {
		return patients.Photo{}, fmt.Errorf("legacy add photo: %w", err)
	}
	ph.Size = int64(len(data))
	return ph, nil
}

// Photos implements patients.PhotoStore.
func (s *Store) Photos(ctx context.Context, patientID int64) ([]patients.Photo, error) {
	if _, err := s.Get(ctx, patientID); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT PhotoSerNum, PatientSerNum, MimeType, LENGTH(PhotoData)
		FROM Photo WHERE PatientSerNum = ? ORDER BY PhotoSerNum`, patientID)
	if err != nil {
		return nil, fmt.Errorf("legacy list photos: %w", err)
	}
	defer rows.Close()
	var out []patients.Photo
	for rows.Next() {
		var ph patients.Photo
		if err := rows.Scan(&ph.ID, &ph.PatientID, &ph.ContentType, &ph.Size); err != nil {
			return nil, fmt.Errorf("legacy list photos: %w", err)
		}
		out = append(out, ph)
	}
	return out, rows.Err()
}

// OpenPhoto implements patients.PhotoStore: the bytes are read a chunk at
// a time, never the whole BLOB at once.
func (s *Store) OpenPhoto(ctx context.Context, id int64) (patients.Photo, io.ReadCloser, error) {
	ph := patients.Photo{ID: id}
	err := s.db.QueryRowContext(ctx, "SELECT PatientSerNum, MimeType, LENGTH(PhotoData) FROM Photo WHERE PhotoSerNum = ?", id).
		Scan(&ph.PatientID, &ph.ContentType, &ph.Size)
	if errors.Is(err, sql.ErrNoRows) {
		return ph, nil, patients.ErrPhotoNotFound
	}
	if err != nil {
		return ph, nil, fmt.Errorf("legacy open photo: %w", err)
	}
	return ph, patients.NewChunkReader(ctx, ph.Size, func(ctx context.Context, off int64, n int) ([]byte, error) {
		var b []byte
		// SUBSTRING counts from 1.
		err := s.db.QueryRowContext(ctx, "SELECT SUBSTRING(PhotoData, ?, ?) FROM Photo WHERE PhotoSerNum = ?", off+1, n, id).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return b, err
	}), nil
}

// tx runs f in a transaction and maps the errors the API knows.
func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return storeError(err)
	}
	return storeError(tx.Commit())
}

// storeError maps a missing row to patients.ErrNotFound and a duplicate key
// to patients.ErrConflict, keeping the driver's message without the values
// it quotes (the key, not the record number it already holds).
func storeError(err error) error {
	var my *mysql.MySQLError
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return patients.ErrNotFound
	case errors.As(err, &my) && my.Number == 1062: // ER_DUP_ENTRY
		return fmt.Errorf("%w: %w", patients.ErrConflict, dberr.Cut(my))
	}
	return dberr.Cut(err)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
