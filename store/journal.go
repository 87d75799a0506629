package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"strangler/domain"
)

// validateIntent refuses an intent the journal could not replay.
func validateIntent(in domain.Intent) error {
	switch {
	case in.ID == "":
		return errors.New("intent has no id")
	case in.Route == "" || in.Resource == "":
		return fmt.Errorf("intent %s has no route or resource", in.ID)
	case in.Method == "" || in.Target == "":
		return fmt.Errorf("intent %s has no method or target", in.ID)
	case in.Primary != domain.Legacy && in.Primary != domain.Modern:
		return fmt.Errorf("intent %s: primary %q is not legacy or modern", in.ID, in.Primary)
	}
	return nil
}

// BeginWrite journals in as sent, before the primary is called. For
// lease (on the store's lease clock, see leaseAt) the caller may still
// record the primary's answer; after that ExpiredWrites reports it. An
// id already journaled is ErrConflict.
func (s *Store) BeginWrite(ctx context.Context, in domain.Intent, lease time.Duration) error {
	if err := validateIntent(in); err != nil {
		return fmt.Errorf("store: begin write: %w", err)
	}
	if !s.hasher.Ready() {
		return fmt.Errorf("store: begin write: %w", errNoHashKey)
	}
	return s.beginWrite(ctx, in, lease, false)
}

// beginWrite journals the validated intent in as BeginWrite does,
// holding its resource's turn if turn says so.
func (s *Store) beginWrite(ctx context.Context, in domain.Intent, lease time.Duration, turn bool) error {
	if err := s.room(ctx, int64(len(in.Body))); err != nil {
		return fmt.Errorf("store: begin write %s: %w", in.ID, err)
	}
	err := s.submit(ctx, s.intentOp(ctx, in, lease, turn))
	if err != nil {
		return fmt.Errorf("store: begin write %s: %w", in.ID, err)
	}
	return nil
}

// BeginWriteTurn is BeginWrite for a write to in's resource that, when
// no other sent write to the resource holds the resource's turn with the
// primary (TakeTurn), takes it in the same statement, saving TakeTurn's
// statement and commit; turn reports whether it did. Call it only while
// holding the process's own turn of the resource, as TakeTurn.
//
// On SQLite, which one process uses, no other write of the process is
// with the primary then, and the write takes the store's turn too
// unless a write the primary left unanswered keeps it (KeepTurn) or
// writes the process before left sent may hold it (TakeTurn). Why:
// should the process die, its turns in memory go with it, and the
// journal still says which write to the resource the primary may have
// had; recovery resends that one before those that waited behind it
// (TakeResendTurn).
func (s *Store) BeginWriteTurn(ctx context.Context, in domain.Intent, lease time.Duration) (bool, error) {
	if s.dialect.name != "postgres" {
		if err := validateIntent(in); err != nil {
			return false, fmt.Errorf("store: begin write: %w", err)
		}
		if !s.hasher.Ready() {
			return false, fmt.Errorf("store: begin write: %w", errNoHashKey)
		}
		if !s.kept.free(s, in.Resource) {
			return false, s.beginWrite(ctx, in, lease, false)
		}
		err := s.beginWrite(ctx, in, lease, true)
		if turnHeld(err) {
			// A write of this process whose outcome the store did not
			// take yet holds it: journaled without it, the write waits
			// (TakeTurn).
			return false, s.beginWrite(ctx, in, lease, false)
		}
		return err == nil, err
	}
	// Declared here, not as a result: the statement's closure takes
	// it, so it is allocated, and SQLite's path need not be.
	var turn bool
	if err := validateIntent(in); err != nil {
		return false, fmt.Errorf("store: begin write: %w", err)
	}
	if !s.hasher.Ready() {
		return false, fmt.Errorf("store: begin write: %w", errNoHashKey)
	}
	row := s.intentRow(in, lease, true)
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, s.intentTurn, row...).Scan(&turn)
		if errors.Is(err, sql.ErrNoRows) {
			// Its id from row, which the closure takes already: taking
			// in would move it to the heap, on SQLite's path too.
			return s.notJournaled(ctx, tx, row[0].(string))
		}
		return err
	})
	if turnHeld(err) {
		// Another replica's write to the resource took the turn as this
		// one was journaled: journaled without it, it waits (TakeTurn).
		return false, s.BeginWrite(ctx, in, lease)
	}
	if err != nil {
		return false, fmt.Errorf("store: begin write %s: %w", in.ID, err)
	}
	return turn, nil
}

