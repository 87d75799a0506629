package backfill

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"strangler/internal/migrate"
)

// The ledger lives in the target database, next to the rows it accounts
// for, so a batch, its checkpoint and its failed rows commit together:
// after a crash the ledger says exactly what was written.
//
// Its tables are versioned migrations/NNNN_name.sql files, applied by the
// project's one migration runner and recorded in
// strangler_backfill_migrations.
//
//go:embed migrations/*.sql
var ledgerMigrations embed.FS

// ledger reads and writes the backfill's bookkeeping in the target
// database. A dry run's ledger writes nothing.
type ledger struct {
	db    *pgxpool.Pool
	runID int64
	dry   bool
	// owner, for a worker of a shared run, is the worker's name: it writes
	// only ranges it holds the lease of.
	owner *string
	// exists is false when a dry run finds no ledger: nothing was copied.
	exists bool
}

// openLedger creates the ledger's tables if needed and upgrades those of
// an older version in place; a dry run only looks, and refuses an older
// ledger it may not upgrade. The caller holds the lock.
func openLedger(ctx context.Context, db *pgxpool.Pool, dry bool) (*ledger, error) {
	l := &ledger{db: db, dry: dry}
	var keyType *string
	var versioned bool
	err := db.QueryRow(ctx, `SELECT to_regclass('strangler_backfill_checkpoints') IS NOT NULL,
		(SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema()
			AND table_name = 'strangler_backfill_failures' AND column_name = 'source_key'),
		to_regclass('strangler_backfill_migrations') IS NOT NULL`).Scan(&l.exists, &keyType, &versioned)
	if err != nil {
		return nil, ledgerError("opening the ledger", err)
	}
	var applied int
	if versioned {
		if err := db.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM strangler_backfill_migrations").Scan(&applied); err != nil {
			return nil, ledgerError("opening the ledger", err)
		}
	}
	list, err := ledgerMigrationList()
	if err != nil {
		return nil, err
	}
	switch {
	case dry && keyType != nil && *keyType == "text":
		return nil, errors.New("ledger: it was written by an older version, which kept keys as text; run once without --dry-run to upgrade it")
	case dry && l.exists && applied < list[len(list)-1].Version:
		// Its tables lack what this release reads (the ranges' plans).
		return nil, errors.New("ledger: it was written by an older version; run once without --dry-run to upgrade it")
	case dry:
		return l, nil
	}
	if err := migrateLedger(ctx, db); err != nil {
		return nil, ledgerError("opening the ledger", err)
	}
	l.exists = true
	return l, nil
}

// ledgerMigrationList is the ledger's migrations, in order.
func ledgerMigrationList() ([]migrate.Migration, error) {
	dir, err := fs.Sub(ledgerMigrations, "migrations")
	if err != nil {
		return nil, err
	}
	return migrate.Load(dir)
}

// migrateLedger creates the ledger's tables or brings them up to date,
// in one transaction.
func migrateLedger(ctx context.Context, pool *pgxpool.Pool) error {
	list, err := ledgerMigrationList()
	if err != nil {
		return err
	}
	// The runner speaks database/sql; closing this view leaves the pool open.
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	_, err = migrate.Schema{
		Migrations: list,
		Bootstrap: `CREATE TABLE IF NOT EXISTS strangler_backfill_migrations (
			version integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`,
		Applied: "SELECT version FROM strangler_backfill_migrations",
		Record: func(ctx context.Context, ex migrate.Execer, m migrate.Migration) error {
			_, err := ex.ExecContext(ctx, "INSERT INTO strangler_backfill_migrations (version) VALUES ($1)", m.Version)
			return err
		},
		// The caller holds the backfill's lock already; this one keeps
		// the migration itself safe without relying on that.
		TxLock: "SELECT pg_advisory_xact_lock(hashtext('strangler_backfill_migrate'), hashtext(current_schema()))",
	}.Run(ctx, db)
	return err
}

