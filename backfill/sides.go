package backfill

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// side is one database as verify sees a table in it: every row has a
// position (its integer key, or a hash of its key), a key in text form, a
// hash of its mapped values, and canonical text values that are equal on
// both sides when the row was copied faithfully.
type side interface {
	// bounds returns the lowest and highest position and the row count.
	bounds(ctx context.Context) (lo, hi, n int64, err error)
	// chunks sums the rows of [lo, hi] in chunks of width positions, by
	// chunk number.
	chunks(ctx context.Context, lo, hi, width int64) (map[int64]sum, error)
	// sum sums the rows of positions [a, b].
	sum(ctx context.Context, a, b int64) (sum, error)
	// hashes returns key → row hash for positions [a, b].
	hashes(ctx context.Context, a, b int64) (map[string]string, error)
	// values returns key → canonical column values for the keys.
	values(ctx context.Context, keys []string) (map[string][]*string, error)
}

// sum is a range's row count and the XOR of its row hashes: equal sums on
// both sides mean equal rows, up to a 64-bit hash collision.
type sum struct {
	n int64
	x uint64
}

// mysqlSide is the legacy database.
type mysqlSide struct {
	db                        *sql.DB
	from, pos, key, hash, raw string
	cols                      []string
	queries                   *atomic.Int64
}

// pgSide is the modern database.
type pgSide struct {
	db                         *pgxpool.Pool
	from, where, pos, key, raw string
	hash, keyType              string
	cols                       []string
	queries                    *atomic.Int64
}

// newSides builds both sides of a table. Values are compared as the text
// each side renders for the target column's type, in forms chosen to be
// identical: dates as YYYY-MM-DD, timestamps to the microsecond in UTC,
// booleans as 1 and 0, binary values by their MD5.
func newSides(t *table, src *sql.DB, dst *pgxpool.Pool, queries *atomic.Int64) (*mysqlSide, *pgSide) {
	my := &mysqlSide{db: src, from: t.source, key: "CAST(" + t.sourceKey + " AS CHAR)", raw: t.sourceKey, queries: queries}
	pg := &pgSide{db: dst, from: t.target + " t", queries: queries}
	tk := "t." + pgIdent(t.cfg.TargetKey)
	pg.where = tk + " IS NOT NULL" // rows born in modern are not copies
	pg.key, pg.raw = tk+"::text", tk
	pg.keyType = t.cols[0].pgType
	if t.intKey {
		my.pos, pg.pos = t.sourceKey, tk
	} else {
		// Keys that are not integers may sort differently on the two sides;
		// a hash of the key orders them the same on both.
		my.pos = "CONV(LEFT(MD5(" + my.key + "), 8), 16, 10)"
		pg.pos = "('x' || left(md5(" + pg.key + "), 8))::bit(32)::bigint"
	}
	var myParts, pgParts []string
	for i, c := range t.cols {
		typ := c.pgType
		col := "t." + pgIdent(c.name)
		if c.lookup != nil {
			// Compare the foreign key as legacy has it: modern's id,
			// looked up back.
			alias := fmt.Sprintf("l%d", i)
			pg.from += fmt.Sprintf(" LEFT JOIN %s %s ON %s.%s = %s", c.lookup.table, alias, alias, c.lookup.column, col)
			col, typ = alias+"."+c.lookup.key, c.lookup.keyType
		}
		mv, pv := canonMySQL(c.sourceExpr, typ), canonPostgres(col, typ)
		my.cols, pg.cols = append(my.cols, mv), append(pg.cols, pv)
		// Values are joined by the ASCII unit separator, NULL is the record
		// separator: control characters no text column holds in practice
		// (binary values are hashed first). A length prefix would rule out
		// even contrived ambiguities, but evaluating each value twice makes
		// the checksum half again as slow on MariaDB.
		myParts = append(myParts, "IFNULL("+mv+", CHAR(30))")
		pgParts = append(pgParts, "coalesce("+pv+", chr(30))")
	}
	my.hash = "MD5(CONCAT_WS(CHAR(31), " + strings.Join(myParts, ", ") + "))"
	pg.hash = "md5(concat_ws(chr(31), " + strings.Join(pgParts, ", ") + "))"
	return my, pg
}

func canonMySQL(e, typ string) string {
	switch {
	case typ == "boolean":
		return "CASE WHEN (" + e + ") IS NULL THEN NULL WHEN (" + e + ") <> 0 THEN '1' ELSE '0' END"
	case typ == "smallint", typ == "integer", typ == "bigint":
		return "CAST(" + e + " AS SIGNED)"
	case typ == "date":
		return "DATE_FORMAT(" + e + ", '%Y-%m-%d')"
	case strings.HasPrefix(typ, "timestamp"):
		return "DATE_FORMAT(" + e + ", '%Y-%m-%d %H:%i:%s.%f')"
	case typ == "bytea":
		return "MD5(" + e + ")"
	}
	return "CAST(" + e + " AS CHAR)"
}

func canonPostgres(c, typ string) string {
	switch {
	case typ == "boolean":
		return "CASE WHEN " + c + " IS NULL THEN NULL WHEN " + c + " THEN '1' ELSE '0' END"
	case typ == "date":
		return "to_char(" + c + ", 'YYYY-MM-DD')"
	case strings.HasSuffix(typ, "with time zone"):
		return "to_char(" + c + " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
	case strings.HasPrefix(typ, "timestamp"):
		return "to_char(" + c + ", 'YYYY-MM-DD HH24:MI:SS.US')"
	case typ == "bytea":
		return "md5(" + c + ")"
	}
	return c + "::text"
}