// fencedIntentStatement journals one intent as sent on PostgreSQL, as
// intentStatement(1) does, but only under its route's fence: intentRow's
// values, the last of them the fence the write was decided under (0
// journals it without a look at the fence: a write whose flags were not
// read through control.Flags, as tests and tools make). It changes no
// row (returns none) when the route's fence is another one:
// a change of the route committed since the replica read its flags, or
// commits while the statement waits for the row it locks, FOR SHARE, as
// the change's transaction holds it (SetOverride moves the fence before
// it checks the journal). So either the write is journaled before the
// change's check reads the journal, which then sees it, or it is refused
// (notJournaled). With turn, it also gives the write its resource's turn
// when no sent write holds it (and its row asks for it), and returns
// whether it did; a write that holds it and commits while this statement
// runs makes it fail on the turn's index (turnHeld).
func (s *Store) fencedIntentStatement(turn bool) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO strangler_repairs (` + intentColumns + `, state) SELECT `)
	for c := range intentWidth {
		switch {
		case c == intentLeaseColumn:
			b.WriteString(s.leaseParam(c + 1))
		case c == intentTurnColumn && turn:
			fmt.Fprintf(&b, `$%d AND NOT EXISTS (
				SELECT 1 FROM strangler_repairs WHERE resource = $3 AND turn AND state = 'sent')`, c+1)
		default:
			fmt.Fprintf(&b, "$%d", c+1)
		}
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, `'sent'
		WHERE $%[1]d::bigint = 0 OR EXISTS (SELECT FROM strangler_route_fences WHERE route = $2 AND epoch = $%[1]d FOR SHARE)
		ON CONFLICT (id) DO NOTHING`, intentWidth+1)
	if turn {
		b.WriteString(" RETURNING turn")
	}
	return b.String()
}

// notJournaled says why a statement that journals the intent id changed
// no row: the id is journaled already (ErrConflict) or, on PostgreSQL,
// the route's fence is not the one the write was decided under
// (domain.ErrStaleFlags; fencedIntentStatement).
func (s *Store) notJournaled(ctx context.Context, tx *sql.Tx, id string) error {
	if s.dialect.name == "postgres" {
		var journaled bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM strangler_repairs WHERE id = $1)`, id).Scan(&journaled)
		if err != nil {
			return err
		}
		if !journaled {
			return domain.ErrStaleFlags
		}
	}
	return fmt.Errorf("id already journaled: %w", ErrConflict)
}

// intentOp is the write that journals a validated intent as sent, leased
// for lease, holding its resource's turn if turn says so: alone its own
// statement, in a batch a row of the batch's (intents).
func (s *Store) intentOp(ctx context.Context, in domain.Intent, lease time.Duration, turn bool) *batchOp {
	row := s.intentRow(in, lease, turn)
	return &batchOp{rows: s.intents, row: row, fn: func(tx *sql.Tx) error { return s.insertIntentRow(ctx, tx, row) }}
}

// insertIntent journals a validated intent as sent, leased for lease.
func (s *Store) insertIntent(ctx context.Context, tx *sql.Tx, in domain.Intent, lease time.Duration) error {
	return s.insertIntentRow(ctx, tx, s.intentRow(in, lease, false))
}

// insertIntentRow journals one intent, intentRow's values, as sent; an id
// already journaled is ErrConflict.
func (s *Store) insertIntentRow(ctx context.Context, tx *sql.Tx, row []any) error {
	err := s.intents.exec(ctx, tx, row)
	if errors.Is(err, errRowsUnchanged) {
		return s.notJournaled(ctx, tx, row[0].(string))
	}
	return err
}

