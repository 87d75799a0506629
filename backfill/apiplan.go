package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"

	"strangler/config"
)

// apiTable is a table sent to the modern service's API: its source read
// as a table's is, each row turned into one request.
type apiTable struct {
	*table
	api *config.TargetAPI
	// fields are the body's fields in name order; each reads cols[col].
	fields []apiField
	// path is the path template cut at its columns: literal parts, with
	// pathCols[i] (an index into cols) between parts[i] and parts[i+1].
	parts    []string
	pathCols []int
	// group is the index into cols of the group_by column, -1 for none.
	group int
	// creates is true when a request makes a new resource (POST, the key
	// not in the path): sending a changed row again would make a second.
	creates bool
}

type apiField struct {
	name     string
	col      int
	number   bool // the value is written as a JSON number
	json     bool // the value is a JSON document, written as one
	redacted bool
	// srcType is MySQL's type of the value (see column.srcType).
	srcType string
	// several is the index into cols of a lookup's check that it finds
	// several distinct values (1 when it does), 0 for a field without a
	// lookup (the check comes after the field's own column).
	several int
}

// lookupExprs are a body lookup's subqueries on the source: its value,
// and 1 when the rows it finds (narrowed by where) hold several distinct
// values, 0 or NULL otherwise. Such a row is not sent: which of a
// patient's two MRNs LIMIT 1 returns is the server's choice, and not even
// the same one on every run. Values are told apart by their bytes (a
// case-insensitive collation's 'ab' and 'AB' are two), and NULL is one.
func lookupExprs(l *config.Lookup, base string) (value, several string) {
	from := " FROM " + myIdent(l.Table) + " AS l WHERE l." + myIdent(l.Key) + " = " + base
	for _, col := range slices.Sorted(maps.Keys(l.Where)) {
		from += " AND l." + myIdent(col) + " = " + myLiteral(l.Where[col])
	}
	c := "l." + myIdent(l.Column)
	value = "(SELECT " + c + from + " LIMIT 1)"
	several = "(SELECT COUNT(DISTINCT CAST(" + c + " AS BINARY)) + (COUNT(*) > COUNT(" + c + ")) > 1" + from + ")"
	return value, several
}

