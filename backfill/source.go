package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// maxBatchBytes caps the bytes of one batch, whatever its row count: a
// table of photos must not hold thousands of them at once. With a batch
// being read, one queued and one being written per worker, memory stays
// near a few times this per worker whatever the table's size.
const maxBatchBytes = 16 << 20

// batch is rows read from the source, ready to be written.
type batch struct {
	rows []sourceRow
	// bytes is the size of the values, for memory accounting.
	bytes int
	// final is set on a range's last batch: no rows follow it.
	final bool
	// baseline: the rows are at or below a checkpoint of a release that
	// kept no ledger rows of migrated rows (apiRunner.copy).
	baseline bool
}

// sourceRow is one source row: its key and the value of each target
// column, nil for NULL, all in the form MySQL sends. The reads are
// prepared statements, so MySQL sends values in its binary protocol and
// the driver writes numbers as Go does: a FLOAT's shortest exact form
// (590.7676), where MySQL's own text has six digits (590.768).
type sourceRow struct {
	key  []byte
	vals [][]byte
}

// reader reads one table's rows from the source database.
type reader struct {
	db    *sql.DB
	t     *table
	limit int
	pace  *pacer
	// list is the select list after the key; empty means t.selectList().
	list string
	// keysOnly reads the keys alone.
	keysOnly bool
	// where, if set, is a condition every row read meets (the group of a
	// table sent to the API), with its arguments.
	where     string
	whereArgs []any
}

// columns is what the reader selects after the key, and how many values.
func (r *reader) columns() (string, int) {
	switch {
	case r.keysOnly:
		return "", 0
	case r.list != "":
		return ", " + r.list, len(r.t.cols)
	}
	return ", " + r.t.selectList(), len(r.t.cols)
}