// intentRow is what journals a validated intent as sent: its values in
// the order of intentColumns, and on PostgreSQL then the fence it was
// decided under.
func (s *Store) intentRow(in domain.Intent, lease time.Duration, turn bool) []any {
	now := s.clock()
	created := in.CreatedAt
	if created.IsZero() {
		created = now
	}
	id := clean(in.ID)
	p, sealed := s.seal(id, payload{target: clean(in.Target), header: encodeHeader(in.Header), body: in.Body})
	row := append(make([]any, 0, intentWidth+1), id, clean(in.Route), s.resourceKey(in.Resource), s.resourceView(in.ResourceView, in.Resource),
		clean(in.Method), p.target, p.header, nonNil(p.body), sealed, in.Primary,
		s.leaseArg(lease), s.ts(created), s.ts(now), turn, in.PrimaryIdempotent, clean(in.StandsFor))
	if s.dialect.name == "postgres" {
		row = append(row, in.Fence) // fencedIntentStatement's
	}
	return row
}

// intentColumns are the columns of an intent's row that intentRow gives
// values for; each row is also in state sent.
const intentColumns = `id, route, resource, resource_view, method, target, header, body, sealed, primary_side,
	lease_until, created_at, updated_at, turn, primary_idempotent, stands_for`

// intentWidth is how many values intentRow gives, intentLeaseColumn
// which of them is the lease (leaseArg's) and intentTurnColumn whether
// the write holds its resource's turn.
const intentWidth, intentLeaseColumn, intentTurnColumn = 16, 10, 13