// planAPI checks the API tables against the source and prepares them.
func planAPI(ctx context.Context, cfg *config.Backfill, only []string, src *sql.DB) ([]*apiTable, error) {
	var out []*apiTable
	for i := range cfg.Tables {
		tc := &cfg.Tables[i]
		if tc.TargetAPI == nil || len(only) > 0 && !slices.Contains(only, tc.Name) {
			continue
		}
		t, err := prepareAPI(ctx, cfg, i, src)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func prepareAPI(ctx context.Context, cfg *config.Backfill, i int, src *sql.DB) (*apiTable, error) {
	tc := &cfg.Tables[i]
	a := tc.TargetAPI
	at := func(field string) string { return cfg.Locate(fmt.Sprintf("backfill.tables[%d].%s", i, field)) }
	t := &apiTable{table: &table{cfg: tc, index: i, name: tc.Name, sourceKey: "src." + myIdent(tc.Key)}, api: a, group: -1}
	sourceField, sourceName := "from", tc.From
	if tc.Query != "" {
		t.source = querySource(tc.Query)
		sourceField, sourceName = "query", "the query"
	} else {
		t.source = myIdent(tc.From) + " AS src"
	}
	have, err := sourceColumnNames(ctx, src, t.source)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the source: %w", at(sourceField), err)
	}
	// need checks that a column the file names is in the source.
	need := func(field, col string) error {
		if have[strings.ToLower(col)] {
			return nil
		}
		switch ok, err := sourceHasColumn(ctx, src, t.source, col); {
		case err != nil:
			return fmt.Errorf("%s: reading the source: %w", at(field), err)
		case !ok:
			return fmt.Errorf("%s: no column %q in the source (%s)", at(field), col, sourceName)
		}
		return nil
	}
	if err := need("key", tc.Key); err != nil {
		return nil, err
	}
	add := func(name string, c config.Column, expr string) int {
		t.cols = append(t.cols, column{name: name, cfg: c, sourceExpr: expr})
		return len(t.cols) - 1
	}
	for _, name := range a.BodyFields() {
		c := a.Body[name]
		field := "target_api.body." + name
		base, several, severalCol, rawType := "NULL", "", 0, ""
		if c.From != "" {
			if err := need(field+".from", c.From); err != nil {
				return nil, err
			}
			base = "src." + myIdent(c.From)
		}
		if l := c.Lookup; l != nil {
			if c.From == "" {
				base = t.sourceKey
			}
			var value string
			value, several = lookupExprs(l, base)
			if rawType, err = lookupType(ctx, src, t.source, value, several); err != nil {
				return nil, fmt.Errorf("%s: reading the source: %w", at(field+".lookup"), err)
			}
			base = value
		}
		col := add(name, c, transformed(base, c))
		t.cols[col].rawType = rawType
		if several != "" {
			severalCol = add("{several "+name+"}", config.Column{}, several)
		}
		t.fields = append(t.fields, apiField{name: name, col: col, several: severalCol, redacted: tc.Redacted(name)})
		t.redacted = t.redacted || tc.Redacted(name)
	}
	rest := a.Path
	for _, name := range a.PathColumns() {
		if err := need("target_api.path", name); err != nil {
			return nil, err
		}
		before, after, _ := strings.Cut(rest, "{"+name+"}")
		t.parts = append(t.parts, before)
		t.pathCols = append(t.pathCols, add("{"+name+"}", config.Column{From: name}, "src."+myIdent(name)))
		rest = after
	}
	t.parts = append(t.parts, rest)
	t.creates = a.Method == "POST" && !slices.ContainsFunc(a.PathColumns(), func(c string) bool { return strings.EqualFold(c, tc.Key) })
	if a.GroupBy != "" {
		if err := need("target_api.group_by", a.GroupBy); err != nil {
			return nil, err
		}
		t.group = add("group_by", config.Column{From: a.GroupBy}, "src."+myIdent(a.GroupBy))
	}
	nullable, err := checkSource(ctx, src, t.table)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the source: %w", at(sourceField), err)
	}
	if nullable {
		if tc.NullKeys != config.NullKeysSkip {
			return nil, fmt.Errorf("%s: %s can be NULL in the source, and a row without a key has no Idempotency-Key or checkpoint; "+
				"key on a NOT NULL column, COALESCE it in a query, or set null_keys: skip to count such rows as failed", at("key"), tc.Key)
		}
		t.nullKeys = true
	}
	if err := checkKey(ctx, src, t.table); err != nil {
		return nil, fmt.Errorf("%s: %w", at("key"), err)
	}
	if g := t.group; g >= 0 && t.cols[g].srcType == "FLOAT" {
		// Workers lease a group by its value's text and read it back with
		// group = text, which MySQL compares with a FLOAT as a double: no
		// float but a few (1.5) equals the double of its text (0.1, or
		// the six digits MySQL writes), so a group matched no row and its
		// rows were never sent. A DOUBLE's text is its exact value.
		t.cols[g].sourceExpr = "CAST(" + t.cols[g].sourceExpr + " AS DOUBLE)"
	}
	raw, err := sourceTypes(ctx, src, t.table, a.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the source: %w", at(sourceField), err)
	}
	var jsonCols map[string]bool
	if tc.Query == "" {
		if jsonCols, err = mariaDBJSONColumns(ctx, src, tc.From); err != nil {
			return nil, fmt.Errorf("%s: reading the source's JSON columns: %w", at(sourceField), err)
		}
	}
	for i := range t.fields {
		c := &t.cols[t.fields[i].col]
		if c.cfg.Lookup == nil {
			c.rawType = raw[c.cfg.From]
		}
		if reason := c.spatial(); reason != "" {
			return nil, fmt.Errorf("%s: %s", at("target_api.body."+t.fields[i].name), reason)
		}
		if c.srcType == "BIT" {
			// MySQL sends a BIT as its bytes; the API gets its number
			// (BIT(1), JPA's boolean, as 1 or 0), not "\u0001".
			c.sourceExpr = "(" + c.sourceExpr + " + 0)"
		}
		if c.srcType == "YEAR" {
			c.sourceExpr = yearText(c.sourceExpr)
		}
		t.fields[i].number = c.srcType == "BIT" || isNumeric(c.srcType)
		t.fields[i].json = len(c.cfg.Transform) == 0 && c.cfg.Lookup == nil && (c.srcType == "JSON" || jsonCols[strings.ToLower(c.cfg.From)])
		t.fields[i].srcType = c.srcType
	}
	for _, i := range t.pathCols {
		if reason := t.cols[i].spatial(); reason != "" {
			return nil, fmt.Errorf("%s: %s", at("target_api.path"), reason)
		}
		if t.cols[i].srcType == "YEAR" {
			t.cols[i].sourceExpr = yearText(t.cols[i].sourceExpr)
		}
	}
	// The casts above changed what the reads return.
	if _, err := noteReadTypes(ctx, src, t.table); err != nil {
		return nil, fmt.Errorf("%s: reading the source: %w", at(sourceField), err)
	}
	return t, nil
}

