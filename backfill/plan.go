package backfill

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/config"
)

// table is one configured table, checked against both databases and turned
// into the SQL that reads and writes it.
type table struct {
	cfg   *config.BackfillTable
	index int // in the backfill section, for error messages
	name  string
	cols  []column // target columns; cols[0] is the target key
	// source is the FROM clause, aliased src.
	source string
	// sourceKey is the source key column, qualified with src.
	sourceKey string
	// intKey is set when the source key is an integer: key ranges can then
	// be split and compared numerically.
	intKey bool
	// target is the quoted target table.
	target string
	// after lists the tables that must be copied first: those this one's
	// lookups read.
	after []string
}

// column is one target column and where its value comes from.
type column struct {
	name     string
	cfg      config.Column
	redacted bool
	// sourceExpr computes the value on MySQL, transforms and default
	// included, so that backfill and verify read exactly the same value.
	sourceExpr string
	// pgType is the target column's type, as format_type writes it.
	pgType string
	// lookup translates the value through another target table.
	lookup *lookup
}

type lookup struct {
	table   string // quoted
	key     string // quoted column of the lookup table matched against the value
	keyType string // its type
	column  string // quoted column whose value is stored
}

// isBytes reports whether the column's values are binary.
func (c *column) isBytes() bool { return c.pgType == "bytea" }

// stageType is how the column is staged: as text, cast to its type when
// upserted (so a bad value fails one statement that can be retried row by
// row, not the COPY), or as bytea for binary values.
func (c *column) stageType() string {
	if c.isBytes() {
		return "bytea"
	}
	return "text"
}

// plan checks the backfill section's tables against both databases and
// prepares them, in dependency order.
func plan(ctx context.Context, cfg *config.Backfill, only []string, src *sql.DB, dst *pgxpool.Pool) ([]*table, error) {
	for _, name := range only {
		if cfg.Table(name) == nil {
			return nil, fmt.Errorf("no table %q in the backfill section; it has %s", name, strings.Join(cfg.TableNames(), ", "))
		}
	}
	var tables []*table
	var errs []error
	for i := range cfg.Tables {
		t, err := prepare(ctx, cfg, i, src, dst)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tables = append(tables, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	tables, err := ordered(tables)
	if err != nil {
		return nil, err
	}
	if len(only) > 0 {
		tables = slices.DeleteFunc(tables, func(t *table) bool { return !slices.Contains(only, t.name) })
	}
	return tables, nil
}

func prepare(ctx context.Context, cfg *config.Backfill, i int, src *sql.DB, dst *pgxpool.Pool) (*table, error) {
	tc := &cfg.Tables[i]
	t := &table{cfg: tc, index: i, name: tc.Name, target: pgIdent(tc.To), sourceKey: "src." + myIdent(tc.Key)}
	// at places a problem at the field of the file it concerns.
	at := func(field string) string { return cfg.Locate(fmt.Sprintf("backfill.tables[%d].%s", i, field)) }
	if tc.Query != "" {
		t.source = "(" + strings.TrimRight(strings.TrimSpace(tc.Query), ";") + ") AS src"
	} else {
		t.source = myIdent(tc.From) + " AS src"
	}
	targetCols, err := targetColumns(ctx, dst, tc.To)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at("to"), err)
	}
	for _, name := range tc.ColumnNames() {
		c := column{name: name, cfg: tc.Columns[name], redacted: tc.Redacted(name)}
		c.sourceExpr = sourceExpr(c.cfg)
		tcol, ok := targetCols[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: no column %q in target table %s", at("columns."+name), name, tc.To)
		case tcol.generated:
			return nil, fmt.Errorf("%s: target column %q is generated; it cannot be written", at("columns."+name), name)
		}
		c.pgType = tcol.typ
		if l := c.cfg.Lookup; l != nil {
			lcols, err := targetColumns(ctx, dst, l.Table)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at("columns."+name+".lookup.table"), err)
			}
			key, okKey := lcols[l.Key]
			_, okCol := lcols[l.Column]
			if !okKey || !okCol {
				field, col := "key", l.Key
				if okKey {
					field, col = "column", l.Column
				}
				return nil, fmt.Errorf("%s: table %s has no column %q", at("columns."+name+".lookup."+field), l.Table, col)
			}
			c.lookup = &lookup{table: pgIdent(l.Table), key: pgIdent(l.Key), keyType: key.typ, column: pgIdent(l.Column)}
			if dep := cfg.TableInto(l.Table); dep != "" && dep != tc.Name {
				t.after = append(t.after, dep)
			}
		}
		t.cols = append(t.cols, c)
	}
	for name, tcol := range targetCols {
		if _, mapped := tc.Columns[name]; !mapped && tcol.notNull && !tcol.hasDefault {
			return nil, fmt.Errorf("%s: target column %q is NOT NULL and has no default; map it here", at("columns"), name)
		}
	}
	unique, err := hasUniqueIndex(ctx, dst, tc.To, tc.TargetKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at("target_key"), err)
	}
	if !unique {
		return nil, fmt.Errorf("%s: %s has no unique index on %q alone; rows are upserted on it", at("target_key"), tc.To, tc.TargetKey)
	}
	if t.intKey, err = checkSource(ctx, src, t); err != nil {
		field := "from"
		if tc.Query != "" {
			field = "query"
		}
		return nil, fmt.Errorf("%s: reading the source: %w", at(field), err)
	}
	return t, nil
}

