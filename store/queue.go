package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"strangler/domain"
)

const summaryColumns = `id, route, resource_view, resource, method, primary_side, state, seq,
	status, attempts, last_error, next_attempt_at,
	lease_owner, lease_until, created_at, updated_at, stands_for`

const repairColumns = summaryColumns + `, ` + payloadColumns + `, primary_idempotent`

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

func scanSummary(sc scanner, extra ...any) (domain.RepairSummary, error) {
	var standsFor sql.NullString
	return scanSummaryOf(sc, &standsFor, extra...)
}

// scanSummaryOf is scanSummary that leaves the stands_for column in
// standsFor, NULL for a row of an earlier release not filled yet.
func scanSummaryOf(sc scanner, standsFor *sql.NullString, extra ...any) (domain.RepairSummary, error) {
	var r domain.RepairSummary
	var seq, status sql.NullInt64
	var owner sql.NullString
	dest := append([]any{&r.ID, &r.Route, &r.Resource, &r.ResourceKey, &r.Method, &r.Primary,
		&r.State, &seq, &status, &r.Attempts,
		&r.LastError, scanTime(&r.NextAttemptAt), &owner, scanTime(&r.LeaseUntil),
		scanTime(&r.CreatedAt), scanTime(&r.UpdatedAt), standsFor}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return r, err
	}
	r.Seq, r.Outcome.Status, r.LeaseOwner = seq.Int64, int(status.Int64), owner.String
	r.StandsFor = standsForRead(r.Method, *standsFor, nil)
	return r, nil
}

// scanRepair scans repairColumns. A payload that cannot be decrypted is
// PayloadErr, not an error: it must not hold up the other rows.
func (s *Store) scanRepair(sc scanner) (domain.Repair, error) {
	var p payload
	var sealed bool
	var idempotent sql.NullBool
	var standsFor sql.NullString
	var r domain.Repair
	var err error
	if r.RepairSummary, err = scanSummaryOf(sc, &standsFor, &p.target, &p.header, &p.body, &p.location, &p.primaryID, &sealed, &idempotent); err != nil {
		return r, err
	}
	r.PrimaryIdempotent = domain.Journaled{Value: idempotent.Bool, Known: idempotent.Valid}
	if p, err = s.open(r.ID, p, sealed); err != nil {
		r.PayloadErr = err
		return r, nil
	}
	if r.Header, err = decodeHeader(p.header); err != nil {
		return r, fmt.Errorf("repair %s: %w", r.ID, err)
	}
	r.Target, r.Outcome.Location, r.Outcome.PrimaryID = p.target, p.location, p.primaryID
	if len(p.body) > 0 {
		r.Body = p.body
	}
	if !standsFor.Valid {
		// Journaled by an earlier release, not filled yet
		// (fillStandsFor): read from its request.
		r.StandsFor = standsForRead(r.Method, standsFor, &p)
	}
	return r, nil
}

// claimable selects, from the repairs table named as from, the repairs a
// worker may take now: pending, due and not under a live lease at
// leaseNow (SQL on the lease clock, see leaseAt),
// and the head of their resource, that is no pending or dead write to
// the same resource has a lower sequence number. A dead head therefore
// holds back its own resource and nothing else.
//
// On PostgreSQL the dialect adds FOR UPDATE SKIP LOCKED: a row another
// replica's claim has locked is skipped, and one whose claim committed
// meanwhile is re-checked against the lease condition, so no repair is
// claimed twice while its lease runs. Heads can only move forward (a new
// write gets a higher number than every committed one, see nextSeq), so a
// slightly old view of the other rows only ever holds a repair back.
func claimable(from, leaseNow string) string {
	return `
	SELECT r.id FROM ` + from + `
	WHERE r.state = 'pending' AND r.next_attempt_at <= ` + leaseNow + `
		AND (r.lease_until IS NULL OR r.lease_until <= ` + leaseNow + `)
		AND NOT EXISTS (` + earlierWrite("r.resource", "r.seq") + `)`
}

// earlierWrite selects a pending or dead write to resource with a
// sequence number below seq (SQL expressions): while there is one, the
// write numbered seq is not its resource's head.
func earlierWrite(resource, seq string) string {
	return `SELECT 1 FROM strangler_repairs e
		WHERE e.resource = ` + resource + ` AND e.state IN ('pending', 'dead') AND e.seq < ` + seq
}