// intentStatement journals n intents as sent on SQLite, intentRow's
// values for each (PostgreSQL's is fencedIntentStatement). An id already
// journaled (or given twice) is left as it is, so the statement changes
// fewer rows than it was given.
//
// The values are anonymous parameters (?), each used once, in order:
// the driver looks up a named one ($1) by walking the statement's list
// of names, so binding a batch of 128 intents (1,664 values) took time
// quadratic in its size (2% of the facade's CPU under dual writes at
// saturation). The lease is a value there too (leaseParam).
func (s *Store) intentStatement(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO strangler_repairs (` + intentColumns + `, state) VALUES `)
	for r := range n {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + strings.Repeat("?, ", intentWidth) + "'sent')")
	}
	b.WriteString(" ON CONFLICT (id) DO NOTHING")
	return b.String()
}

// RecordOutcome records the primary's answer to a sent write: its
// sender's, or that of a resend of recovery's. A 2xx answer makes it
// pending, due now on the store's clock (see leaseAt), with the next
// sequence number: the secondary gets writes to one resource in
// sequence order. Any other answer skips it. Call it before answering
// the client: once it returns, the write will reach the secondary. If it
// fails, the write stays sent and, once its lease passes, recovery has
// it; it is not lost.
//
// A write no longer sent is ErrInvalidState and stays as it is; one
// that became unknown (its lease passed and recovery gave up on it, or
// an operator stopped its resends) keeps the answer in last_error for
// the operator, who retries it (RetryRepair, refused once a later write
// to its resource was applied) or discards it. Why: unknown, it no
// longer held its resource's turn, so later writes to the resource may
// have gone to the primary since, and been recorded and delivered;
// queued now, this older write would reach the secondary after them,
// and the secondary would end with the older body.
func (s *Store) RecordOutcome(ctx context.Context, id string, o domain.Outcome) error {
	_, err := s.recordOutcome(ctx, id, o, "", 0)
	return err
}

// RecordOutcomeLeased is RecordOutcome that, in the same transaction,
// also leases a write it queues to owner for lease when the write
// is its resource's head, as ClaimRepair would have: owner then delivers
// it from the request it still holds, without claiming it and reading it
// back. leased is false when the write was not queued or an earlier write
// to its resource is still to be delivered; the queue delivers it then.
func (s *Store) RecordOutcomeLeased(ctx context.Context, id string, o domain.Outcome, owner string, lease time.Duration) (leased bool, err error) {
	if owner == "" {
		return false, fmt.Errorf("store: record outcome of %s: no owner", id)
	}
	return s.recordOutcome(ctx, id, o, clean(owner), lease)
}

// recordOutcome is RecordOutcome, leasing a queued head to owner unless
// owner is "".
func (s *Store) recordOutcome(ctx context.Context, id string, o domain.Outcome, owner string, lease time.Duration) (leased bool, err error) {
	st := &s.outcomes
	var key, view string
	if o.Resource != "" {
		key, view = s.resourceKey(o.Resource), s.resourceView(o.ResourceView, o.Resource)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		leased = false // a batch that failed runs this again alone
		now := s.clock()
		if o.Status < 200 || o.Status > 299 {
			// The secondary never gets it: nothing of the request is kept.
			return s.transition(ctx, tx, id, st.skipFrom, st.skip, id, o.Status, s.ts(now))
		}
		resource, shown := key, view
		if resource == "" {
			err := tx.QueryRowContext(ctx, `SELECT resource, resource_view FROM strangler_repairs WHERE id = $1`, id).Scan(&resource, &shown)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			} else if err != nil {
				return err
			}
		}
		if st.queueHead != "" {
			leased, err = s.queueEmbedded(ctx, tx, st, id, o, resource, shown, owner, lease, now)
			return err
		}
		seq, waits, err := s.nextSeq(ctx, tx, resource)
		if err != nil {
			return err
		}
		leaseEnd := s.leaseArg(lease)
		var leaseOwner any // NULL: no lease
		if owner != "" && !waits {
			leaseOwner = owner
		} else {
			leaseEnd = nil // NULL too, in the lease clock's arithmetic
		}
		args := make([]any, 0, 13)
		args = append(args, id, seq, o.Status, s.ts(now), resource, shown, leaseOwner, leaseEnd, s.leaseArg(0))
		err = s.transition(ctx, tx, id, st.queueFrom, st.queue,
			s.sealedOutcomeArgs(args, id, o.Location, o.PrimaryID)...)
		leased = err == nil && leaseOwner != nil
		return err
	})
	if errors.Is(err, ErrInvalidState) {
		s.noteLateAnswer(ctx, id, o.Status)
	}
	if err != nil {
		return false, fmt.Errorf("store: record outcome of %s: %w", id, err)
	}
	return leased, nil
}

// noteLateAnswer keeps, in last_error, the primary's answer status to
// the write id that came once the write was unknown (RecordOutcome), for
// the operator who settles it. Best effort: the answer is in the log too.
func (s *Store) noteLateAnswer(ctx context.Context, id string, status int) {
	why := fmt.Sprintf("the primary answered %d %s once the write was unknown: not queued, as later writes to its resource "+
		"may have reached the secondary since; retry it if the primary applied it, or discard it", status, http.StatusText(status))
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			UPDATE strangler_repairs SET last_error = $2, updated_at = $3
			WHERE id = $1 AND state = 'unknown'`, id, why, s.ts(s.clock()))
		return err
	})
	if err != nil {
		s.log.Warn("noting a late answer of the primary on an unknown write failed", "id", id, "status", status, "error", err)
	}
}

// outcomeStatements are the UPDATEs recordOutcome runs, built once per
// store rather than once a write (their text is the statement cache's
// key, and building it cost a few allocations a dual write).
type outcomeStatements struct {
	// skip settles a write the primary refused: id $1, status $2,
	// updated_at $3.
	skip string
	// queue makes a write the primary applied pending: id $1, seq $2,
	// status $3, updated_at $4, resource $5, resource_view $6,
	// lease_owner $7, lease_until $8 and next_attempt_at $9 (leaseArg's),
	// then sealedOutcomeArgs; on SQLite then the limit of the block
	// seq is from, which it changes nothing unless the sequence's value
	// still is (seqGuard).
	queue string
	// queueHead, on SQLite, is queue for a write that is its resource's
	// head: it changes nothing while an earlier write to the resource is
	// still to be delivered (earlierWrite). "" on PostgreSQL.
	queueHead string
	// skipFrom and queueFrom are the states skip and queue move a write
	// from.
	skipFrom, queueFrom []domain.State
}

