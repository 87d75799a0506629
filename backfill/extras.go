package backfill

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Rows in modern whose legacy row is gone are found the other way round
// from the rest: legacy's keys are read again, key only, into a temporary
// table, and the target's keys anti-joined with it. Only when modern has
// more keyed rows than the comparison matched, so a table without extra
// rows costs nothing more.

// seenTable is the comparer's temporary table of legacy keys.
func (c *comparer) seenTable() string { return fmt.Sprintf("strangler_seen_%d", c.t.index) }

// targetKeyStaged is the target key of row t as a key is staged, text
// comparing by its bytes.
func targetKeyStaged(t *table) string {
	key := "t." + pgIdent(t.cols[0].name)
	if t.cols[0].isBytes() {
		return key
	}
	return byteText(key)
}

// shownKey is the target key of row t as reports show keys.
func shownKey(t *table) string {
	key := "t." + pgIdent(t.cols[0].name)
	if t.cols[0].isBytes() && t.key == binaryKey {
		return "'0x' || encode(" + key + ", 'hex')"
	}
	return key + "::text"
}

// loadKeys reads every legacy key into the seen table, then looks up in
// legacy again the keys of the target rows that are in none of them.
// The read takes a while, and a row written to both sides behind it (a
// dual write) is in legacy though not among the keys read: --propagate-
// deletes deleted it from modern, and verify counted it extra.
func (c *comparer) loadKeys(ctx context.Context, limit int, pace *pacer) error {
	seen := c.seenTable()
	if _, err := c.conn.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+seen+" (k "+c.t.cols[0].stageType()+"); TRUNCATE "+seen); err != nil {
		return err
	}
	rd := &reader{db: c.src, t: c.t, limit: limit, pace: pace, keysOnly: true}
	read := func(ctx context.Context, out chan<- batch) error { return rd.keyset(ctx, keyRange{}, out) }
	if err := pipeline(ctx, read, func(b batch) error { return c.addSeen(ctx, b) }); err != nil {
		return err
	}
	c.queries.Add(1)
	rows, err := c.conn.Query(ctx, fmt.Sprintf("SELECT %s FROM %s t WHERE %s", targetKeyStaged(c.t), c.t.target, c.extraWhere()))
	if err != nil {
		return err
	}
	gone, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return err
	}
	// The keys legacy returns go into the seen table, not those asked
	// for: a key MySQL's collation matches without being byte-equal
	// (abc for ABC) stays gone.
	read = func(ctx context.Context, out chan<- batch) error {
		return rd.byValues(ctx, c.t.sourceKey, c.t.keyType, gone, out)
	}
	if err := pipeline(ctx, read, func(b batch) error { return c.addSeen(ctx, b) }); err != nil {
		return err
	}
	_, err = c.conn.Exec(ctx, "ANALYZE "+seen)
	return err
}

// addSeen copies a batch of legacy keys into the seen table.
func (c *comparer) addSeen(ctx context.Context, b batch) error {
	c.queries.Add(2)
	k := &c.t.cols[0]
	var keys [][]byte
	for _, r := range b.rows {
		// A time the target cannot take is in no target row, and
		// casting it would fail extraWhere.
		if !c.t.exactKey || !k.timeKey() || validTime(k.srcType, r.key) {
			keys = append(keys, r.key)
		}
	}
	_, err := c.conn.CopyFrom(ctx, pgx.Identifier{c.seenTable()}, []string{"k"}, pgx.CopyFromSlice(len(keys), func(i int) ([]any, error) {
		return []any{k.encode(keys[i])}, nil
	}))
	return err
}

// extraWhere selects target rows t whose key legacy lacks.
func (c *comparer) extraWhere() string {
	k := &c.t.cols[0]
	match := k.keyText("k.k") + " = " + targetKeyStaged(c.t)
	if c.t.exactKey && k.timeKey() {
		// By value: a time's text is not the target's (see exactKey);
		// loadKeys leaves out the keys the target cannot take.
		match = "t." + pgIdent(k.name) + " " + c.t.keyEq + " " + k.valueExpr("k.k")
	}
	return fmt.Sprintf("t.%s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s k WHERE %s)", pgIdent(k.name), c.seenTable(), match)
}