// ClaimRepairs leases up to limit repairs due now to owner for lease
// (both on the store's lease clock, see leaseAt) and returns them, lowest
// sequence number first, with header and body. Use an owner that is
// unique per worker (host, process and worker number): a worker's own
// live leases are not handed to it again.
func (s *Store) ClaimRepairs(ctx context.Context, owner string, limit int, lease time.Duration) ([]domain.Repair, error) {
	out, err := s.claim(ctx, owner, lease, func(leaseNow string) string {
		return `WITH picked AS MATERIALIZED (` + claimable(s.dialect.pendingInOrder, leaseNow) + `
			ORDER BY r.seq LIMIT $4 ` + s.dialect.skipLocked + `)`
	}, limitOr(limit, 10, 1000))
	if err != nil {
		return nil, fmt.Errorf("store: claim repairs: %w", err)
	}
	return out, nil
}

// ClaimRepair leases the one repair id to owner, as ClaimRepairs would: it
// lets the facade deliver a write inline, right after the primary answered,
// without overtaking an earlier write to the same resource. ok is false if
// the repair is not claimable now; the queue will deliver it.
func (s *Store) ClaimRepair(ctx context.Context, id, owner string, lease time.Duration) (r domain.Repair, ok bool, err error) {
	out, err := s.claim(ctx, owner, lease, func(leaseNow string) string {
		return `WITH picked AS MATERIALIZED (` + claimable("strangler_repairs r", leaseNow) + `
			AND r.id = $4 ` + s.dialect.skipLocked + `)`
	}, id)
	if err != nil {
		return domain.Repair{}, false, fmt.Errorf("store: claim repair %s: %w", id, err)
	}
	if len(out) == 0 {
		return domain.Repair{}, false, nil
	}
	return out[0], true, nil
}

// ClaimNextRepair leases to owner, as ClaimRepairs would, the head of the
// resource the write id is to: its next write once id settled. It finds
// the head through the resource's own writes (an index lookup), where
// ClaimRepairs walks the pending queue in order: with a backlog of writes
// to one resource, that walk passed over every write queued behind the
// head on each claim, a drain quadratic in the backlog. ok is false if
// the head is not claimable now (not due, leased, dead) or there is none.
func (s *Store) ClaimNextRepair(ctx context.Context, id, owner string, lease time.Duration) (r domain.Repair, ok bool, err error) {
	out, err := s.claim(ctx, owner, lease, func(leaseNow string) string {
		return `WITH picked AS MATERIALIZED (` + claimable("strangler_repairs r", leaseNow) + `
			AND r.id = (SELECT h.id FROM strangler_repairs h
				WHERE h.resource = (SELECT d.resource FROM strangler_repairs d WHERE d.id = $4)
					AND h.state IN ('pending', 'dead')
				ORDER BY h.seq LIMIT 1) ` + s.dialect.skipLocked + `)`
	}, id)
	if err != nil {
		return domain.Repair{}, false, fmt.Errorf("store: claim the repair after %s: %w", id, err)
	}
	if len(out) == 0 {
		return domain.Repair{}, false, nil
	}
	return out[0], true, nil
}

