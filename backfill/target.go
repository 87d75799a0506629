package backfill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
// the same are left alone (and counted as already present), and a value
// the target refuses fails a statement that can be retried on halves of
// the batch until the bad rows stand alone: they go to the ledger with
// their reason while the rest are written.
type writer struct {
	t      *table
	conn   *pgxpool.Conn
	ledger *ledger
	stage  string
	upsert string
	// checks find staged rows that must not be upserted: lookup misses,
	// and keys the target would store differently or let collide.
	checks []stageCheck
	// direct decides when to try the direct path (see direct.go).
	direct directCopy
}

// stageCheck is a query returning the staged rows [$1, $2] that fail a
// check, each with a detail for its reason.
type stageCheck struct {
	sql    string
	reason func(detail *string) string
}

// newWriter prepares a writer for t; tryDirect says the rows are probably
// new, so the direct path is worth a try.
func newWriter(ctx context.Context, db *pgxpool.Pool, t *table, l *ledger, tryDirect bool) (*writer, error) {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", t.name, err)
	}
	w := &writer{t: t, conn: conn, ledger: l, stage: fmt.Sprintf("strangler_stage_%d", t.index)}
	if err := createStage(ctx, conn, w.stage, t, false); err != nil {
		conn.Release()
		return nil, fmt.Errorf("write %s: staging table: %w", t.name, err)
	}
	w.upsert, w.checks = upsertSQL(t, w.stage)
	w.direct = newDirectCopy(t, tryDirect)
	return w, nil
}

// createStage creates a temporary staging table for t's rows: _row numbers
// them in their batch, _bad (for comparing) names a column whose value was
// refused before staging. ON COMMIT DELETE ROWS empties it after each
// batch; a temporary table is never WAL-logged, so staging costs little.
// hashed stages non-key binary values as their MD5, for comparing.
func createStage(ctx context.Context, conn *pgxpool.Conn, name string, t *table, hashed bool) error {
	defs := []string{"_row int4", "_bad int2"}
	for i, c := range t.cols {
		typ := c.stageType()
		if hashed && i > 0 && c.isBytes() {
			typ = "text"
		}
		defs = append(defs, fmt.Sprintf("c%d %s", i, typ))
	}
	_, err := conn.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+name+" ("+strings.Join(defs, ", ")+") ON COMMIT DELETE ROWS")
	return err
}

func (w *writer) close() { w.conn.Release() }

// upsertSQL builds the statement that moves staged rows [$1, $2] into the
// target and counts the rows inserted and updated, and the checks that
// find rows it must not move.
func upsertSQL(t *table, stage string) (string, []stageCheck) {
	var cols, exprs, sets, same []string
	var checks []stageCheck
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
			reason := fmt.Sprintf("column %s: no row in %s with %s equal to the source value", c.name, c.cfg.Lookup.Table, c.cfg.Lookup.Key)
			checks = append(checks, stageCheck{
				sql: fmt.Sprintf(`SELECT s._row, NULL::text FROM %s s WHERE s._row BETWEEN $1 AND $2 AND %s IS NOT NULL
					AND NOT EXISTS (SELECT 1 FROM %s l WHERE l.%s = %s::%s)`, stage, v, c.lookup.table, c.lookup.key, v, c.lookup.keyType),
				reason: func(*string) string { return reason },
			})
		default:
			exprs = append(exprs, c.valueExpr(v))
		}
		if i > 0 {
			sets = append(sets, q+" = EXCLUDED."+q)
			same = append(same, c.same("t."+q, "EXCLUDED."+q))
		}
	}
	if !t.exactKey {
		checks = append(checks, keyCheck(t, stage))
	}
	conflict := "DO NOTHING"
	if len(sets) > 0 {
		// Rows already the same are not rewritten: no dead tuple, no WAL,
		// and they do not count as written.
		conflict = fmt.Sprintf("DO UPDATE SET %s WHERE NOT (%s)", strings.Join(sets, ", "), strings.Join(same, " AND "))
	}
	return fmt.Sprintf(`WITH up AS (
		INSERT INTO %s AS t (%s)
		SELECT %s FROM %s s%s WHERE s._row BETWEEN $1 AND $2
		ON CONFLICT (%s) %s
		RETURNING (t.xmax = 0) AS inserted)
	SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`,
		t.target, strings.Join(cols, ", "), strings.Join(exprs, ", "), stage, joins, cols[0], conflict), checks
}