// extras counts the rows modern has and legacy lacks, naming the first
// few in key order.
func (c *comparer) extras(ctx context.Context, limit int, pace *pacer, samples int) (int64, []string, error) {
	if err := c.loadKeys(ctx, limit, pace); err != nil {
		return 0, nil, err
	}
	var n int64
	var keys []string
	c.queries.Add(1)
	err := c.conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), coalesce((array_agg(%s ORDER BY t.%s))[1:$1], '{}') FROM %s t WHERE %s`,
		shownKey(c.t), pgIdent(c.t.cols[0].name), c.t.target, c.extraWhere()), samples).Scan(&n, &keys)
	return n, keys, err
}

// deleted is what deleting modern's extra rows did.
type deleted struct {
	n    int64
	keys []string // the first few
	// refused are rows the target would not let go (a foreign key that
	// restricts, a trigger), with the reason.
	refused []failure
}

// deleteExtras deletes the rows modern has and legacy lacks, recording
// each in the ledger's deletes in the same transaction; a dry run only
// counts them. If the target refuses to delete one, each is deleted on
// its own and the refused ones reported.
func (c *comparer) deleteExtras(ctx context.Context, l *ledger, limit int, pace *pacer, samples int, dry bool) (deleted, error) {
	var out deleted
	if err := c.loadKeys(ctx, limit, pace); err != nil {
		return out, err
	}
	tx, err := c.conn.Begin(ctx)
	if err != nil {
		return out, err
	}
	defer tx.Rollback(ctx)
	sp, err := tx.Begin(ctx)
	if err != nil {
		return out, err
	}
	audit, args := ", audit AS (INSERT INTO strangler_backfill_deletes (run_id, table_name, target_key) SELECT $2, $3, k FROM gone)",
		[]any{samples, l.runID, c.t.name}
	if dry {
		audit, args = "", args[:1]
	}
	c.queries.Add(1)
	err = sp.QueryRow(ctx, fmt.Sprintf(`WITH gone AS (DELETE FROM %s t WHERE %s RETURNING %s AS k)%s
		SELECT count(*), coalesce((array_agg(k ORDER BY k))[1:$1], '{}') FROM gone`,
		c.t.target, c.extraWhere(), shownKey(c.t), audit), args...).Scan(&out.n, &out.keys)
	if err == nil {
		err = sp.Commit(ctx)
	} else {
		sp.Rollback(ctx)
	}
	if rowError(err) {
		out, err = c.deleteEach(ctx, tx, l, samples, dry)
	}
	if err != nil || dry {
		return out, err
	}
	return out, tx.Commit(ctx)
}

// deleteEach deletes the extra rows one at a time, each in a savepoint.
func (c *comparer) deleteEach(ctx context.Context, tx pgx.Tx, l *ledger, samples int, dry bool) (deleted, error) {
	var out deleted
	rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s, %s FROM %s t WHERE %s", targetKeyStaged(c.t), shownKey(c.t), c.t.target, c.extraWhere()))
	if err != nil {
		return out, err
	}
	type extra struct {
		key   any
		shown string
	}
	var all []extra
	var e extra
	if _, err := pgx.ForEachRow(rows, []any{&e.key, &e.shown}, func() error { all = append(all, e); return nil }); err != nil {
		return out, err
	}
	k := &c.t.cols[0]
	del := fmt.Sprintf("DELETE FROM %s t WHERE t.%s %s %s", c.t.target, pgIdent(k.name), c.t.keyEq, k.valueExpr("$1::"+k.stageType()))
	for _, e := range all {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return out, err
		}
		_, err = sp.Exec(ctx, del, e.key)
		if err == nil && !dry {
			err = l.recordDeletes(ctx, sp, c.t.name, []string{e.shown})
		}
		if err == nil {
			err = sp.Commit(ctx)
		} else {
			sp.Rollback(ctx)
		}
		switch {
		case rowError(err):
			out.refused = append(out.refused, failure{shown: e.shown, reason: "could not delete: " + describeErr(c.t, err)})
		case err != nil:
			return out, err
		default:
			out.n++
			if len(out.keys) < samples {
				out.keys = append(out.keys, e.shown)
			}
		}
	}
	return out, nil
}