// lookupType checks a body lookup's subqueries on the source and returns
// MySQL's type of the value it reads, before any transform: the text
// TRIM makes of a looked-up TIMESTAMP is still an instant in UTC, and
// that of a DATE still a date that may be none (see column.rawType).
func lookupType(ctx context.Context, src *sql.DB, source, value, several string) (string, error) {
	rows, err := src.QueryContext(ctx, "SELECT "+value+", "+several+" FROM "+source+" LIMIT 0")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return "", err
	}
	return types[0].DatabaseTypeName(), rows.Err()
}

// mariaDBJSONColumns names (lower-cased) the columns of a MariaDB table,
// schema-qualified or not, declared JSON: MariaDB reports them as LONGTEXT, and keeps the JSON of
// their declaration as the CHECK json_valid(`col`) it adds. MySQL's JSON
// columns say JSON themselves; there it finds none.
func mariaDBJSONColumns(ctx context.Context, db *sql.DB, table string) (map[string]bool, error) {
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, err
	}
	if !strings.Contains(version, "MariaDB") {
		return nil, nil
	}
	schema, name := splitQualified(table)
	rows, err := db.QueryContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ?`, schema, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var clause string
		if err := rows.Scan(&clause); err != nil {
			return nil, err
		}
		if col, ok := strings.CutPrefix(clause, "json_valid(`"); ok {
			if col, ok := strings.CutSuffix(col, "`)"); ok && !strings.Contains(col, "`") {
				out[strings.ToLower(col)] = true
			}
		}
	}
	return out, rows.Err()
}

// sourceColumnNames are the source's column names, lower-cased, as MySQL
// matches them.
func sourceColumnNames(ctx context.Context, db *sql.DB, source string) (map[string]bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+source+" LIMIT 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range names {
		out[strings.ToLower(n)] = true
	}
	return out, rows.Err()
}

// sourceHasColumn reports whether the source has column col although
// SELECT * leaves it out: MariaDB's INVISIBLE columns, which a select
// naming them reads (a table sent to the API refused one as no column
// of the source).
func sourceHasColumn(ctx context.Context, db *sql.DB, source, col string) (bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT src."+myIdent(col)+" FROM "+source+" LIMIT 0")
	var my *mysql.MySQLError
	if errors.As(err, &my) && my.Number == 1054 { // ER_BAD_FIELD_ERROR
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, rows.Close()
}

// isNumeric reports whether MySQL's type of a value (as the driver names
// it) is a number, written in JSON as one.
func isNumeric(typ string) bool {
	for _, n := range []string{"INT", "DECIMAL", "FLOAT", "DOUBLE"} {
		if strings.Contains(typ, n) {
			return true
		}
	}
	return false
}
