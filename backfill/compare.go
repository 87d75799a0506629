package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// comparer compares a table's legacy rows, read as the backfill reads
// them, with its modern rows, a chunk at a time: each chunk is staged in
// the target database and joined with the target table by key, and each
// value is converted and compared there by the backfill's own rules
// (mapping.go). So a row it calls the same is one a backfill would leave
// alone, and one it calls different is one a backfill would write or
// refuse. Binary values other than the key are compared by their MD5,
// computed on each side, so that photos do not travel.
type comparer struct {
	t       *table
	src     *sql.DB
	conn    *pgxpool.Conn
	stage   string
	query   string
	present string
	queries *atomic.Int64
}

// difference is a legacy row that modern lacks or holds otherwise.
type difference struct {
	row     int // in its chunk
	key     []byte
	present bool
	// cols are the differing columns when present, and modern are their
	// modern values as text (binary values as md5:…).
	cols   []int
	modern []*string
}

func newComparer(ctx context.Context, src *sql.DB, dst *pgxpool.Pool, t *table, queries *atomic.Int64) (*comparer, error) {
	conn, err := dst.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	c := &comparer{t: t, src: src, conn: conn, stage: fmt.Sprintf("strangler_compare_%d", t.index), queries: queries}
	if err := createStage(ctx, conn, c.stage, t, true); err != nil {
		conn.Release()
		return nil, err
	}
	c.query, c.present = compareSQL(t, c.stage)
	return c, nil
}

func (c *comparer) close() { c.conn.Release() }

// hashed reports whether column i is compared by its MD5.
func hashed(t *table, i int) bool { return i > 0 && t.cols[i].isBytes() }

// compareList is the select list the comparer reads from the source:
// the backfill's, with binary values other than the key by their MD5.
// MySQL's MD5 hashes a string's bytes in its column's character set, but
// the backfill reads text in utf8mb4 (the connection's): text going into
// bytea is hashed as utf8mb4 too, or a latin1 'é' would differ forever.
func compareList(t *table) string {
	exprs := make([]string, len(t.cols))
	for i, c := range t.cols {
		exprs[i] = c.sourceExpr
		switch {
		case hashed(t, i) && isTextType(c.srcType):
			exprs[i] = "MD5(CONVERT(" + c.sourceExpr + " USING utf8mb4))"
		case hashed(t, i):
			exprs[i] = "MD5(" + c.sourceExpr + ")"
		}
	}
	return strings.Join(exprs, ", ")
}

// keyMatch is the join condition of a target row t and staged row s by
// key: the target's equality, and byte equality where that is looser.
func keyMatch(t *table) string {
	k := &t.cols[0]
	key := "t." + pgIdent(k.name)
	cond := key + " " + t.keyEq + " " + k.valueExpr("s.c0")
	if !t.exactKey {
		cond += " AND " + byteText(key) + " = " + k.keyText("s.c0")
	}
	return cond
}

