package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Cell is one value stored in a table.
type Cell struct {
	Table, Column string
	Value         []byte
}

// Contents returns every non-NULL value of every table in db, which is
// SQLite (dialect "sqlite") or PostgreSQL ("postgres", the tables of the
// connection's current schema), each as bytes: for tests that search a
// store for what must not be in it.
func Contents(ctx context.Context, db *sql.DB, dialect string) ([]Cell, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
	if dialect == "postgres" {
		q = `SELECT table_name FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Cell
	for _, table := range tables {
		cells, err := tableContents(ctx, db, table)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", table, err)
		}
		out = append(out, cells...)
	}
	return out, nil
}

func tableContents(ctx context.Context, db *sql.DB, table string) ([]Cell, error) {
	rows, err := db.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []Cell
	for rows.Next() {
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range values {
			var b []byte
			switch v := v.(type) {
			case nil:
				continue
			case []byte:
				b = v
			case string:
				b = []byte(v)
			case time.Time:
				b = []byte(v.Format(time.RFC3339Nano))
			default:
				b = fmt.Append(nil, v)
			}
			out = append(out, Cell{Table: table, Column: cols[i], Value: b})
		}
	}
	return out, rows.Err()
}