// targetLost is err, met while the run was doing what outside a table's
// work (planning, taking its lock, opening the ledger, recording its
// start or its end), said as the lost connection to the target it is, when it is one:
// the driver's error alone ("unexpected EOF") names neither the database
// nor the step. Other errors are returned as they are.
func targetLost(what string, err error) error {
	if err == nil || !connectionLost(err) {
		return err
	}
	return fmt.Errorf("target: %s: %w (the connection to the target database broke or could not be made; "+
		"run again once it answers: a re-run resumes from the checkpoints)", what, err)
}

// ledgerError is err, met while doing what with the ledger: a lost
// connection said so (targetLost), any other error as the ledger's.
func ledgerError(what string, err error) error {
	if lost := targetLost(what, err); lost != err {
		return lost
	}
	return fmt.Errorf("ledger: %w", err)
}

// runLock is the advisory lock that keeps two backfills off one ledger
// (one schema of the target database), held by a session, so a killed
// process releases it: exclusive for a plain run, shared by the workers
// of a shared run (lockShared), which a plain run then cannot start
// beside.
type runLock struct {
	db     *pgxpool.Pool
	shared bool
	mu     sync.Mutex
	conn   *pgxpool.Conn
}

// lock takes the lock of a plain run.
func lock(ctx context.Context, db *pgxpool.Pool) (*runLock, error) {
	l := &runLock{db: db}
	return l, l.take(ctx)
}

// lockShared takes the lock of a worker of a shared run.
func lockShared(ctx context.Context, db *pgxpool.Pool) (*runLock, error) {
	l := &runLock{db: db, shared: true}
	return l, l.take(ctx)
}

func (l *runLock) take(ctx context.Context) (err error) {
	defer func() { err = targetLost("taking the run's lock", err) }()
	conn, err := l.db.Acquire(ctx)
	if err != nil {
		return err
	}
	// The lock's session idles the whole run: a server that ends
	// sessions idle past idle_session_timeout (PostgreSQL 14 on) would
	// end it, and let the lock go with it, for another backfill to take.
	// This session alone is kept; a server without the setting has
	// nothing to change.
	if _, err := conn.Exec(ctx, "SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'idle_session_timeout'"); err != nil {
		conn.Release()
		return err
	}
	try := "SELECT pg_try_advisory_lock(hashtext('strangler_backfill'), hashtext(current_schema()))"
	if l.shared {
		try = "SELECT pg_try_advisory_lock_shared(hashtext('strangler_backfill'), hashtext(current_schema()))"
	}
	var got bool
	if err := conn.QueryRow(ctx, try).Scan(&got); err != nil {
		conn.Release()
		return err
	}
	switch {
	case !got && l.shared:
		conn.Release()
		return errors.New("a backfill that is not a worker of a shared run is running against this target database and schema; wait for it or stop it")
	case !got:
		conn.Release()
		return errors.New("another backfill is running against this target database and schema (its advisory lock is held); wait for it or stop it")
	}
	l.conn = conn
	return nil
}

// hold makes sure the lock is still held after a lost connection to the
// target: the lock's session may have gone with it, and then the lock is
// taken again on a new one, refused (an error that is no lost connection)
// if another backfill took it meanwhile.
func (l *runLock) hold(ctx context.Context) error {
	if l == nil {
		return nil // a dry run takes no lock
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		if l.conn.Ping(ctx) == nil {
			return nil
		}
		l.conn.Release()
		l.conn = nil
	}
	return l.take(ctx)
}

// release lets the lock go.
func (l *runLock) release(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return // lost with its session, and not taken again
	}
	unlock := "SELECT pg_advisory_unlock(hashtext('strangler_backfill'), hashtext(current_schema()))"
	if l.shared {
		unlock = "SELECT pg_advisory_unlock_shared(hashtext('strangler_backfill'), hashtext(current_schema()))"
	}
	l.conn.Exec(ctx, unlock)
	l.conn.Release()
}