func (s *Store) outcomeStatements() outcomeStatements {
	skip, queue := moveSkip, moveQueue
	o := outcomeStatements{
		skip: `
			UPDATE strangler_repairs
			SET ` + skip.set() + `, status = $2, ` + s.erase() + `,
				lease_owner = NULL, lease_until = NULL, updated_at = $3
			WHERE id = $1 AND ` + skip.where(),
		// last_error emptied: what an unanswered resend left there
		// (ResendUnanswered) no longer holds the write.
		queue: `
			UPDATE strangler_repairs
			SET ` + queue.set() + `, seq = $2, status = $3, attempts = 0, last_error = '', ` + sealedOutcome(10) + `,
				next_attempt_at = ` + s.leaseParam(9) + `, lease_owner = $7, lease_until = ` + s.leaseParam(8) + `, updated_at = $4,
				resource = $5, resource_view = $6
			WHERE id = $1 AND ` + queue.where(),
		skipFrom:  skip.from,
		queueFrom: queue.from,
	}
	if s.dialect.name == "sqlite" {
		o.queue += ` AND ` + seqGuard(14)
		o.queueHead = o.queue + ` AND NOT EXISTS (` + earlierWrite("$5", "$2") + `)`
	}
	return o
}

// queueEmbedded is recordOutcome's queueing of a write the primary
// applied, on SQLite: the write numbered from the process's block of
// sequence numbers (seqBlock) and leased to owner (unless "") in one
// statement if it is its resource's head, or else numbered alone.
// nextSeq's statements, which PostgreSQL needs to number the write, are
// not needed here: SQLite runs one transaction at a time, so nothing can
// come between reading the sequence and the UPDATE, which checks itself
// for an earlier write and that the block is still the process's.
func (s *Store) queueEmbedded(ctx context.Context, tx *sql.Tx, st *outcomeStatements, id string, o domain.Outcome, resource, shown, owner string, lease time.Duration, now time.Time) (leased bool, err error) {
	seq, limit, ok := s.seqs.take()
	if !ok {
		if seq, limit, err = s.reserveSeqs(ctx, tx); err != nil {
			return false, err
		}
	}
	args := make([]any, 0, 14)
	args = append(args, id, seq, o.Status, s.ts(now), resource, shown, nil, nil, s.leaseArg(0))
	args = append(s.sealedOutcomeArgs(args, id, o.Location, o.PrimaryID), limit)
	for reserved := false; ; reserved = true {
		if owner != "" {
			args[6], args[7] = owner, s.leaseArg(lease)
			n, err := rowsChanged(tx.ExecContext(ctx, st.queueHead, args...))
			if err != nil || n > 0 {
				return err == nil, err
			}
			// An earlier write to the resource goes first (queued
			// without the lease), or the block is gone.
			args[6], args[7] = nil, nil
		}
		n, err := rowsChanged(tx.ExecContext(ctx, st.queue, args...))
		if err != nil || n > 0 {
			return false, err
		}
		if !reserved {
			// The block may be gone (seqGuard): numbered from a new one,
			// the write is queued unless it is not there to queue.
			moved, err := s.seqMoved(ctx, tx, limit)
			if err != nil {
				return false, err
			}
			if moved {
				if seq, limit, err = s.reserveSeqs(ctx, tx); err != nil {
					return false, err
				}
				args[1], args[len(args)-1] = seq, limit
				continue
			}
		}
		// The write is not there, or not sent: transition says which.
		return false, s.transition(ctx, tx, id, st.queueFrom, st.queue, args...)
	}
}

// nextSeq returns the next sequence number for a write to resource, and
// whether an earlier write to resource is still to be delivered (pending
// or dead), so that the write numbered seq is not its resource's head.
//
// Why the lock: sequence numbers are handed out in one order and become
// visible in commit order, and the two can differ. Were a later write to
// the same resource to commit first, a repair worker could see it as the
// resource's head and send it before the earlier one. Holding a lock on
// the resource from before taking the number until the commit makes
// numbers and commits of one resource happen in the same order, and
// keeps waits true until the commit: no write to the resource can take a
// lower number and commit after the check. Writes to other resources do
// not wait.
func (s *Store) nextSeq(ctx context.Context, tx *sql.Tx, resource string) (seq int64, waits bool, err error) {
	if err := s.lock(ctx, tx, lockResource, resource); err != nil {
		return 0, false, err
	}
	if s.dialect.bumpSeq != "" {
		if _, err := tx.ExecContext(ctx, s.dialect.bumpSeq); err != nil {
			return 0, false, fmt.Errorf("next sequence number: %w", err)
		}
	}
	if err := tx.QueryRowContext(ctx, s.dialect.nextSeq, resource).Scan(&seq, &waits); err != nil {
		return 0, false, fmt.Errorf("next sequence number: %w", err)
	}
	return seq, waits, nil
}

