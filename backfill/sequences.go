package backfill

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"strangler/config"
)

// SequenceMove is a target sequence a run moved forward past the values
// of the column that owns it, so that the modern service's next INSERT
// without the column draws a value no copied row has.
type SequenceMove struct {
	Sequence string `json:"sequence"`
	Column   string `json:"column"`
	// BeforeCopy is a move before the table's copy, to the largest value
	// the source has for the column; otherwise the move is after it, to
	// the largest value the column has.
	BeforeCopy bool `json:"before_copy,omitempty"`
	// From is the sequence's last value before, To after.
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// ownedSequence is a target sequence owned by a copied column.
type ownedSequence struct {
	seq, col  string
	increment int64
}

// advanceSequences moves each sequence owned by a copied column of t
// (serial, identity BY DEFAULT) forward to the largest value the source
// has for the column, before t's copy starts: the modern service may be
// writing while the backfill runs, and a value it drew below the legacy
// keys would collide with a legacy row copied later (its insert fails,
// or the copy's upsert overwrites its row with legacy's).
func (r *runner) advanceSequences(ctx context.Context, t *table) error {
	return r.moveSequences(ctx, t, true)
}

// resetSequences moves each sequence owned by a copied column of t
// forward to the column's largest value after t's copy, as pgloader's
// "reset sequences" does after a load, and records each move in t's
// report: legacy may have written rows past the values advanceSequences
// read.
func (r *runner) resetSequences(ctx context.Context, t *table) error {
	return r.moveSequences(ctx, t, false)
}

// moveSequences moves t's sequences forward, never back: the modern
// service may have drawn values past the copied ones. Sequences: leave in
// the file, or a dry run, leaves them alone.
func (r *runner) moveSequences(ctx context.Context, t *table, before bool) error {
	if r.opts.DryRun || r.cfg.Sequences == "leave" {
		return nil
	}
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	var seqs []ownedSequence
	err := r.bounded(ctx, func(ctx context.Context) error {
		// A serial column owns its sequence (deptype a), an identity column
		// its internal one (i).
		rows, err := r.dst.Query(ctx, `SELECT d.objid::regclass::text, a.attname, s.seqincrement
			FROM pg_depend d
			JOIN pg_sequence s ON s.seqrelid = d.objid
			JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
			WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
				AND d.deptype IN ('a', 'i') AND d.refobjid = $1::regclass AND a.attname = ANY($2)
			ORDER BY a.attname`, t.target, names)
		if err != nil {
			return err
		}
		seqs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ownedSequence, error) {
			var o ownedSequence
			return o, row.Scan(&o.seq, &o.col, &o.increment)
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("sequences of %s: %w", t.target, err)
	}
	for _, s := range seqs {
		if s.increment < 0 {
			continue // counts down: "forward" would be below the smallest value
		}
		var top *int64
		if before {
			top, err = r.sourceTop(ctx, t, s.col)
			if err != nil {
				return fmt.Errorf("the largest value in the source for column %s: %w", s.col, err)
			}
			if top == nil {
				continue // no rows, or values that are not integers
			}
		}
		move, err := r.moveSequenceWaiting(ctx, t, s, top)
		if err != nil {
			return fmt.Errorf("sequence %s of column %s: %w (sequences: leave in the backfill section leaves the target's sequences alone)", s.seq, s.col, err)
		}
		if move != nil {
			move.BeforeCopy = before
			r.stats[t.name].addSequenceMove(*move)
			r.opts.Log.Info("backfill moved a sequence forward", "table", t.name,
				"sequence", move.Sequence, "from", move.From, "to", move.To, "before_copy", before)
		}
	}
	return nil
}

// sourceTop reads the largest value the source has for target column
// col of t (its source expression: the source key, a source column…);
// nil when the source has none, it is not an integer, or a lookup
// translates it (the target's value is another table's).
func (r *runner) sourceTop(ctx context.Context, t *table, col string) (*int64, error) {
	i := slices.IndexFunc(t.cols, func(c column) bool { return c.name == col })
	if t.cols[i].lookup != nil {
		return nil, nil
	}
	var top sql.NullString
	err := r.src.QueryRowContext(ctx, "SELECT MAX("+t.cols[i].sourceExpr+") FROM "+t.source).Scan(&top)
	if err != nil || !top.Valid {
		return nil, err
	}
	n, err := strconv.ParseInt(top.String, 10, 64)
	if err != nil {
		return nil, nil
	}
	return &n, nil
}

// moveSequenceWaiting is moveSequence, tried until batch_timeout. A
// writer's transaction that drew a value holds the sequence's lock to
// its end; while the ALTER waits for it, every nextval queues behind the
// ALTER. So each try waits at most a second, letting the service's
// inserts through between tries.
func (r *runner) moveSequenceWaiting(ctx context.Context, t *table, s ownedSequence, top *int64) (*SequenceMove, error) {
	d := cmp.Or(time.Duration(r.cfg.BatchTimeout), config.DefaultBatchTimeout)
	deadline := time.Now().Add(d)
	for {
		var move *SequenceMove
		err := r.bounded(ctx, func(ctx context.Context) (err error) {
			move, err = r.moveSequence(ctx, t, s, top)
			return err
		})
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || pg.Code != "55P03" {
			return move, err
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("another session's transaction held its lock past batch_timeout (%s)", d)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(sequenceLockWait):
		}
	}
}

// moveSequence sets sequence s to top (nil: the largest value of the
// column owning it) if that is past the sequence's last value; nil when
// it is not. PostgreSQL cannot LOCK a sequence, and nextval is not
// transactional, so a setval(GREATEST(…)) races a writer drawing values
// between the read and the set, and could move the sequence back past
// them. ALTER SEQUENCE takes a lock that nextval's conflicts with (SHARE
// ROW EXCLUSIVE against ROW EXCLUSIVE), held to the end of the
// transaction: setting the increment it already has changes nothing
// else, and while it is held no value is drawn, so the last value read
// is the last handed out.
func (r *runner) moveSequence(ctx context.Context, t *table, s ownedSequence, top *int64) (*SequenceMove, error) {
	tx, err := r.dst.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = "+strconv.Itoa(int(sequenceLockWait.Milliseconds()))); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "ALTER SEQUENCE "+s.seq+" INCREMENT BY "+strconv.FormatInt(s.increment, 10)); err != nil {
		return nil, err
	}
	var last int64
	var called bool
	if err := tx.QueryRow(ctx, "SELECT last_value, is_called FROM "+s.seq).Scan(&last, &called); err != nil {
		return nil, err
	}
	if top == nil {
		if err := tx.QueryRow(ctx, "SELECT max("+pgIdent(s.col)+")::bigint FROM "+t.target).Scan(&top); err != nil {
			return nil, err
		}
	}
	// A sequence never called hands out last_value next; one called, the
	// value after it.
	if top == nil || *top < last || *top == last && called {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, "SELECT setval($1::regclass, $2)", s.seq, *top); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return &SequenceMove{Sequence: s.seq, Column: s.col, From: last, To: *top}, nil
}

// sequenceLockWait is how long one try to take a sequence's lock waits,
// and the pause before the next.
const sequenceLockWait = time.Second

// addSequenceMove records a sequence the run moved.
func (s *tableStats) addSequenceMove(m SequenceMove) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.sequences, func(o SequenceMove) bool { return o.Sequence == m.Sequence && o.BeforeCopy == m.BeforeCopy })
	if i < 0 {
		s.sequences = append(s.sequences, m)
		return
	}
	// Moved again (a re-run in the same report, a second worker): from the
	// first value to the last.
	s.sequences[i].To = m.To
}