// keyCheck finds staged rows whose key the target key's type would store
// differently (so the row could never be found by its key again), or
// holds equal to another key without being byte-equal: a key already in
// the target, or one staged earlier in the batch. Upserting them would
// overwrite another row (tag1 over TAG1 in a citext column).
func keyCheck(t *table, stage string) stageCheck {
	k := &t.cols[0]
	key := "t." + pgIdent(k.name)
	c0 := k.keyText("w.c0")
	v := k.valueExpr("s.c0")
	if k.nondeterministic != "" {
		// Staged keys are one key where the target key's collation
		// says so, as its unique index does.
		v = "(" + v + ") COLLATE " + k.nondeterministic
	}
	// The CTEs' names are in strangler's own namespace: a target table
	// named k or w was read as the CTE of that name, and every batch of
	// its table failed.
	q := fmt.Sprintf(`WITH strangler_keys AS (SELECT s._row, s.c0, %[1]s AS v FROM %[2]s s WHERE s._row BETWEEN $1 AND $2),
		strangler_firsts AS (SELECT k.*, first_value(k.c0) OVER (PARTITION BY k.v ORDER BY k._row) AS first FROM strangler_keys k)
	SELECT w._row, CASE WHEN %[7]s IS DISTINCT FROM %[6]s THEN NULL WHEN w.first <> w.c0 THEN w.first
		ELSE (SELECT %[3]s::text FROM %[4]s t WHERE %[3]s %[5]s w.v AND %[8]s <> %[6]s LIMIT 1) END
	FROM strangler_firsts w WHERE %[7]s IS DISTINCT FROM %[6]s OR w.first <> w.c0
		OR EXISTS (SELECT 1 FROM %[4]s t WHERE %[3]s %[5]s w.v AND %[8]s <> %[6]s)`,
		v, stage, key, t.target, t.keyEq, c0, byteText("w.v"), byteText(key))
	return stageCheck{sql: q, reason: func(other *string) string {
		if other == nil {
			return "target key type " + k.typ.full + " would store the key differently"
		}
		return "target key collides with " + *other
	}}
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
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{w.stage}, stageColumns(w.t), &copySource{bw: bw, i: -1}); err != nil {
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
		if err := w.ledger.advance(ctx, tx, w.t.name, cp.rg, b.rows[len(b.rows)-1].key, len(b.rows), cp.done); err != nil {
			return outcome{}, fmt.Errorf("write %s: checkpoint: %w", w.t.name, err)
		}
	}
	if dry {
		return bw.out, nil // the deferred rollback undoes it all
	}
	if err := tx.Commit(ctx); err != nil {
		return outcome{}, &unconfirmed{b: b, out: bw.out, err: fmt.Errorf("write %s: commit: %w", w.t.name, err)}
	}
	return bw.out, nil
}

// stageColumns are the staging table's columns COPY fills.
func stageColumns(t *table) []string {
	cols := []string{"_row", "_bad"}
	for i := range t.cols {
		cols = append(cols, fmt.Sprintf("c%d", i))
	}
	return cols
}

// copySource feeds a batch to COPY, refusing (as failures) values that no
// text column can hold, which would otherwise fail the whole COPY, and
// those the target type would change.
type copySource struct {
	bw   *batchWrite
	i    int
	vals []any
}

