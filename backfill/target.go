package backfill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// writer writes one table's batches to the target database on a
// connection of its own, which holds the table's staging table.
//
// A batch goes in with COPY to a temporary staging table whose columns are
// text (bytea for binary values), then into the target with one
// INSERT … SELECT … ON CONFLICT (target_key) DO UPDATE, which casts each
// value to its column's type. So re-running is idempotent, rows already
// equal are left alone (and counted as already present), and a value the
// target refuses fails a statement that can be retried on halves of the
// batch until the bad rows stand alone: they go to the ledger with their
// reason while the rest are written.
type writer struct {
	t      *table
	conn   *pgxpool.Conn
	ledger *ledger
	stage  string
	upsert string
	// missing finds, for each lookup column, staged rows whose value has no
	// row to translate it through.
	missing []string
	// direct decides when to try the direct path (see direct.go).
	direct directCopy
}

// newWriter prepares a writer for t; tryDirect says the rows are probably
// new, so the direct path is worth a try.
func newWriter(ctx context.Context, db *pgxpool.Pool, t *table, l *ledger, tryDirect bool) (*writer, error) {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", t.name, err)
	}
	w := &writer{t: t, conn: conn, ledger: l, stage: fmt.Sprintf("strangler_stage_%d", t.index)}
	defs := []string{"_row int4"}
	for i, c := range t.cols {
		defs = append(defs, fmt.Sprintf("c%d %s", i, c.stageType()))
	}
	// ON COMMIT DELETE ROWS empties it after each batch; a temporary table
	// is never WAL-logged, so staging costs little.
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+w.stage+" ("+strings.Join(defs, ", ")+") ON COMMIT DELETE ROWS"); err != nil {
		conn.Release()
		return nil, fmt.Errorf("write %s: staging table: %w", t.name, err)
	}
	w.upsert, w.missing = upsertSQL(t, w.stage)
	w.direct = newDirectCopy(t, tryDirect)
	return w, nil
}

// valueExpr is the staged value of column i as the target stores it. Text
// goes to string columns by assignment, which refuses a value too long
// for varchar(n) where an explicit cast would cut it short; other types
// are cast with their input function, as COPY would parse them.
func valueExpr(i int, c *column) string {
	v := fmt.Sprintf("s.c%d", i)
	if c.isBytes() || c.pgType == "text" || strings.HasPrefix(c.pgType, "character") {
		return v
	}
	return v + "::" + c.pgType
}

func (w *writer) close() { w.conn.Release() }

// upsertSQL builds the statement that moves staged rows [$1, $2] into the
// target and counts the rows inserted and updated, and the statements
// that find lookup misses.
func upsertSQL(t *table, stage string) (string, []string) {
	var cols, exprs, sets, olds, news, missing []string
	joins := ""
	for i, c := range t.cols {
		q := pgIdent(c.name)
		cols = append(cols, q)
		v := fmt.Sprintf("s.c%d", i)
		switch {
		case c.lookup != nil:
			alias := fmt.Sprintf("l%d", i)
			joins += fmt.Sprintf(" LEFT JOIN %s %s ON %s.%s = %s::%s", c.lookup.table, alias, alias, c.lookup.key, v, c.lookup.keyType)
			exprs = append(exprs, alias+"."+c.lookup.column)
			missing = append(missing, fmt.Sprintf(`SELECT s._row FROM %s s WHERE s._row BETWEEN $1 AND $2 AND %s IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM %s l WHERE l.%s = %s::%s)`, stage, v, c.lookup.table, c.lookup.key, v, c.lookup.keyType))
		default:
			exprs = append(exprs, valueExpr(i, &c))
		}
		if i > 0 {
			sets = append(sets, q+" = EXCLUDED."+q)
			olds, news = append(olds, "t."+q), append(news, "EXCLUDED."+q)
		}
	}
	conflict := "DO NOTHING"
	if len(sets) > 0 {
		// Rows already equal are not rewritten: no dead tuple, no WAL, and
		// they do not count as written.
		conflict = fmt.Sprintf("DO UPDATE SET %s WHERE (%s) IS DISTINCT FROM (%s)",
			strings.Join(sets, ", "), strings.Join(olds, ", "), strings.Join(news, ", "))
	}
	return fmt.Sprintf(`WITH up AS (
		INSERT INTO %s AS t (%s)
		SELECT %s FROM %s s%s WHERE s._row BETWEEN $1 AND $2
		ON CONFLICT (%s) %s
		RETURNING (t.xmax = 0) AS inserted)
	SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`,
		t.target, strings.Join(cols, ", "), strings.Join(exprs, ", "), stage, joins, cols[0], conflict), missing
}

// outcome is what writing (part of) a batch did.
type outcome struct {
	inserted, updated, present int64
	failures                   []failure
}

func (o *outcome) add(p outcome) {
	o.inserted += p.inserted
	o.updated += p.updated
	o.present += p.present
	o.failures = append(o.failures, p.failures...)
}