// startRun records a run. Runs still marked running died without saying
// so: the caller holds the lock, so none of them is alive. Nor is any
// worker, whose leases' records (strangler_backfill_leases) only it
// reads, while it runs (ledger.committed): they are dropped, where every
// claim of a range by every worker kept its row for good. Workers
// that run again lease under new numbers.
// A worker of a shared run (name set) records its own run under the
// shared name, and leaves the others' alone.
func (l *ledger) startRun(ctx context.Context, mode string, tables []string, name string) error {
	if l.dry {
		return nil
	}
	if l.owner == nil {
		for _, q := range []string{"UPDATE strangler_backfill_runs SET status = 'interrupted', finished_at = now() WHERE status = 'running'",
			"DELETE FROM strangler_backfill_leases"} {
			if _, err := l.db.Exec(ctx, q); err != nil {
				return ledgerError("recording the run's start", err)
			}
		}
	}
	err := l.db.QueryRow(ctx, "INSERT INTO strangler_backfill_runs (status, mode, tables, name) VALUES ('running', $1, $2, NULLIF($3, '')) RETURNING id",
		mode, tables, name).Scan(&l.runID)
	if err != nil {
		return ledgerError("recording the run's start", err)
	}
	return nil
}

// trimLeases is what a worker does as it ends: when it is the last of
// its run (no other backfill holds the ledger's lock), it drops the
// lease records (strangler_backfill_leases) that no worker reads again,
// as a plain run does as it starts. A worker that takes the lock after
// the look leases under numbers past the sequence's, read before it,
// and its records stay.
func (l *ledger) trimLeases(ctx context.Context) error {
	if l.dry || l.owner == nil {
		return nil
	}
	var upTo int64
	var others bool
	err := l.db.QueryRow(ctx, "SELECT last_value FROM strangler_backfill_lease_no").Scan(&upTo)
	if err == nil {
		err = l.db.QueryRow(ctx, `SELECT count(*) > 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid = hashtext('strangler_backfill')::oid AND objid = hashtext(current_schema())::oid AND objsubid = 2`).Scan(&others)
	}
	if err == nil && !others {
		_, err = l.db.Exec(ctx, "DELETE FROM strangler_backfill_leases WHERE lease_no <= $1", upTo)
	}
	return err
}

// finishRun records how a run ended, with its report.
func (l *ledger) finishRun(ctx context.Context, status string, report *Report, runErr error) error {
	if l.dry || l.runID == 0 {
		return nil
	}
	var errText *string
	if runErr != nil {
		s := runErr.Error()
		errText = &s
	}
	js, _ := json.Marshal(report)
	_, err := l.db.Exec(ctx, "UPDATE strangler_backfill_runs SET status = $2, finished_at = now(), report = $3, error = $4 WHERE id = $1",
		l.runID, status, js, errText)
	return err
}

// keyRange is one key range of a table and how far it got. Keys are the
// bytes MySQL sends; nil means none (an empty key is not nil).
type keyRange struct {
	no int
	// start is the key the range begins after; nil: the first key.
	start []byte
	// end is the range's last key; nil: no end.
	end []byte
	// last is the last key copied; nil: nothing yet.
	last []byte
	done bool
	// lease, for a worker, is the lease it copies the range under
	// (lease_no, one per claim of the range).
	lease int64
	// stale is set when the range was cut for another plan of its table
	// (table.cutFor): another source, key, target table or mapping, whose
	// checkpoints say nothing of this plan's rows.
	stale bool
}

// started reports whether an earlier run copied some of the range.
func (r keyRange) started() bool { return r.last != nil || r.done }

// cursor is where the range's next batch starts after.
func (r keyRange) cursor() []byte {
	if r.last != nil {
		return r.last
	}
	return r.start
}

// ranges returns t's key ranges, in order; none before a first run.
func (l *ledger) ranges(ctx context.Context, t *table) ([]keyRange, error) {
	if !l.exists {
		return nil, nil
	}
	rows, err := l.db.Query(ctx, `SELECT range_no, range_end, last_key, done, coalesce(cut_for <> $2, false)
		FROM strangler_backfill_checkpoints WHERE table_name = $1 ORDER BY range_no`, t.name, t.cutFor())
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keyRange, error) {
		var k keyRange
		return k, r.Scan(&k.no, &k.end, &k.last, &k.done, &k.stale)
	})
	for i := 1; i < len(rs); i++ {
		rs[i].start = rs[i-1].end
	}
	return rs, err
}