// compareSQL builds the query that returns the staged rows [$1, $2] that
// modern lacks or holds otherwise, with which columns differ and their
// modern values; and the query that says whether one staged row's key is
// in modern.
func compareSQL(t *table, stage string) (query, present string) {
	joins := ""
	diffs := []string{"false"}
	modern := []string{"NULL::text"}
	for i := 1; i < len(t.cols); i++ {
		c := &t.cols[i]
		col := "t." + pgIdent(c.name)
		v := fmt.Sprintf("s.c%d", i)
		same, shown := "", col+"::text"
		switch {
		case hashed(t, i):
			same, shown = v+" IS NOT DISTINCT FROM md5("+col+")", "'md5:' || md5("+col+")"
		case c.lookup != nil:
			alias := fmt.Sprintf("l%d", i)
			joins += fmt.Sprintf(" LEFT JOIN %s %s ON %s.%s = %s::%s", c.lookup.table, alias, alias, c.lookup.key, v, c.lookup.keyType)
			// A value the lookup finds no row for is one the backfill
			// refuses: it differs even from a NULL in modern.
			same = fmt.Sprintf("(%s IS NULL OR %s.%s IS NOT NULL) AND %s", v, alias, c.lookup.key, c.same(alias+"."+c.lookup.column, col))
			// Modern's value as legacy would say it: the key it points at.
			shown = fmt.Sprintf("(SELECT r.%s::text FROM %s r WHERE r.%s = %s LIMIT 1)", c.lookup.key, c.lookup.table, c.lookup.column, col)
		default:
			same = c.same(c.valueExpr(v), col)
		}
		diffs = append(diffs, fmt.Sprintf("(coalesce(s._bad = %d, false) OR NOT (%s))", i, same))
		modern = append(modern, shown)
	}
	key := "t." + pgIdent(t.cols[0].name)
	// Values are converted only for rows modern has (CASE is lazy): a
	// value the target cannot take, in a row modern lacks, then costs
	// nothing.
	query = fmt.Sprintf(`SELECT s._row, %s IS NOT NULL, d.diff, CASE WHEN true = ANY(d.diff) THEN ARRAY[%s] END
		FROM %s s%s LEFT JOIN %s t ON %s
		CROSS JOIN LATERAL (SELECT CASE WHEN %s IS NOT NULL THEN ARRAY[%s] END AS diff) d
		WHERE s._row BETWEEN $1 AND $2 AND (%s IS NULL OR true = ANY(d.diff))`,
		key, strings.Join(modern, ", "), stage, joins, t.target, keyMatch(t), key, strings.Join(diffs, ", "), key)
	present = fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s t WHERE %s) FROM %s s WHERE s._row = $1", t.target, keyMatch(t), stage)
	return query, present
}

// chunk compares a batch of legacy rows with modern.
func (c *comparer) chunk(ctx context.Context, b batch) ([]difference, error) {
	if len(b.rows) == 0 {
		return nil, nil
	}
	tx, err := c.conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	// Nothing is written but the staging table, which the commit empties;
	// a rollback does the same.
	defer tx.Rollback(ctx)
	c.queries.Add(1)
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.stage}, stageColumns(c.t), &compareSource{c: c, b: b, i: -1}); err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}
	var out []difference
	if err := c.compare(ctx, tx, b, 0, len(b.rows)-1, &out); err != nil {
		return nil, err
	}
	return out, tx.Commit(ctx)
}

// compare compares staged rows [lo, hi] inside a savepoint. A value the
// target cannot convert fails the query; then each half is compared,
// down to the single rows, which differ from whatever modern holds.
func (c *comparer) compare(ctx context.Context, tx pgx.Tx, b batch, lo, hi int, out *[]difference) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	c.queries.Add(1)
	rows, err := sp.Query(ctx, c.query, lo, hi)
	var found []difference
	if err == nil {
		var d difference
		var diff []bool
		_, err = pgx.ForEachRow(rows, []any{&d.row, &d.present, &diff, &d.modern}, func() error {
			found = append(found, differenceOf(b, d, diff))
			return nil
		})
	}
	if err == nil {
		*out = append(*out, found...)
		return sp.Commit(ctx)
	}
	sp.Rollback(ctx)
	if !rowError(err) {
		return err
	}
	if lo < hi {
		mid := lo + (hi-lo)/2
		if err := c.compare(ctx, tx, b, lo, mid, out); err != nil {
			return err
		}
		return c.compare(ctx, tx, b, mid+1, hi, out)
	}
	d := difference{row: lo, key: b.rows[lo].key}
	var cause *pgconn.PgError
	errors.As(err, &cause)
	if d.present, err = c.isPresent(ctx, tx, lo); err != nil {
		return err
	}
	if d.present {
		if col, _ := probe(ctx, tx, c.t, c.stage, lo, cause); col != nil {
			d.cols = []int{c.colIndex(col)}
			d.modern = make([]*string, len(c.t.cols))
		}
	}
	*out = append(*out, d)
	return nil
}

// isPresent reports whether modern has staged row row's key; a key the
// target cannot even convert is not there.
func (c *comparer) isPresent(ctx context.Context, tx pgx.Tx, row int) (bool, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer sp.Rollback(ctx)
	var present bool
	c.queries.Add(1)
	err = sp.QueryRow(ctx, c.present, row).Scan(&present)
	if rowError(err) {
		return false, nil
	}
	return present, err
}

func (c *comparer) colIndex(col *column) int {
	for i := range c.t.cols {
		if &c.t.cols[i] == col {
			return i
		}
	}
	return -1
}