// checkpoint says where a batch leaves its key range, to be recorded with
// it; nil for batches asked for by key.
type checkpoint struct {
	rg   *keyRange
	done bool
}

// batchWrite is one batch on its way in.
type batchWrite struct {
	w      *writer
	b      batch
	staged []bool // by row: false when refused before staging
	out    outcome
}

// write writes a batch in one transaction with its failed rows and its
// checkpoint; clear also forgets earlier failures of the rows written. A
// dry run rolls it all back and only reports.
func (w *writer) write(ctx context.Context, b batch, cp *checkpoint, clear, dry bool) (outcome, error) {
	bw := &batchWrite{w: w, b: b, staged: make([]bool, len(b.rows))}
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return outcome{}, fmt.Errorf("write %s: %w", w.t.name, err)
	}
	defer tx.Rollback(ctx)
	direct := false
	if len(b.rows) > 0 && w.direct.worthTrying() {
		if direct, err = bw.tryDirect(ctx, tx); err != nil {
			return outcome{}, fmt.Errorf("write %s: copy: %w", w.t.name, err)
		}
	}
	if len(b.rows) > 0 && !direct {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{w.stage}, w.stageColumns(), &copySource{bw: bw, i: -1}); err != nil {
			return outcome{}, fmt.Errorf("write %s: copy to staging: %w", w.t.name, err)
		}
		if err := bw.apply(ctx, tx, 0, len(b.rows)-1); err != nil {
			return outcome{}, fmt.Errorf("write %s: %w", w.t.name, err)
		}
		w.direct.staged(bw.out, len(b.rows))
	}
	if err := w.ledger.recordFailures(ctx, tx, w.t.name, bw.out.failures); err != nil {
		return outcome{}, fmt.Errorf("write %s: ledger: %w", w.t.name, err)
	}
	if clear {
		if err := w.ledger.clearFailures(ctx, tx, w.t.name, bw.succeeded()); err != nil {
			return outcome{}, fmt.Errorf("write %s: ledger: %w", w.t.name, err)
		}
	}
	if cp != nil && len(b.rows) > 0 {
		if err := w.ledger.advance(ctx, tx, w.t.name, cp.rg, b.lastKey(), len(b.rows), cp.done); err != nil {
			return outcome{}, fmt.Errorf("write %s: checkpoint: %w", w.t.name, err)
		}
	}
	if dry {
		return bw.out, nil // the deferred rollback undoes it all
	}
	if err := tx.Commit(ctx); err != nil {
		return outcome{}, fmt.Errorf("write %s: commit: %w", w.t.name, err)
	}
	return bw.out, nil
}

func (w *writer) stageColumns() []string {
	cols := []string{"_row"}
	for i := range w.t.cols {
		cols = append(cols, fmt.Sprintf("c%d", i))
	}
	return cols
}

// copySource feeds a batch to COPY, refusing (as failures) values that no
// text column can hold, which would otherwise fail the whole COPY.
type copySource struct {
	bw   *batchWrite
	i    int
	vals []any
}

func (s *copySource) Next() bool {
	for s.i++; s.i < len(s.bw.b.rows); s.i++ {
		if reason := s.bw.w.refuse(s.bw.b.rows[s.i]); reason != "" {
			s.bw.out.failures = append(s.bw.out.failures, s.bw.w.failed(s.bw.b.rows[s.i], reason))
			continue
		}
		s.bw.staged[s.i] = true
		return true
	}
	return false
}

func (s *copySource) Values() ([]any, error) {
	row := s.bw.b.rows[s.i]
	if s.vals == nil {
		s.vals = make([]any, len(row.vals)+1)
	}
	s.vals[0] = int32(s.i)
	for j, v := range row.vals {
		if v == nil {
			s.vals[j+1] = nil
		} else {
			s.vals[j+1] = v
		}
	}
	return s.vals, nil
}

func (s *copySource) Err() error { return nil }

// refuse says why a row cannot even be staged, or "".
func (w *writer) refuse(r sourceRow) string {
	for j, v := range r.vals {
		if v == nil || w.t.cols[j].isBytes() {
			continue
		}
		switch {
		case !utf8.Valid(v):
			return "column " + w.t.cols[j].name + ": not valid UTF-8 text"
		case bytes.IndexByte(v, 0) >= 0:
			return "column " + w.t.cols[j].name + ": contains a NUL byte, which PostgreSQL text cannot hold"
		}
	}
	return ""
}

// failed is a failure for a row, with its payload redacted.
func (w *writer) failed(r sourceRow, reason string) failure {
	payload := map[string]any{}
	for j, c := range w.t.cols {
		v := r.vals[j]
		switch {
		case v == nil:
			payload[c.name] = nil
		case c.redacted:
			payload[c.name] = "<redacted>"
		case c.isBytes():
			payload[c.name] = fmt.Sprintf("<%d bytes>", len(v))
		default:
			payload[c.name] = string(v)
		}
	}
	return failure{key: string(r.key), reason: reason, payload: payload}
}