// logStaleRanges says that t's ranges, cut for another plan of it, are
// dropped and the table copied from its start.
func logStaleRanges(log *slog.Logger, t *table) {
	log.Warn("backfill checkpoints were recorded for another source, key, target or mapping; copying the table from its start", "table", t.name)
}

// setRanges records t's key ranges by their ends, the last one nil, in
// place of any it had.
func (l *ledger) setRanges(ctx context.Context, t *table, ends [][]byte) ([]keyRange, error) {
	rs := make([]keyRange, len(ends))
	for i, end := range ends {
		rs[i] = keyRange{no: i, end: end}
		if i > 0 {
			rs[i].start = ends[i-1]
		}
	}
	if l.dry {
		return rs, nil
	}
	b := &pgx.Batch{}
	b.Queue("DELETE FROM strangler_backfill_checkpoints WHERE table_name = $1", t.name)
	for _, r := range rs {
		b.Queue("INSERT INTO strangler_backfill_checkpoints (table_name, range_no, range_end, run_id, cut_for) VALUES ($1, $2, $3, $4, $5)",
			t.name, r.no, r.end, l.runID, t.cutFor())
	}
	if err := l.db.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return rs, nil
}

// advance moves a range's checkpoint past a batch, inside the batch's
// transaction. A worker's batch commits only under the lease it copies
// the range under, and records its last key as that lease's (committed).
func (l *ledger) advance(ctx context.Context, tx pgx.Tx, table string, r *keyRange, last []byte, rows int, done bool) error {
	if l.dry {
		return nil
	}
	var moved bool
	err := tx.QueryRow(ctx, `WITH a AS (UPDATE strangler_backfill_checkpoints SET last_key = $3, rows_done = rows_done + $4,
			done = $5, run_id = $6, updated_at = now() WHERE table_name = $1 AND range_no = $2
			AND ($7::bigint IS NULL OR lease_no = $7) RETURNING 1),
		l AS (INSERT INTO strangler_backfill_leases (lease_no, last_key) SELECT $7, $3 FROM a WHERE $7::bigint IS NOT NULL
			ON CONFLICT (lease_no) DO UPDATE SET last_key = EXCLUDED.last_key)
		SELECT EXISTS (SELECT 1 FROM a)`,
		table, r.no, last, rows, done, l.runID, l.lease(r)).Scan(&moved)
	if err == nil && !moved && l.owner != nil {
		return errLeaseLost
	}
	return err
}

// lease is the lease a worker holds range r under, which its writes to
// the range are fenced by; nil for a plain run, which holds the ledger.
func (l *ledger) lease(r *keyRange) *int64 {
	if l.owner == nil {
		return nil
	}
	return &r.lease
}

// committed reports whether a batch of range r ending on key last, whose
// COMMIT's answer was lost, committed. A worker's did if the last key its
// lease committed is the batch's: only the lease's own copy writes that,
// where the range's checkpoint may be another lease's by then (whoever
// took the range over went on after the batch, or copied the same rows
// again from before it, ending on the same key). A plain run's did if
// the range's checkpoint is the batch's last key, which only the run
// writes.
func (l *ledger) committed(ctx context.Context, table string, r keyRange, last []byte) (bool, error) {
	if l.dry {
		return false, nil // nothing was written
	}
	var yes bool
	var err error
	if l.owner != nil {
		err = l.db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM strangler_backfill_leases WHERE lease_no = $1 AND last_key = $2)",
			r.lease, last).Scan(&yes)
	} else {
		err = l.db.QueryRow(ctx, "SELECT coalesce(last_key = $3, false) FROM strangler_backfill_checkpoints WHERE table_name = $1 AND range_no = $2",
			table, r.no, last).Scan(&yes)
	}
	if err != nil {
		return false, fmt.Errorf("ledger: %w", err)
	}
	return yes, nil
}

// markDone records that a range has no rows left.
func (l *ledger) markDone(ctx context.Context, table string, r *keyRange) error {
	if l.dry {
		return nil
	}
	_, err := l.db.Exec(ctx, `UPDATE strangler_backfill_checkpoints SET done = true, lease_owner = NULL, lease_until = NULL, updated_at = now()
		WHERE table_name = $1 AND range_no = $2 AND ($3::bigint IS NULL OR lease_no = $3)`, table, r.no, l.lease(r))
	return err
}

