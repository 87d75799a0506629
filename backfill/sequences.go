package backfill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SequenceMove is a target sequence a run moved forward past the values
// it copied into the column that owns it, so that the modern service's
// next INSERT without the column draws a value no copied row has.
type SequenceMove struct {
	Sequence string `json:"sequence"`
	Column   string `json:"column"`
	// From is the sequence's last value before, To after: the largest
	// value of the column.
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// resetSequences moves each sequence owned by a copied column of t (serial,
// identity BY DEFAULT) forward to the column's largest value, as pgloader's
// "reset sequences" does after a load, and records each move in t's
// report. It never moves one back: the modern service may be writing
// while the backfill runs and have drawn values past the copied ones.
// Sequences: leave in the file, or a dry run, leaves them alone.
func (r *runner) resetSequences(ctx context.Context, t *table) error {
	if r.opts.DryRun || r.cfg.Sequences == "leave" {
		return nil
	}
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	type owned struct {
		seq, col  string
		increment int64
	}
	var seqs []owned
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
		seqs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (owned, error) {
			var o owned
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
		var move *SequenceMove
		err := r.bounded(ctx, func(ctx context.Context) (err error) {
			// A writer's transaction that drew a value holds the lock to
			// its end; while the ALTER waits for it, every nextval queues
			// behind the ALTER. So it waits a second at a time, letting
			// the service's inserts through between tries.
			for {
				move, err = r.moveSequence(ctx, t, s.seq, s.col, s.increment)
				var pg *pgconn.PgError
				if !errors.As(err, &pg) || pg.Code != "55P03" {
					return err
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("%w (a transaction of another session held it until batch_timeout)", err)
				case <-time.After(sequenceLockWait):
				}
			}
		})
		if err != nil {
			return fmt.Errorf("sequence %s of column %s: %w (sequences: leave in the backfill section leaves the target's sequences alone)", s.seq, s.col, err)
		}
		if move != nil {
			r.stats[t.name].addSequenceMove(*move)
			r.opts.Log.Info("backfill moved a sequence past the values copied", "table", t.name,
				"sequence", move.Sequence, "from", move.From, "to", move.To)
		}
	}
	return nil
}

// moveSequence sets sequence seq, owned by column col of t, to the
// column's largest value if that is past the sequence's last value; nil
// when it is not. PostgreSQL cannot LOCK a sequence, and nextval is not
// transactional, so a setval(GREATEST(…)) races a writer drawing values
// between the read and the set, and could move the sequence back past
// them. ALTER SEQUENCE takes a lock that nextval's conflicts with (SHARE
// ROW EXCLUSIVE against ROW EXCLUSIVE), held to the end of the
// transaction: setting the increment it already has changes nothing
// else, and while it is held no value is drawn, so the last value read
// is the last handed out.
func (r *runner) moveSequence(ctx context.Context, t *table, seq, col string, increment int64) (*SequenceMove, error) {
	tx, err := r.dst.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = "+strconv.Itoa(int(sequenceLockWait.Milliseconds()))); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "ALTER SEQUENCE "+seq+" INCREMENT BY "+strconv.FormatInt(increment, 10)); err != nil {
		return nil, err
	}
	var last int64
	var called bool
	if err := tx.QueryRow(ctx, "SELECT last_value, is_called FROM "+seq).Scan(&last, &called); err != nil {
		return nil, err
	}
	var top *int64
	if err := tx.QueryRow(ctx, "SELECT max("+pgIdent(col)+")::bigint FROM "+t.target).Scan(&top); err != nil {
		return nil, err
	}
	// A sequence never called hands out last_value next; one called, the
	// value after it.
	if top == nil || *top < last || *top == last && called {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, "SELECT setval($1::regclass, $2)", seq, *top); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return &SequenceMove{Sequence: seq, Column: col, From: last, To: *top}, nil
}

// sequenceLockWait is how long one try to take a sequence's lock waits,
// and the pause before the next.
const sequenceLockWait = time.Second

// addSequenceMove records a sequence the run moved.
func (s *tableStats) addSequenceMove(m SequenceMove) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.sequences, func(o SequenceMove) bool { return o.Sequence == m.Sequence })
	if i < 0 {
		s.sequences = append(s.sequences, m)
		return
	}
	// Moved again (a re-run in the same report, a second worker): from the
	// first value to the last.
	s.sequences[i].To = m.To
}