// checkSource runs the table's select once without reading a row, which
// catches misspelt columns and bad queries before any work, and reports
// whether the key is an integer.
func checkSource(ctx context.Context, db *sql.DB, t *table) (bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT "+t.sourceKey+", "+t.selectList()+" FROM "+t.source+" LIMIT 0")
	if err != nil {
		return false, err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return false, err
	}
	return strings.Contains(types[0].DatabaseTypeName(), "INT"), rows.Err()
}

// selectList is the source expressions of every column, in order.
func (t *table) selectList() string {
	exprs := make([]string, len(t.cols))
	for i, c := range t.cols {
		exprs[i] = c.sourceExpr
	}
	return strings.Join(exprs, ", ")
}

// sourceExpr is the MySQL expression for a column's value: the source
// column (or NULL), each transform in turn, then the default for NULL.
func sourceExpr(c config.Column) string {
	e := "NULL"
	if c.From != "" {
		e = "src." + myIdent(c.From)
	}
	for _, tr := range c.Transform {
		switch tr {
		case config.TransformTrim:
			e = "TRIM(" + e + ")"
		case config.TransformLower:
			e = "LOWER(" + e + ")"
		case config.TransformUpper:
			e = "UPPER(" + e + ")"
		case config.TransformNullIfEmpty:
			e = "NULLIF(" + e + ", '')"
		}
	}
	if c.Default != nil {
		e = "COALESCE(" + e + ", " + myString(*c.Default) + ")"
	}
	return e
}

// myString is a MySQL string literal that needs no escaping, whatever the
// server's sql_mode says about backslashes.
func myString(s string) string {
	if s == "" {
		return "''"
	}
	return "CONVERT(X'" + hex.EncodeToString([]byte(s)) + "' USING utf8mb4)"
}

// myIdent quotes a MySQL identifier, schema-qualified or not. The config
// only lets plain identifiers through, so backticks cannot occur.
func myIdent(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = "`" + p + "`"
	}
	return strings.Join(parts, ".")
}

// pgIdent quotes a PostgreSQL identifier, schema-qualified or not.
func pgIdent(name string) string { return pgx.Identifier(strings.Split(name, ".")).Sanitize() }

type targetColumn struct {
	typ                            string
	notNull, hasDefault, generated bool
}

// targetColumns reads a target table's columns from the catalog.
func targetColumns(ctx context.Context, db *pgxpool.Pool, name string) (map[string]targetColumn, error) {
	var exists bool
	if err := db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgIdent(name)).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("no table %s in the target database", name)
	}
	rows, err := db.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
			a.atthasdef OR a.attidentity <> '', a.attgenerated <> ''
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, pgIdent(name))
	if err != nil {
		return nil, err
	}
	cols := map[string]targetColumn{}
	for rows.Next() {
		var n string
		var c targetColumn
		if err := rows.Scan(&n, &c.typ, &c.notNull, &c.hasDefault, &c.generated); err != nil {
			return nil, err
		}
		cols[n] = c
	}
	return cols, rows.Err()
}

// hasUniqueIndex reports whether column alone is unique in the table, as
// ON CONFLICT needs.
func hasUniqueIndex(ctx context.Context, db *pgxpool.Pool, table, column string) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnkeyatts = 1
			AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = $2)`, pgIdent(table), column).Scan(&ok)
	return ok, err
}

// ordered sorts tables so that each comes after the tables its lookups
// read, keeping file order otherwise.
func ordered(tables []*table) ([]*table, error) {
	var out []*table
	placed := map[string]bool{}
	for len(out) < len(tables) {
		progress := false
		for _, t := range tables {
			if placed[t.name] {
				continue
			}
			ready := true
			for _, dep := range t.after {
				ready = ready && placed[dep]
			}
			if ready {
				out, placed[t.name], progress = append(out, t), true, true
			}
		}
		if !progress {
			return nil, errors.New("the tables' lookups form a cycle; no table can be copied first")
		}
	}
	return out, nil
}

// waves groups ordered tables into sets that can be copied at the same
// time: each wave only looks up tables of earlier waves.
func waves(tables []*table) [][]*table {
	wave := map[string]int{}
	var out [][]*table
	for _, t := range tables {
		w := 0
		for _, dep := range t.after {
			if d, ok := wave[dep]; ok {
				w = max(w, d+1)
			}
		}
		wave[t.name] = w
		for len(out) <= w {
			out = append(out, nil)
		}
		out[w] = append(out[w], t)
	}
	return out
}