// failure is a row that could not be written, and why.
type failure struct {
	key     []byte
	reason  string
	payload map[string]any
	// shown, when set, is the row's key as reports show it, for a modern
	// row with no source key (one that could not be deleted); such a
	// failure is reported, not kept in the ledger.
	shown string
}

// recordFailures adds or updates failed rows, inside the batch's
// transaction.
func (l *ledger) recordFailures(ctx context.Context, tx pgx.Tx, table string, fs []failure) error {
	if len(fs) == 0 || l.dry {
		return nil
	}
	b := &pgx.Batch{}
	for _, f := range fs {
		payload, _ := json.Marshal(f.payload)
		b.Queue(`INSERT INTO strangler_backfill_failures (table_name, source_key, reason, payload, run_id)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (table_name, source_key) DO UPDATE SET reason = EXCLUDED.reason, payload = EXCLUDED.payload,
				attempts = strangler_backfill_failures.attempts + 1, last_failed_at = now(), run_id = EXCLUDED.run_id`,
			table, f.key, f.reason, payload, l.runID)
	}
	return tx.SendBatch(ctx, b).Close()
}

// clearFailures forgets earlier failures of rows now written or gone,
// inside the batch's transaction.
func (l *ledger) clearFailures(ctx context.Context, tx pgx.Tx, table string, keys [][]byte) error {
	if len(keys) == 0 || l.dry {
		return nil
	}
	_, err := tx.Exec(ctx, "DELETE FROM strangler_backfill_failures WHERE table_name = $1 AND source_key = ANY($2)", table, keys)
	return err
}

// hasFailures reports whether the table has failed rows on record.
func (l *ledger) hasFailures(ctx context.Context, table string) (bool, error) {
	if !l.exists {
		return false, nil
	}
	var any bool
	err := l.db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM strangler_backfill_failures WHERE table_name = $1)", table).Scan(&any)
	return any, err
}

// failedKeys pages through a table's failed keys, in byte order;
// earlierOnly leaves out those that failed in this run.
func (l *ledger) failedKeys(ctx context.Context, table string, after []byte, limit int, earlierOnly bool) ([][]byte, error) {
	if !l.exists {
		return nil, nil
	}
	rows, err := l.db.Query(ctx, `SELECT source_key FROM strangler_backfill_failures
		WHERE table_name = $1 AND ($2::bytea IS NULL OR source_key > $2) AND NOT ($4 AND run_id IS NOT DISTINCT FROM $5)
		ORDER BY source_key LIMIT $3`, table, after, limit, earlierOnly, l.runID)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[[]byte])
}

// countFailed counts which of keys the ledger records as failed.
func (l *ledger) countFailed(ctx context.Context, table string, keys [][]byte) (int64, error) {
	if !l.exists || len(keys) == 0 {
		return 0, nil
	}
	var n int64
	err := l.db.QueryRow(ctx, "SELECT count(*) FROM strangler_backfill_failures WHERE table_name = $1 AND source_key = ANY($2)",
		table, keys).Scan(&n)
	return n, err
}

// recordDeletes notes target rows deleted because their legacy row is
// gone, inside the transaction that deletes them.
func (l *ledger) recordDeletes(ctx context.Context, tx pgx.Tx, table string, keys []string) error {
	if len(keys) == 0 || l.dry {
		return nil
	}
	_, err := tx.Exec(ctx, "INSERT INTO strangler_backfill_deletes (run_id, table_name, target_key) SELECT $1, $2, unnest($3::text[])",
		l.runID, table, keys)
	return err
}

// deletedThisRun is what the ledger's deletes say this run deleted from
// table: how many rows, and the first samples of their keys in order.
func (l *ledger) deletedThisRun(ctx context.Context, table string, samples int) (n int64, keys []string, err error) {
	err = l.db.QueryRow(ctx, `SELECT count(*), coalesce((array_agg(target_key ORDER BY target_key))[1:$3], '{}')
		FROM strangler_backfill_deletes WHERE run_id = $1 AND table_name = $2`, l.runID, table, samples).Scan(&n, &keys)
	return n, keys, err
}