// claim leases the rows the picked CTE (given $4 arg and the lease
// clock's now) selects. The CTE is materialised so that it runs, and
// locks, exactly once.
func (s *Store) claim(ctx context.Context, owner string, lease time.Duration, picked func(leaseNow string) string, arg any) ([]domain.Repair, error) {
	if owner == "" {
		return nil, fmt.Errorf("no owner")
	}
	if lease <= 0 {
		return nil, fmt.Errorf("lease %v is not positive", lease)
	}
	updated := s.clock()
	leaseNow, nowArg := s.leaseAt(1, 0)
	until, untilArg := s.leaseAt(3, lease)
	var out []domain.Repair
	err := s.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, picked(leaseNow)+`
			UPDATE strangler_repairs
			SET lease_owner = $2, lease_until = `+until+`, updated_at = $5
			WHERE id IN (SELECT id FROM picked)
			RETURNING `+repairColumns,
			nowArg, clean(owner), untilArg, arg, s.ts(updated))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := s.scanRepair(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// CompleteRepair marks a claimed repair done: the secondary applied it,
// so what it kept of the request is erased. It is ErrLeaseLost unless
// owner still holds it.
func (s *Store) CompleteRepair(ctx context.Context, id, owner string) error {
	if err := s.submit(ctx, s.completeOp(ctx, id, owner)); err != nil {
		return fmt.Errorf("store: complete repair %s: %w", id, err)
	}
	return nil
}

// completeOp is the write that marks id done for owner: alone its own
// statement, in a batch a row of the batch's (completions). No client
// waits for it, and the write stays leased to owner until it commits, so
// it may wait a little to share a commit (lazy).
func (s *Store) completeOp(ctx context.Context, id, owner string) *batchOp {
	row := []any{id, clean(owner), s.ts(s.clock())}
	return &batchOp{lazy: true, rows: s.completions, row: row, fn: func(tx *sql.Tx) error {
		return s.settleIn(ctx, tx, id, owner, s.completions.statements[0], row...)
	}}
}

// completeStatement marks n delivered writes done, given for each its id,
// its owner and the time: one that owner no longer holds is left as it
// is. Only SQLite's batches complete more than one at a time.
func (s *Store) completeStatement(n int) string {
	set := moveDeliver.set() + `, ` + s.erase() + `, lease_owner = NULL, lease_until = NULL`
	if n == 1 {
		return `UPDATE strangler_repairs SET ` + set + `, updated_at = $3
			WHERE id = $1 AND ` + moveDeliver.where() + ` AND lease_owner = $2`
	}
	// Each row's owner and time picked by its id: a list of ids finds the
	// rows by their key, where a join with a VALUES list may not.
	var ids, owners, times strings.Builder
	for r := range n {
		id, owner, at := 3*r+1, 3*r+2, 3*r+3
		if r > 0 {
			ids.WriteString(", ")
		}
		fmt.Fprintf(&ids, "$%d", id)
		fmt.Fprintf(&owners, " WHEN $%d THEN $%d", id, owner)
		fmt.Fprintf(&times, " WHEN $%d THEN $%d", id, at)
	}
	return `UPDATE strangler_repairs SET ` + set + `, updated_at = CASE id` + times.String() + ` END
		WHERE id IN (` + ids.String() + `) AND ` + moveDeliver.where() + `
			AND lease_owner = CASE id` + owners.String() + ` END`
}

// maxReason bounds a stored failure reason; a backend's error page can be
// long.
const maxReason = 2000

// FailRepair records a failed delivery of a claimed repair: one more
// attempt, reason as the last error, due again after retryAfter on the
// store's clock (see leaseAt), lease released.
// With dead set it becomes dead instead, keeping its payload and holding
// back later writes to its resource until an operator acts. It is
// ErrLeaseLost unless owner still holds it.
func (s *Store) FailRepair(ctx context.Context, id, owner, reason string, retryAfter time.Duration, dead bool) error {
	state := domain.StatePending // due again after retryAfter
	if dead {
		state = moveGiveUp.to
	}
	reason = clean(reason)
	if len(reason) > maxReason {
		reason = clean(reason[:maxReason]) // may have cut a rune in half
	}
	due, dueArg := s.leaseAt(5, retryAfter)
	err := s.settle(ctx, id, owner, `
		UPDATE strangler_repairs
		SET state = $3, attempts = attempts + 1, last_error = $4, next_attempt_at = `+due+`,
			lease_owner = NULL, lease_until = NULL, updated_at = $6
		WHERE id = $1 AND `+moveGiveUp.where()+` AND lease_owner = $2`,
		id, clean(owner), state, reason, dueArg, s.ts(s.clock()))
	if err != nil {
		return fmt.Errorf("store: fail repair %s: %w", id, err)
	}
	return nil
}

// settle runs an UPDATE that finishes owner's claim on id, and tells a lost
// lease from an unknown id. No client waits for it, and the write stays
// leased to owner until it commits, so it may wait a little to share a
// commit (writeLazy).
func (s *Store) settle(ctx context.Context, id, owner, query string, args ...any) error {
	return s.writeLazy(ctx, func(tx *sql.Tx) error { return s.settleIn(ctx, tx, id, owner, query, args...) })
}

func (s *Store) settleIn(ctx context.Context, tx *sql.Tx, id, owner, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n > 0 {
		return nil
	}
	var st domain.State
	var holder sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT state, lease_owner FROM strangler_repairs WHERE id = $1`, id).Scan(&st, &holder)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if st != domain.StatePending {
		return fmt.Errorf("it is %s now: %w", st, ErrLeaseLost)
	}
	if holder.Valid {
		return fmt.Errorf("%s holds it now: %w", holder.String, ErrLeaseLost)
	}
	return fmt.Errorf("%s does not hold it: %w", owner, ErrLeaseLost)
}