// transition runs an UPDATE of one repair whose WHERE clause requires one
// of the states in from. If it changed nothing, it says why: ErrNotFound,
// or ErrInvalidState naming the state the repair is in.
func (s *Store) transition(ctx context.Context, q querier, id string, from []domain.State, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	var st domain.State
	err = q.QueryRowContext(ctx, `SELECT state FROM strangler_repairs WHERE id = $1`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if slices.Contains(from, st) {
		// The state fits: what refused the move is the write's live
		// lease (DiscardRepair).
		return &StateError{"it is " + string(st) + " and being delivered to the secondary; try again once that delivery ends"}
	}
	return &StateError{"it is " + string(st) + ", not " + statesList(from)}
}

func statesList(states []domain.State) string {
	s := ""
	for i, st := range states {
		switch {
		case i == 0:
		case i == len(states)-1:
			s += " or "
		default:
			s += ", "
		}
		s += string(st)
	}
	return s
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ExpiredWrites returns up to limit writes still sent after their lease
// passed on the store's lease clock (see leaseAt), with their payload:
// the facade that sent them died before recording the primary's answer.
// Mark each with MarkUnknown, or resend it; one whose PayloadErr is set
// cannot be resent.
func (s *Store) ExpiredWrites(ctx context.Context, limit int) ([]domain.Repair, error) {
	leaseNow, nowArg := s.leaseAt(1, 0)
	rows, err := s.db.QueryContext(ctx, `
		SELECT `+repairColumns+`
		FROM strangler_repairs
		WHERE state = 'sent' AND lease_until < `+leaseNow+`
		ORDER BY lease_until, id
		LIMIT $2`, nowArg, limitOr(limit, 100, 1000))
	if err != nil {
		return nil, fmt.Errorf("store: expired writes: %w", err)
	}
	defer rows.Close()
	var out []domain.Repair
	for rows.Next() {
		r, err := s.scanRepair(rows)
		if err != nil {
			return nil, fmt.Errorf("store: expired writes: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: expired writes: %w", err)
	}
	return out, nil
}

// MarkUnknown moves a sent write to unknown: whether the primary applied it
// is not known, so it is never resent without an operator's decision. A
// late answer no longer settles it (RecordOutcome).
func (s *Store) MarkUnknown(ctx context.Context, id string) error {
	now := s.clock()
	err := s.write(ctx, func(tx *sql.Tx) error {
		return s.transition(ctx, tx, id, moveLose.from, `
			UPDATE strangler_repairs
			SET `+moveLose.set()+`, lease_owner = NULL, lease_until = NULL, updated_at = $2
			WHERE id = $1 AND `+moveLose.where(), id, s.ts(now))
	})
	if err != nil {
		return fmt.Errorf("store: mark %s unknown: %w", id, err)
	}
	return nil
}

// ResendUnanswered counts a resend of the sent write id that got no
// answer on the write from its primary (none at all, or one that says
// "later"); why says which, for the operator (last_error). attempts is
// the write's Attempts when recovery found it, so that two replicas'
// recoveries resending it at once count it once. The write stays sent,
// keeping its resource's turn, and recovery finds it again once
// retryAfter has passed on the store's lease clock; with lose it becomes
// unknown instead (MarkUnknown), the attempts kept for the operator. A
// write no longer sent (an operator stopped its resends: StopResend), or
// whose resend another replica counted first, is left as it is: counted
// is false.
func (s *Store) ResendUnanswered(ctx context.Context, id string, attempts int, why string, retryAfter time.Duration, lose bool) (counted bool, err error) {
	until, untilArg := s.leaseAt(5, retryAfter)
	query := `
		UPDATE strangler_repairs
		SET lease_until = ` + until + `, attempts = attempts + 1, last_error = $4, updated_at = $3
		WHERE id = $1 AND state = 'sent' AND attempts = $2`
	args := []any{id, attempts, s.ts(s.clock()), clean(why), untilArg}
	if lose {
		query = `
		UPDATE strangler_repairs
		SET ` + moveLose.set() + `, lease_owner = NULL, lease_until = NULL, attempts = attempts + 1, last_error = $4, updated_at = $3
		WHERE id = $1 AND ` + moveLose.where() + ` AND attempts = $2`
		args = args[:4]
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		n, err := rowsChanged(tx.ExecContext(ctx, query, args...))
		counted = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: count an unanswered resend of %s: %w", id, err)
	}
	return counted, nil
}

// TakeTurn gives the sent write id to resource its turn with the primary
// among the writes of every replica sharing the store, and reports
// whether it has it: false while another sent write to the resource
// holds the turn. The turn ends when the write leaves sent: in the
// transaction that records its outcome (and numbers it), or skips it, or
// marks it unknown, so the next write to the resource goes to the primary
// only once this one has its place in the queue. A replica that dies
// holding a turn holds it until recovery settles its write after its
// lease. A write no longer sent is ErrInvalidState.
//
// Why it is durable (a commit of its own, not synchronous_commit = off):
// a turn lost in a server crash or failover is lost exactly when it is
// needed. The write's outcome cannot be recorded while the server is
// away and is held in memory (dualwrite.Outcomes); once the server is
// back, another replica's write to the resource would find no turn, go
// to the primary after this one and could be recorded before it, and the
// secondary would end with the older body.
//
// The statement is bounded by limit. On SQLite one process uses the
// store and its writes take their turns in the router first; a write
// that had its resource to itself took the store's turn as it was
// journaled (BeginWriteTurn), and one that waited behind another (or
// carries a client's Idempotency-Key) takes it here, once the router
// gave it its turn, so that the store knows which write the primary may
// have had should the process die (TakeResendTurn). It waits, as on
// PostgreSQL, while a write of the process left sent holds the turn
// (KeepTurn, or an outcome the store did not take yet).
//
// After a restart on SQLite, the writes to a resource but creates that
// the process before left sent hold the resource's turn until each has
// left sent (keptTurns.before).
func (s *Store) TakeTurn(ctx context.Context, id, resource string, limit time.Duration) (bool, error) {
	if s.kept != nil {
		if held, err := s.heldFromBefore(ctx, resource, limit); held || err != nil {
			return false, err
		}
	}
	taken, err := s.takeTurn(ctx, id, limit)
	if taken && s.kept != nil {
		// The kept turn has ended, and this write holds the next one
		// until it leaves sent: the resource's later writes need not ask.
		s.kept.drop(resource)
	}
	return taken, err
}

// KeepTurn keeps the turn of the sent write id to resource, whose
// exchange with the primary ended without an outcome (recovery resends
// it), until the write leaves sent, as TakeTurn describes: the resource's
// later writes get no turn until then. The write holds the store's turn
// since it took it; on SQLite the router's turn ends with the exchange,
// so this process's next writes to the resource are journaled without
// the store's and ask for it (TakeTurn).
//
// Why on SQLite too: were the next write to go, it would be applied after
// this one and recorded before it (recovery records this one once its
// lease passes), and the secondary would end with the older body.
func (s *Store) KeepTurn(ctx context.Context, id, resource string, limit time.Duration) error {
	if s.kept != nil {
		s.kept.add(resource)
	}
	return nil
}

// TakeResendTurn gives the sent write id, which recovery is about to send
// to its primary again (its replica died, or left it unanswered), its
// resource's turn with the primary, as TakeTurn: false while another
// sent write to the resource holds it, and it ends when the write leaves
// sent. A write that waited behind another when its replica died never
// had the turn: resent without it, it could be with the primary at once
// with a later write of another replica, be applied in one order and
// recorded in the other. The same on SQLite, where the process that
// died left its writes to a resource sent, the one it had with the
// primary holding the turn, the others waiting behind it.
func (s *Store) TakeResendTurn(ctx context.Context, id string, limit time.Duration) (bool, error) {
	return s.takeTurn(ctx, id, limit)
}

// takeTurn runs TakeTurn's statement.
func (s *Store) takeTurn(ctx context.Context, id string, limit time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := s.transition(ctx, s.db, id, []domain.State{domain.StateSent}, s.dialect.takeTurn, id)
	if turnHeld(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: take the turn of %s: %w", id, err)
	}
	return true, nil
}

// heldFromBefore reports whether a write to resource that the process
// before this one left sent in the embedded store is still sent; once
// none is, the resource is no longer looked up.
func (s *Store) heldFromBefore(ctx context.Context, resource string, limit time.Duration) (bool, error) {
	if !s.kept.anyBefore() {
		return false, nil
	}
	key := s.resourceKey(resource)
	ids := s.kept.beforeOf(key)
	if len(ids) == 0 {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for _, id := range ids {
		var sent bool
		err := s.db.QueryRowContext(ctx, `SELECT state = 'sent' FROM strangler_repairs WHERE id = $1`, id).Scan(&sent)
		if errors.Is(err, sql.ErrNoRows) {
			continue // discarded
		}
		if err != nil {
			// Not the resource: a path names a patient.
			return false, fmt.Errorf("store: take a turn behind the writes left sent before a restart: %w", err)
		}
		if sent {
			return true, nil
		}
	}
	s.kept.settled(key)
	return false, nil
}

// noteLeftSent notes, in an embedded store, the writes to a resource but
// creates (those standing for a POST, Intent.StandsFor; a POST standing
// for a DELETE holds its turn) that the process before this one left sent: each holds its
// resource's turn until it leaves sent (TakeTurn).
//
// Why: that process kept their turns in memory, which went with it (it
// notes the write with the primary in the store too, but a release
// before this one did not, and holding every write left sent is one
// rule for both). Such a write may have been applied by the
// primary; recovery resends it once its lease passes (or marks it
// unknown) and records it only then. Were a write to its resource sent
// meanwhile, it would be applied after and recorded before it, and the
// secondary would end with the older body. A create is ordered by what
// it made, known from its answer only: no later write waits for it, as
// none did in the process before.
func (s *Store) noteLeftSent(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, resource FROM strangler_repairs WHERE state = 'sent' AND `+notCreate)
	if err != nil {
		return fmt.Errorf("store: writes left sent: %w", err)
	}
	defer rows.Close()
	before := make(map[string][]string)
	for rows.Next() {
		var id, resource string
		if err := rows.Scan(&id, &resource); err != nil {
			return fmt.Errorf("store: writes left sent: %w", err)
		}
		before[resource] = append(before[resource], id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: writes left sent: %w", err)
	}
	s.kept.mu.Lock()
	s.kept.before = before
	s.kept.mu.Unlock()
	return nil
}

// keptTurns are the resources whose turn an embedded store's process
// kept in the store (KeepTurn); an entry stays until a later write to
// the resource takes its turn, so there are at most as many as writes
// the primary left unanswered. before holds, by resource key
// (resourceKey), the writes the process before left sent
// (noteLeftSent), until a write to the resource finds none of them sent.
type keptTurns struct {
	mu        sync.Mutex
	resources map[string]struct{}
	before    map[string][]string
}

func (k *keptTurns) anyBefore() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.before) > 0
}

func (k *keptTurns) beforeOf(key string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.before[key]
}

func (k *keptTurns) settled(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.before, key)
}

// free reports whether a write of this process to resource that has
// the router's turn may take the store's turn as it is journaled
// (BeginWriteTurn): no write kept it (KeepTurn), and none that the
// process before left sent may hold it (TakeTurn says).
func (k *keptTurns) free(s *Store, resource string) bool {
	k.mu.Lock()
	_, kept := k.resources[resource]
	k.mu.Unlock()
	return !kept && (!k.anyBefore() || len(k.beforeOf(s.resourceKey(resource))) == 0)
}

func (k *keptTurns) add(resource string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.resources[resource] = struct{}{}
}

func (k *keptTurns) drop(resource string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.resources, resource)
}

// nonNil stores an absent body as an empty one: the column is NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