func differenceOf(b batch, d difference, diff []bool) difference {
	d.key = b.rows[d.row].key
	for i, x := range diff {
		if x && d.present {
			d.cols = append(d.cols, i)
		}
	}
	return d
}

// compareSource stages a batch for comparing: a value refused before
// staging (see refuse) is staged as NULL and its column noted in _bad,
// so the row differs from whatever modern holds, as a backfill would not
// have copied it.
type compareSource struct {
	c    *comparer
	b    batch
	i    int
	vals []any
}

func (s *compareSource) Next() bool {
	s.i++
	return s.i < len(s.b.rows)
}

func (s *compareSource) Values() ([]any, error) {
	t := s.c.t
	row := s.b.rows[s.i]
	if s.vals == nil {
		s.vals = make([]any, len(t.cols)+2)
	}
	s.vals[0], s.vals[1] = int32(s.i), nil
	for j, v := range row.vals {
		switch {
		case v == nil:
			s.vals[j+2] = nil
		case hashed(t, j):
			s.vals[j+2] = v
		case t.cols[j].refuse(v) != "":
			s.vals[j+2] = nil
			if s.vals[1] == nil {
				s.vals[1] = int16(j)
			}
		default:
			s.vals[j+2] = t.cols[j].encode(v)
		}
	}
	return s.vals, nil
}

func (s *compareSource) Err() error { return nil }

// tableCounts is what comparing a whole table found, besides the rows
// that differ.
type tableCounts struct {
	legacy, modern int64
	// matched counts legacy rows whose key modern has.
	matched int64
	// nullKeys counts legacy rows with a NULL key (null_keys: skip).
	nullKeys int64
}

// compareAll compares the whole table, a chunk of limit rows at a time,
// handing each chunk and its differences to found.
func (c *comparer) compareAll(ctx context.Context, limit int, pace *pacer, found func(batch, []difference) error) (tableCounts, error) {
	var n tableCounts
	var err error
	if n.modern, err = c.countModern(ctx); err != nil {
		return n, err
	}
	if n.nullKeys, err = countNullKeys(ctx, c.src, c.t); err != nil {
		return n, err
	}
	rd := &reader{db: c.src, t: c.t, limit: limit, pace: pace, list: compareList(c.t)}
	read := func(ctx context.Context, out chan<- batch) error { return rd.keyset(ctx, keyRange{}, out) }
	err = pipeline(ctx, read, func(b batch) error {
		c.queries.Add(1)
		diffs, err := c.chunk(ctx, b)
		if err != nil {
			return fmt.Errorf("compare %s: %w", c.t.name, err)
		}
		n.legacy += int64(len(b.rows))
		n.matched += int64(len(b.rows))
		for _, d := range diffs {
			if !d.present {
				n.matched--
			}
		}
		return found(b, diffs)
	})
	n.legacy += n.nullKeys
	return n, err
}

// mayHaveExtras reports whether modern may hold rows legacy lacks, after
// a pass that matched n.matched legacy rows and itself inserted inserted
// rows (which were missing, so matched nothing): modern held more keyed
// rows than were matched, counted before the pass or after it. A row
// written to both sides during the pass (a dual write, a backfill) is
// matched without being in the count before it, and would hide an extra
// row; one deleted from both sides during the pass still can, until the
// next pass.
func (c *comparer) mayHaveExtras(ctx context.Context, n tableCounts, inserted int64) (bool, error) {
	if n.modern > n.matched {
		return true, nil
	}
	after, err := c.countModern(ctx)
	return after-inserted > n.matched, err
}

// countModern counts the target's rows with a key.
func (c *comparer) countModern(ctx context.Context) (int64, error) {
	var n int64
	c.queries.Add(1)
	err := c.conn.QueryRow(ctx, "SELECT count(*) FROM "+c.t.target+" t WHERE t."+pgIdent(c.t.cols[0].name)+" IS NOT NULL").Scan(&n)
	return n, err
}

// countNullKeys counts the source rows whose key is NULL, when the table
// lets them be.
func countNullKeys(ctx context.Context, db *sql.DB, t *table) (int64, error) {
	if !t.nullKeys {
		return 0, nil
	}
	var n int64
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.source+" WHERE "+t.sourceKey+" IS NULL").Scan(&n)
	return n, err
}