// keyset reads a key range a batch at a time, each batch one query that
// starts after the previous batch's last key (never OFFSET, which rereads
// everything before it), and sends the batches to out until the range is
// exhausted.
func (r *reader) keyset(ctx context.Context, rg keyRange, out chan<- batch) error {
	after := rg.cursor()
	limit := r.limit
	var notNull []string
	if r.t.nullKeys {
		notNull = []string{r.t.sourceKey + " IS NOT NULL"}
	}
	if r.where != "" {
		notNull = append(notNull, r.where)
	}
	stmts := map[string]*sql.Stmt{}
	defer func() {
		for _, s := range stmts {
			s.Close()
		}
	}()
	for {
		where, args := append([]string(nil), notNull...), append([]any(nil), r.whereArgs...)
		if after != nil {
			where, args = append(where, r.t.sourceKey+" > "+r.t.keyParam()), append(args, after)
		}
		if rg.end != nil {
			where, args = append(where, r.t.sourceKey+" <= "+r.t.keyParam()), append(args, rg.end)
		}
		list, ncols := r.columns()
		q := "SELECT " + r.t.sourceKey + list + " FROM " + r.t.source
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		q += " ORDER BY " + r.t.sourceKey + " LIMIT ?"
		// The statement is prepared once per shape and reused: preparing per
		// batch would cost two more round trips each time.
		stmt, ok := stmts[q]
		if !ok {
			var err error
			if stmt, err = r.db.PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("read %s: %w", r.t.name, err)
			}
			stmts[q] = stmt
		}
		rows, err := stmt.QueryContext(ctx, append(args, limit)...)
		if err == nil {
			err = r.samePlan(rows)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", r.t.name, err)
		}
		b, cut, err := scanBatch(rows, ncols)
		if err != nil {
			return fmt.Errorf("read %s: %w", r.t.name, err)
		}
		b.final = !cut && len(b.rows) < limit
		if cut {
			rows.Close()
			// Rows this big: read fewer at a time from now on.
			limit = max(1, len(b.rows))
		}
		if err := r.pace.take(ctx, len(b.rows)); err != nil {
			return err
		}
		if len(b.rows) > 0 || b.final {
			select {
			case out <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if b.final {
			return nil
		}
		after = b.rows[len(b.rows)-1].key
	}
}

// byValues reads the rows whose column equals one of values, a batch of
// values at a time: the keys of --keys and read repair, or the foreign
// keys of their dependent rows.
func (r *reader) byValues(ctx context.Context, column, typ string, values [][]byte, out chan<- batch) error {
	for len(values) > 0 {
		n := min(len(values), r.limit, 10_000)
		if err := r.readHeld(ctx, column, typ, values[:n], out); err != nil {
			return fmt.Errorf("read %s: %w", r.t.name, err)
		}
		values = values[n:]
	}
	return nil
}

// readHeld reads the rows whose column equals one of values, leaving out
// the values the column's character set cannot hold (a read-repair key
// is whatever a client put in a path: Zoë😀 for a latin1 key). MySQL
// refuses the whole query for one of them, which stopped the table on
// every run; no row has such a value, so the values are halved until
// those are found and left out.
func (r *reader) readHeld(ctx context.Context, column, typ string, values [][]byte, out chan<- batch) error {
	err := r.readValues(ctx, column, typ, values, out)
	switch {
	case !unholdable(err):
		return err
	case len(values) == 1:
		return nil
	}
	half := len(values) / 2
	if err := r.readHeld(ctx, column, typ, values[:half], out); err != nil {
		return err
	}
	return r.readHeld(ctx, column, typ, values[half:], out)
}

// unholdable reports whether err is MySQL refusing to compare a column
// with a value its character set cannot hold (ER_CANT_AGGREGATE_2, _3
// and _NCOLLATIONS: "Illegal mix of collations").
func unholdable(err error) bool {
	var my *mysql.MySQLError
	return errors.As(err, &my) && (my.Number == 1267 || my.Number == 1270 || my.Number == 1271)
}

// readValues reads the rows whose column, of MySQL's type typ, equals
// one of values, at most 10,000 of them.
func (r *reader) readValues(ctx context.Context, column, typ string, values [][]byte, out chan<- batch) error {
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	list, ncols := r.columns()
	param := valueParam(typ)
	rows, err := r.db.QueryContext(ctx, "SELECT "+r.t.sourceKey+list+" FROM "+r.t.source+
		" WHERE "+column+" IN ("+strings.TrimSuffix(strings.Repeat(param+",", len(values)), ",")+") ORDER BY "+r.t.sourceKey, args...)
	if err == nil {
		err = r.samePlan(rows)
	}
	if err != nil {
		return err
	}
	// Bounded by the number of values asked for, times the rows each
	// matches: a foreign key's dependants are few.
	for {
		b, cut, err := scanBatch(rows, ncols)
		if err != nil {
			return err
		}
		if err := r.pace.take(ctx, len(b.rows)); err != nil {
			rows.Close()
			return err
		}
		if len(b.rows) > 0 {
			select {
			case out <- b:
			case <-ctx.Done():
				rows.Close()
				return ctx.Err()
			}
		}
		if !cut {
			return nil
		}
	}
}

// keyParam is the placeholder of a key read back in a statement.
func (t *table) keyParam() string { return valueParam(t.keyType) }

// valueParam is the placeholder of a value read back in a statement,
// matched with a column of MySQL's type typ: the value as the driver sent
// it. A YEAR comes as its number, and year 0000 as 0, which MySQL reads
// from text as the year 2000 ('0' is 2000, as '99' is 1999): the page
// after a key of 0000 began past 2000, its row was looked for as 2000's
// (a re-run never repaired it, and its failure left the ledger as a row
// gone), --keys found 2000's rows as those looking up 0000's, and API
// workers sent 2000's group twice and 0000's never. As a number, 0 is
// 0000.
func valueParam(typ string) string {
	if typ == "YEAR" {
		return "CAST(? AS SIGNED)"
	}
	return "?"
}

// samePlan refuses rows whose key or values MySQL now sends as another
// type than the plan found, and closes them. Every value is read by its
// planned type (a DATETIME as wall time in source_time_zone, a TIMESTAMP
// as an instant), so a column an ALTER TABLE changed while the run
// copied it would be written wrong without a word: a DATETIME become a
// TIMESTAMP landed hours away. A run started afterwards plans by the new
// type and resumes from the checkpoint.
func (r *reader) samePlan(rows *sql.Rows) error {
	types, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return err
	}
	for i, ct := range types {
		// The comparer reads a binary value as its MD5.
		if r.list != "" && hashed(r.t, i-1) {
			continue
		}
		if was, now := r.t.readTypes[i], ct.DatabaseTypeName(); was != now {
			rows.Close()
			what := "key " + r.t.cfg.Key
			if i > 0 {
				what = "column " + r.t.cols[i-1].name
			}
			return fmt.Errorf("%s was %s when the run began and is now %s (an ALTER TABLE while it ran?): "+
				"nothing read as %s is written or compared; run again, which plans by the new type", what, was, now, now)
		}
	}
	return nil
}