func (s *mysqlSide) agg() string {
	return "COUNT(*), COALESCE(BIT_XOR(CAST(CONV(LEFT(" + s.hash + ", 16), 16, 10) AS UNSIGNED)), 0)"
}

func (s *pgSide) agg() string {
	return "count(*), coalesce(bit_xor(('x' || left(" + s.hash + ", 16))::bit(64)::bigint), 0)"
}

func (s *mysqlSide) bounds(ctx context.Context) (lo, hi, n int64, err error) {
	s.queries.Add(1)
	var l, h sql.NullInt64
	err = s.db.QueryRowContext(ctx, "SELECT MIN("+s.pos+"), MAX("+s.pos+"), COUNT(*) FROM "+s.from).Scan(&l, &h, &n)
	return l.Int64, h.Int64, n, err
}

func (s *pgSide) bounds(ctx context.Context) (lo, hi, n int64, err error) {
	s.queries.Add(1)
	var l, h *int64
	err = s.db.QueryRow(ctx, "SELECT min("+s.pos+"), max("+s.pos+"), count(*) FROM "+s.from+" WHERE "+s.where).Scan(&l, &h, &n)
	if l != nil {
		lo, hi = *l, *h
	}
	return lo, hi, n, err
}

func (s *mysqlSide) chunks(ctx context.Context, lo, hi, width int64) (map[int64]sum, error) {
	s.queries.Add(1)
	rows, err := s.db.QueryContext(ctx, "SELECT ("+s.pos+" - ?) DIV ? AS c, "+s.agg()+" FROM "+s.from+
		" WHERE "+s.pos+" BETWEEN ? AND ? GROUP BY c", lo, width, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]sum{}
	for rows.Next() {
		var c int64
		var v sum
		if err := rows.Scan(&c, &v.n, &v.x); err != nil {
			return nil, err
		}
		out[c] = v
	}
	return out, rows.Err()
}

func (s *pgSide) chunks(ctx context.Context, lo, hi, width int64) (map[int64]sum, error) {
	s.queries.Add(1)
	rows, err := s.db.Query(ctx, "SELECT ("+s.pos+" - $1) / $2 AS c, "+s.agg()+" FROM "+s.from+
		" WHERE "+s.where+" AND "+s.pos+" BETWEEN $3 AND $4 GROUP BY c", lo, width, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]sum{}
	for rows.Next() {
		var c, x int64
		var v sum
		if err := rows.Scan(&c, &v.n, &x); err != nil {
			return nil, err
		}
		v.x = uint64(x)
		out[c] = v
	}
	return out, rows.Err()
}

func (s *mysqlSide) sum(ctx context.Context, a, b int64) (sum, error) {
	s.queries.Add(1)
	var v sum
	err := s.db.QueryRowContext(ctx, "SELECT "+s.agg()+" FROM "+s.from+" WHERE "+s.pos+" BETWEEN ? AND ?", a, b).Scan(&v.n, &v.x)
	return v, err
}

func (s *pgSide) sum(ctx context.Context, a, b int64) (sum, error) {
	s.queries.Add(1)
	var v sum
	var x int64
	err := s.db.QueryRow(ctx, "SELECT "+s.agg()+" FROM "+s.from+" WHERE "+s.where+" AND "+s.pos+" BETWEEN $1 AND $2", a, b).Scan(&v.n, &x)
	v.x = uint64(x)
	return v, err
}

func (s *mysqlSide) hashes(ctx context.Context, a, b int64) (map[string]string, error) {
	s.queries.Add(1)
	rows, err := s.db.QueryContext(ctx, "SELECT "+s.key+", "+s.hash+" FROM "+s.from+" WHERE "+s.pos+" BETWEEN ? AND ?", a, b)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, h string
		if err := rows.Scan(&k, &h); err != nil {
			return nil, err
		}
		out[k] = h
	}
	return out, rows.Err()
}

func (s *pgSide) hashes(ctx context.Context, a, b int64) (map[string]string, error) {
	s.queries.Add(1)
	rows, err := s.db.Query(ctx, "SELECT "+s.key+", "+s.hash+" FROM "+s.from+" WHERE "+s.where+" AND "+s.pos+" BETWEEN $1 AND $2", a, b)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	var k, h string
	_, err = pgx.ForEachRow(rows, []any{&k, &h}, func() error { out[k] = h; return nil })
	return out, err
}

func (s *mysqlSide) values(ctx context.Context, keys []string) (map[string][]*string, error) {
	s.queries.Add(1)
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+s.key+", "+strings.Join(s.cols, ", ")+" FROM "+s.from+
		" WHERE "+s.raw+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(keys)), ",")+")", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanValues(rows.Next, rows.Scan, rows.Err, len(s.cols))
}

func (s *pgSide) values(ctx context.Context, keys []string) (map[string][]*string, error) {
	s.queries.Add(1)
	rows, err := s.db.Query(ctx, "SELECT "+s.key+", "+strings.Join(s.cols, ", ")+" FROM "+s.from+
		" WHERE "+s.where+" AND "+s.raw+" = ANY($1::text[]::"+s.keyType+"[])", keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanValues(rows.Next, rows.Scan, rows.Err, len(s.cols))
}

func scanValues(next func() bool, scan func(...any) error, rowsErr func() error, ncols int) (map[string][]*string, error) {
	out := map[string][]*string{}
	for next() {
		var key string
		vals := make([]*string, ncols)
		dest := []any{&key}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := scan(dest...); err != nil {
			return nil, err
		}
		out[key] = vals
	}
	return out, rowsErr()
}