func (s *copySource) Next() bool {
	for s.i++; s.i < len(s.bw.b.rows); s.i++ {
		if reason := s.bw.w.t.refuse(s.bw.b.rows[s.i]); reason != "" {
			s.bw.out.failures = append(s.bw.out.failures, s.bw.w.t.failed(s.bw.b.rows[s.i], reason))
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
		s.vals = make([]any, len(row.vals)+2)
	}
	s.vals[0], s.vals[1] = int32(s.i), nil
	for j, v := range row.vals {
		if v == nil {
			s.vals[j+2] = nil
		} else {
			s.vals[j+2] = s.bw.w.t.cols[j].encode(v)
		}
	}
	return s.vals, nil
}

func (s *copySource) Err() error { return nil }

// refuse says why a row cannot be staged as it is, or "".
func (t *table) refuse(r sourceRow) string {
	for j := range t.cols {
		if reason := t.cols[j].refuse(r.vals[j]); reason != "" {
			return "column " + t.cols[j].name + ": " + reason
		}
	}
	return ""
}

// failed is a failure for a row, with its payload redacted.
func (t *table) failed(r sourceRow, reason string) failure {
	payload := map[string]any{}
	for j := range t.cols {
		payload[t.cols[j].name] = t.cols[j].describe(r.vals[j])
	}
	return failure{key: r.key, reason: reason, payload: payload}
}

// describe is a value as the ledger shows it: never a redacted one, and
// in words where jsonb cannot hold it, so that a ledger entry cannot fail
// its batch.
func (c *column) describe(v []byte) any {
	switch {
	case v == nil:
		return nil
	case c.redacted:
		return "<redacted>"
	case c.isBytes() || isBinaryType(c.srcType):
		return fmt.Sprintf("<%d bytes>", len(v))
	case !utf8.Valid(v):
		return fmt.Sprintf("<%d bytes, not valid UTF-8>", len(v))
	case bytes.IndexByte(v, 0) >= 0:
		return fmt.Sprintf("<text of %d bytes with a NUL byte>", len(v))
	}
	return string(v)
}

// succeeded lists the keys of rows written or already present.
func (bw *batchWrite) succeeded() [][]byte {
	failed := map[string]bool{}
	for _, f := range bw.out.failures {
		failed[string(f.key)] = true
	}
	var keys [][]byte
	for _, r := range bw.b.rows {
		if !failed[string(r.key)] {
			keys = append(keys, r.key)
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
		bw.out.failures = append(bw.out.failures, bw.w.t.failed(bw.b.rows[lo], bw.w.reason(ctx, tx, lo, err)))
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
	for _, c := range bw.w.checks {
		rows, err := tx.Query(ctx, c.sql, lo, hi)
		if err != nil {
			return o, err
		}
		var bad []int32
		var detail *string
		var row int32
		_, err = pgx.ForEachRow(rows, []any{&row, &detail}, func() error {
			bad = append(bad, row)
			o.failures = append(o.failures, bw.w.t.failed(bw.b.rows[row], c.reason(detail)))
			return nil
		})
		if err != nil {
			return o, err
		}
		if len(bad) == 0 {
			continue
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+bw.w.stage+" WHERE _row = ANY($1)", bad); err != nil {
			return o, err
		}
		staged -= int64(len(bad))
	}
	if err := tx.QueryRow(ctx, bw.w.upsert, lo, hi).Scan(&o.inserted, &o.updated); err != nil {
		return o, err
	}
	o.present = staged - o.inserted - o.updated
	return o, nil
}

// rowError reports whether err is about the data of some row (a value's
// own fault, integrity violations, errors raised by triggers, a value too
// big for an index: 54000), so that retrying without the row can
// succeed; anything else stops the table.
func rowError(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	return valueError(pg.Code) || strings.HasPrefix(pg.Code, "23") || pg.Code == "P0001" || pg.Code == "54000"
}

// valueError reports whether an error code says a value alone is refused
// by its type: a data exception, a syntax error in a value of a type with
// a syntax of its own (42601: tsvector, tsquery, jsonpath), or a document
// nested deeper than the parser's stack allows (54001: JSON of 100,000
// brackets). Our statements are fixed, so none can come from them.
func valueError(code string) bool {
	return strings.HasPrefix(code, "22") || code == "42601" || code == "54001"
}
