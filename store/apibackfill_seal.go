package store

import (
	"context"
	"database/sql"
	"fmt"
)

// The API backfill ledger under store_encryption: a failed row's message
// (an API may quote the value it refused) and payload, and a shared
// run's group_by values, are sealed like a journaled write's payload.
// Keys, statuses and reasons stay in clear: pages, checkpoints and
// leases are read in key order, and a row whose key was lost can still
// be sent again.

func apiRowAAD(table, key, column string) string {
	return "strangler_api_backfill_rows." + column + "/" + table + "/" + key
}

func groupValueAAD(run, table string, no int64) string {
	return fmt.Sprintf("strangler_api_backfill_groups.group_value/%s/%s/%d", run, table, no)
}

// sealAPIRow returns a failed row's message and payload as they are
// stored, and whether that is encrypted.
func (s *Store) sealAPIRow(table, key, message, payload string) (string, string, bool) {
	if s.keys == nil {
		return message, payload, false
	}
	return s.keys.sealText(apiRowAAD(table, key, "message"), message),
		s.keys.sealText(apiRowAAD(table, key, "payload"), payload), true
}

// openAPIRow is the inverse of sealAPIRow; its error says what is lost
// and wraps ErrKeyLost when a key is missing.
func (s *Store) openAPIRow(table, key, message, payload string, sealed bool) (string, string, error) {
	if !sealed {
		return message, payload, nil
	}
	m, err := s.keys.openText(apiRowAAD(table, key, "message"), message)
	if err == nil {
		payload, err = s.keys.openText(apiRowAAD(table, key, "payload"), payload)
	}
	if err != nil {
		return "", "", fmt.Errorf("failed row %s of %s: its message and payload cannot be read (%w); its key, status and reason are intact", key, table, err)
	}
	return m, payload, nil
}

// sealGroupValue returns a group's group_by value as it is stored, and
// whether that is encrypted; NULL stays NULL.
func (s *Store) sealGroupValue(run, table string, no int64, value *string) (*string, bool) {
	if s.keys == nil || value == nil {
		return value, false
	}
	v := s.keys.sealText(groupValueAAD(run, table, no), *value)
	return &v, true
}

// openGroupValue is the inverse of sealGroupValue.
func (s *Store) openGroupValue(run, table string, no int64, value *string, sealed bool) (*string, error) {
	if !sealed || value == nil {
		return value, nil
	}
	v, err := s.keys.openText(groupValueAAD(run, table, no), *value)
	if err != nil {
		return nil, fmt.Errorf("its group_by value cannot be read: %w", err)
	}
	return &v, nil
}

// rekeyAPIRows re-encrypts the failed rows of API backfills. A row
// recorded again meanwhile is left as the backfill wrote it.
func (s *Store) rekeyAPIRows(ctx context.Context, rep *RekeyReport) error {
	afterTable, afterKey := "", ""
	type row struct {
		table, key, message, payload string
		sealed                       bool
	}
	for {
		batch, err := readPage(ctx, s.db, func(rows *sql.Rows) (r row, err error) {
			err = rows.Scan(&r.table, &r.key, &r.message, &r.payload, &r.sealed)
			return
		}, `
			SELECT table_name, row_key, message, payload, sealed FROM strangler_api_backfill_rows
			WHERE table_name > $1 OR (table_name = $1 AND row_key > $2)
			ORDER BY table_name, row_key LIMIT $3`, afterTable, afterKey, rekeyBatch)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		afterTable, afterKey = batch[len(batch)-1].table, batch[len(batch)-1].key
		for _, r := range batch {
			if r.message == "" && r.payload == "" || r.sealed && s.keys.currentText(r.message) && s.keys.currentText(r.payload) {
				continue
			}
			message, payload, err := s.openAPIRow(r.table, r.key, r.message, r.payload, r.sealed)
			if err != nil {
				rep.Unreadable++
				s.log.Warn("a failed backfill row cannot be re-encrypted", "table", r.table, "error", err)
				continue
			}
			message, payload, _ = s.sealAPIRow(r.table, r.key, message, payload)
			res, err := s.db.ExecContext(ctx, `
				UPDATE strangler_api_backfill_rows SET message = $3, payload = $4, sealed = TRUE
				WHERE table_name = $1 AND row_key = $2 AND message = $5 AND payload = $6 AND sealed = $7`,
				r.table, r.key, message, payload, r.message, r.payload, r.sealed)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				rep.APIBackfill++
			}
		}
	}
}

// rekeyGroupValues re-encrypts the group_by values of shared runs'
// groups, which never change once cut.
func (s *Store) rekeyGroupValues(ctx context.Context, rep *RekeyReport) error {
	afterRun, afterTable, afterNo := "", "", int64(-1)
	type row struct {
		run, table, value string
		no                int64
		sealed            bool
	}
	for {
		batch, err := readPage(ctx, s.db, func(rows *sql.Rows) (r row, err error) {
			err = rows.Scan(&r.run, &r.table, &r.no, &r.value, &r.sealed)
			return
		}, `
			SELECT run_name, table_name, group_no, group_value, sealed FROM strangler_api_backfill_groups
			WHERE group_value IS NOT NULL AND (run_name > $1 OR (run_name = $1 AND (table_name > $2 OR (table_name = $2 AND group_no > $3))))
			ORDER BY run_name, table_name, group_no LIMIT $4`, afterRun, afterTable, afterNo, rekeyBatch)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		last := batch[len(batch)-1]
		afterRun, afterTable, afterNo = last.run, last.table, last.no
		for _, r := range batch {
			if r.value == "" || r.sealed && s.keys.currentText(r.value) {
				continue
			}
			plain, err := s.openGroupValue(r.run, r.table, r.no, &r.value, r.sealed)
			if err != nil {
				rep.Unreadable++
				s.log.Warn("a backfill group cannot be re-encrypted", "run", r.run, "table", r.table, "group", r.no, "error", err)
				continue
			}
			value, _ := s.sealGroupValue(r.run, r.table, r.no, plain)
			res, err := s.db.ExecContext(ctx, `
				UPDATE strangler_api_backfill_groups SET group_value = $4, sealed = TRUE
				WHERE run_name = $1 AND table_name = $2 AND group_no = $3 AND group_value = $5 AND sealed = $6`,
				r.run, r.table, r.no, *value, r.value, r.sealed)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				rep.APIBackfill++
			}
		}
	}
}