// succeeded lists the keys of rows written or already present.
func (bw *batchWrite) succeeded() []string {
	failed := map[string]bool{}
	for _, f := range bw.out.failures {
		failed[f.key] = true
	}
	var keys []string
	for _, r := range bw.b.rows {
		if k := string(r.key); !failed[k] {
			keys = append(keys, k)
		}
	}
	return keys
}

// apply moves staged rows [lo, hi] into the target inside a savepoint. If
// the target refuses one of them, it retries each half, down to single
// rows, which then fail alone with their reason.
func (bw *batchWrite) apply(ctx context.Context, tx pgx.Tx, lo, hi int) error {
	n := 0
	for i := lo; i <= hi; i++ {
		if bw.staged[i] {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	part, err := bw.applyRange(ctx, sp, lo, hi, int64(n))
	if err == nil {
		if err = sp.Commit(ctx); err == nil {
			bw.out.add(part)
			return nil
		}
	}
	sp.Rollback(ctx)
	if !rowError(err) {
		return err
	}
	if lo == hi {
		bw.out.failures = append(bw.out.failures, bw.w.failed(bw.b.rows[lo], bw.reason(ctx, tx, lo, err)))
		return nil
	}
	mid := lo + (hi-lo)/2
	if err := bw.apply(ctx, tx, lo, mid); err != nil {
		return err
	}
	return bw.apply(ctx, tx, mid+1, hi)
}

func (bw *batchWrite) applyRange(ctx context.Context, tx pgx.Tx, lo, hi int, staged int64) (outcome, error) {
	var o outcome
	for i, q := range bw.w.missing {
		rows, err := tx.Query(ctx, q, lo, hi)
		if err != nil {
			return o, err
		}
		gone, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return o, err
		}
		if len(gone) == 0 {
			continue
		}
		c := bw.w.lookupColumn(i)
		for _, r := range gone {
			o.failures = append(o.failures, bw.w.failed(bw.b.rows[r],
				fmt.Sprintf("column %s: no row in %s with %s equal to the source value", c.name, c.cfg.Lookup.Table, c.cfg.Lookup.Key)))
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+bw.w.stage+" WHERE _row = ANY($1)", gone); err != nil {
			return o, err
		}
		staged -= int64(len(gone))
	}
	if err := tx.QueryRow(ctx, bw.w.upsert, lo, hi).Scan(&o.inserted, &o.updated); err != nil {
		return o, err
	}
	o.present = staged - o.inserted - o.updated
	return o, nil
}

// lookupColumn is the column of the i-th lookup.
func (w *writer) lookupColumn(i int) *column {
	for j := range w.t.cols {
		if w.t.cols[j].lookup != nil {
			if i == 0 {
				return &w.t.cols[j]
			}
			i--
		}
	}
	return nil
}

// rowError reports whether err is about the data of some row (data
// exceptions, integrity violations, errors raised by triggers), so that
// retrying without the row can succeed; anything else stops the run.
func rowError(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	return strings.HasPrefix(pg.Code, "22") || strings.HasPrefix(pg.Code, "23") || pg.Code == "P0001"
}

// reason explains a single row's failure. For a bad value it finds the
// column by storing the row's values one at a time into a probe table of
// the target's types, since PostgreSQL's message names the value (which
// may be protected) but not the column.
func (bw *batchWrite) reason(ctx context.Context, tx pgx.Tx, row int, cause error) string {
	var pg *pgconn.PgError
	errors.As(cause, &pg)
	msg := pg.Message
	if !strings.HasPrefix(pg.Code, "22") {
		return msg
	}
	probe := "strangler_probe_" + strings.TrimPrefix(bw.w.stage, "strangler_stage_")
	var defs []string
	for i, c := range bw.w.t.cols {
		typ := c.pgType
		if c.lookup != nil {
			typ = c.lookup.keyType
		}
		defs = append(defs, fmt.Sprintf("c%d %s", i, typ))
	}
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+probe+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return withoutValues(msg)
	}
	for i, c := range bw.w.t.cols {
		expr := valueExpr(i, &c)
		if c.lookup != nil {
			expr = fmt.Sprintf("s.c%d::%s", i, c.lookup.keyType)
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			break
		}
		_, err = sp.Exec(ctx, fmt.Sprintf("INSERT INTO %s (c%d) SELECT %s FROM %s s WHERE s._row = $1", probe, i, expr, bw.w.stage), row)
		sp.Rollback(ctx)
		if errors.As(err, &pg) {
			return "column " + c.name + ": " + withoutValues(pg.Message)
		}
	}
	return withoutValues(msg)
}

var quoted = regexp.MustCompile(`:?\s*"[^"]*"`)

// withoutValues drops the quoted values from a data exception's message:
// `invalid input syntax for type date: "0000-00-00"` becomes
// `invalid input syntax for type date`, so reasons group and redacted
// values stay out of the ledger.
func withoutValues(msg string) string {
	return strings.TrimSpace(quoted.ReplaceAllString(msg, ""))
}