// scanBatch reads rows into a batch until they end or the batch holds
// maxBatchBytes; cut reports the latter, with rows left open for the next
// call. The values are copied into one buffer per batch rather than one
// allocation per value.
func scanBatch(rows *sql.Rows, ncols int) (b batch, cut bool, err error) {
	raw := make([]sql.RawBytes, ncols+1)
	dest := make([]any, ncols+1)
	for i := range raw {
		dest[i] = &raw[i]
	}
	arena := make([]byte, 0, 64<<10)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return b, false, err
		}
		need := 0
		for _, v := range raw {
			need += len(v)
		}
		if cap(arena)-len(arena) < need {
			// A new buffer; the old one stays alive through the slices
			// already taken from it.
			arena = make([]byte, 0, max(need, 2*cap(arena), 64<<10))
		}
		row := sourceRow{vals: make([][]byte, ncols)}
		for i, v := range raw {
			var kept []byte
			if v != nil {
				start := len(arena)
				arena = append(arena, v...)
				kept = arena[start:len(arena):len(arena)]
			}
			if i == 0 {
				row.key = kept
			} else {
				row.vals[i-1] = kept
			}
		}
		b.rows = append(b.rows, row)
		b.bytes += need
		if b.bytes >= maxBatchBytes {
			return b, true, nil
		}
	}
	if err := rows.Err(); err != nil {
		return b, false, err
	}
	return b, false, rows.Close()
}

// splitRanges cuts an integer key space into n ranges of equal width for
// parallel copying, returning each range's last key; the last is nil, so
// rows added later with higher keys belong to it.
func splitRanges(ctx context.Context, db *sql.DB, t *table, n int) ([][]byte, error) {
	if n <= 1 || t.key != intKey {
		return [][]byte{nil}, nil
	}
	var lo, hi sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT MIN("+t.sourceKey+"), MAX("+t.sourceKey+") FROM "+t.source).Scan(&lo, &hi); err != nil {
		return nil, fmt.Errorf("read %s: key bounds: %w", t.name, err)
	}
	if !lo.Valid {
		return [][]byte{nil}, nil
	}
	// big.Int: keys may be BIGINT UNSIGNED, beyond int64.
	l, ok1 := new(big.Int).SetString(lo.String, 10)
	h, ok2 := new(big.Int).SetString(hi.String, 10)
	if !ok1 || !ok2 {
		return [][]byte{nil}, nil
	}
	span := new(big.Int).Sub(h, l)
	var ends [][]byte
	for i := 1; i < n; i++ {
		end := new(big.Int).Mul(span, big.NewInt(int64(i)))
		end.Div(end, big.NewInt(int64(n))).Add(end, l)
		s := []byte(end.String())
		if len(ends) > 0 && string(ends[len(ends)-1]) == string(s) {
			continue
		}
		ends = append(ends, s)
	}
	return append(ends, nil), nil
}

// estimateRows is the server's estimate of a source table's rows, for the
// progress display; 0 when unknown (a query source).
func estimateRows(ctx context.Context, db *sql.DB, t *table) int64 {
	if t.cfg.Query != "" {
		return 0
	}
	schema, name, ok := strings.Cut(t.cfg.From, ".")
	if !ok {
		schema, name = "", schema
	}
	var n sql.NullInt64
	db.QueryRowContext(ctx, `SELECT TABLE_ROWS FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ?`, schema, name).Scan(&n)
	return n.Int64
}
