package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"strangler/domain"
)

// RepairFilter selects journaled writes for ListRepairs. Zero fields do not
// filter.
type RepairFilter struct {
	State domain.State
	Route string
	// ResourceKey is a RepairSummary's ResourceKey: every write to one
	// resource.
	ResourceKey string
	// BeforeID keeps the writes listed after the write with this id
	// (the next page: the last id of one); ErrNotFound if there is none.
	BeforeID string
	// Limit caps the result: 100 when zero, at most 1000.
	Limit int
}

// ListRepairs returns journaled writes, newest first, without header and
// body.
func (s *Store) ListRepairs(ctx context.Context, f RepairFilter) ([]domain.RepairSummary, error) {
	q, args, err := s.listQuery(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("store: list repairs: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list repairs: %w", err)
	}
	defer rows.Close()
	var out []domain.RepairSummary
	for rows.Next() {
		r, err := scanSummary(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list repairs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list repairs: %w", err)
	}
	return out, nil
}

// listQuery is ListRepairs' query and its arguments.
func (s *Store) listQuery(ctx context.Context, f RepairFilter) (string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.State != "" {
		st, err := domain.ParseState(string(f.State))
		if err != nil {
			return "", nil, err
		}
		// Spelled out, not a parameter: only then may a plan made for
		// any value (PostgreSQL's generic plans) use the partial index of
		// that state (unknown, dead) instead of walking every write,
		// newest first, to find the few there are.
		where = append(where, "state = '"+string(st)+"'")
	}
	if f.Route != "" {
		add("route = $%d", f.Route)
	}
	if f.ResourceKey != "" {
		add("resource = $%d", f.ResourceKey)
	}
	if f.BeforeID != "" {
		// The id breaks ties, as in the order: a page starts where the
		// last ended even among writes created in the same instant.
		var at any
		err := s.db.QueryRowContext(ctx, `SELECT created_at FROM strangler_repairs WHERE id = $1`, f.BeforeID).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil, fmt.Errorf("no write %s to list from: %w", f.BeforeID, ErrNotFound)
		} else if err != nil {
			return "", nil, err
		}
		args = append(args, at, f.BeforeID)
		where = append(where, fmt.Sprintf("(created_at < $%d OR created_at = $%d AND id < $%d)", len(args)-1, len(args)-1, len(args)))
	}
	q := `SELECT ` + summaryColumns + ` FROM strangler_repairs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limitOr(f.Limit, 100, 1000))
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d`, len(args))
	return q, args, nil
}

// GetRepair returns one journaled write; with withBody, also its target,
// headers and body, which may hold patient data. Unknown ids are
// ErrNotFound; a body encrypted with a key that is no longer configured is
// ErrKeyLost, with a message that says only the body is lost.
func (s *Store) GetRepair(ctx context.Context, id string, withBody bool) (domain.Repair, error) {
	if !withBody {
		r, err := scanSummary(s.db.QueryRowContext(ctx, `SELECT `+summaryColumns+` FROM strangler_repairs WHERE id = $1`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Repair{}, fmt.Errorf("store: get repair %s: %w", id, ErrNotFound)
		} else if err != nil {
			return domain.Repair{}, fmt.Errorf("store: get repair %s: %w", id, err)
		}
		return domain.Repair{RepairSummary: r}, nil
	}
	r, err := s.scanRepair(s.db.QueryRowContext(ctx, `SELECT `+repairColumns+` FROM strangler_repairs WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Repair{}, fmt.Errorf("store: get repair %s: %w", id, ErrNotFound)
	} else if err != nil {
		return domain.Repair{}, fmt.Errorf("store: get repair %s: %w", id, err)
	}
	if r.PayloadErr != nil {
		return domain.Repair{}, fmt.Errorf("store: %w", r.PayloadErr)
	}
	return r, nil
}

// RetryRepair puts a write back in the queue, due now on the store's
// clock (see leaseAt). A dead write keeps its place at the head of its
// resource, with attempts reset. An unknown write means the operator
// confirmed the primary applied it: it joins the end of its resource's
// queue with a new sequence number, unless a write to its resource that
// came in after it was applied (see laterWrites): the secondary would
// then end with the older write, so that is ErrInvalidState. Other
// states are ErrInvalidState too. audit, the operator's entry for it, is
// appended in the same transaction: the log holds it exactly when the
// write moved.
func (s *Store) RetryRepair(ctx context.Context, id string, audit domain.AuditEntry) error {
	err := s.auditedTx(ctx, func(tx *sql.Tx) error {
		if err := s.retryRepair(ctx, tx, id); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("store: retry repair %s: %w", id, err)
	}
	return nil
}

// retryRepair is RetryRepair's move, in tx.
func (s *Store) retryRepair(ctx context.Context, tx *sql.Tx, id string) error {
	var resource, method string
	var standsFor sql.NullString
	var p payload
	var sealed bool
	var st domain.State
	err := tx.QueryRowContext(ctx, `SELECT resource, method, stands_for, state, `+payloadColumns+` FROM strangler_repairs WHERE id = $1`, id).
		Scan(&resource, &method, &standsFor, &st, &p.target, &p.header, &p.body, &p.location, &p.primaryID, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	now := s.ts(s.clock())
	from := slices.Concat(moveRetryDead.from, moveRetryUnknown.from)
	if st != domain.StateUnknown {
		due, dueNow := s.leaseAt(3, 0)
		return s.transition(ctx, tx, id, from, `
			UPDATE strangler_repairs
			SET `+moveRetryDead.set()+`, attempts = 0, next_attempt_at = `+due+`,
				lease_owner = NULL, lease_until = NULL, updated_at = $2
			WHERE id = $1 AND `+moveRetryDead.where(), id, now, dueNow)
	}
	due, dueNow := s.leaseAt(4, 0)
	seq, _, err := s.nextSeq(ctx, tx, resource)
	if err != nil {
		return err
	}
	// Checked under nextSeq's lock of the resource: a later write
	// recorded after this takes a later number, and follows.
	// A row of an earlier release not filled yet (fillStandsFor) is
	// read from its request; one that cannot be is checked.
	var opened *payload
	if op, err := s.open(id, p, sealed); err == nil {
		opened = &op
	}
	if n, err := s.laterWrites(ctx, tx, id, resource, standsForRead(method, standsFor, opened)); err != nil {
		return err
	} else if n > 0 {
		return &StateError{fmt.Sprintf("it is unknown, and %d later writes to its resource reached the secondary or are queued for it: "+
			"retried, this older write would overwrite them there; apply it by hand if the secondary still needs it, or discard it", n)}
	}
	return s.transition(ctx, tx, id, from, `
		UPDATE strangler_repairs
		SET `+moveRetryUnknown.set()+`, seq = $2, attempts = 0, next_attempt_at = `+due+`,
			lease_owner = NULL, lease_until = NULL, updated_at = $3
		WHERE id = $1 AND `+moveRetryUnknown.where(), id, seq, now, dueNow)
}

// laterWrites counts the writes to resource that came in after the write
// id and that the primary applied (pending, dead, done): the secondary has
// them or will get them before anything queued now. None concern a create
// (standsFor, what the write stands for, is POST; a POST standing for a
// PUT is checked): its resource is its collection until the primary's
// answer names what it made, which an unknown write never got, and
// creates in one collection do not overwrite one another.
func (s *Store) laterWrites(ctx context.Context, tx *sql.Tx, id, resource, standsFor string) (int, error) {
	if standsFor == http.MethodPost {
		return 0, nil
	}
	var n int
	err := tx.QueryRowContext(ctx, `
		SELECT COUNT(*) FROM strangler_repairs l
		WHERE l.resource = $1 AND `+statesIn(laterStates)+`
			AND l.created_at > (SELECT created_at FROM strangler_repairs WHERE id = $2)`, resource, id).Scan(&n)
	return n, err
}

// laterStates are the states of a write the secondary has or will get.
var laterStates = []domain.State{domain.StatePending, domain.StateDead, domain.StateDone}

// DiscardRepair gives up on a pending, dead or unknown write, erasing what
// it kept of the request; later writes to its resource proceed. A write
// under a live lease is ErrInvalidState: a worker is delivering it, and
// the secondary may apply it whatever the queue then says. Other states
// are ErrInvalidState too. audit, the operator's entry for it, is
// appended in the same transaction.
func (s *Store) DiscardRepair(ctx context.Context, id string, audit domain.AuditEntry) error {
	free, nowArg := s.leaseAt(3, 0)
	err := s.auditedTx(ctx, func(tx *sql.Tx) error {
		err := s.transition(ctx, tx, id, moveDiscard.from, `
			UPDATE strangler_repairs
			SET `+moveDiscard.set()+`, `+s.erase()+`, lease_owner = NULL, lease_until = NULL, updated_at = $2
			WHERE id = $1 AND `+moveDiscard.where()+`
				AND (lease_until IS NULL OR lease_until <= `+free+`)`, id, s.ts(s.clock()), nowArg)
		if err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("store: discard repair %s: %w", id, err)
	}
	return nil
}

// StopResend gives up resending the sent write id to its primary, as
// an operator may once recovery has it (its lease passed, or a resend
// went unanswered): the write becomes unknown, for the operator to
// retry (if the primary applied it) or discard, and its resource's turn
// ends at once, so later writes to the resource go on. A resend under way
// still reaches the primary, but its answer no longer settles the write
// (RecordOutcome). A write still with the facade that sent it (its lease
// runs, nothing resent yet), or in another state, is ErrInvalidState.
// audit, the operator's entry for it, is appended in the same
// transaction: two operators at once, or the operator and recovery, make
// one move and one entry.
func (s *Store) StopResend(ctx context.Context, id string, audit domain.AuditEntry) error {
	passed, nowArg := s.leaseAt(3, 0)
	err := s.auditedTx(ctx, func(tx *sql.Tx) error {
		n, err := rowsChanged(tx.ExecContext(ctx, `
			UPDATE strangler_repairs
			SET `+moveLose.set()+`, lease_owner = NULL, lease_until = NULL, updated_at = $2
			WHERE id = $1 AND `+moveLose.where()+`
				AND (attempts > 0 OR lease_until <= `+passed+`)`, id, s.ts(s.clock()), nowArg))
		if err != nil {
			return err
		}
		if n == 0 {
			return s.whyNotStopped(ctx, tx, id)
		}
		return s.appendAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("store: stop resending %s: %w", id, err)
	}
	return nil
}

// whyNotStopped is StopResend's error for the write id, which it did not
// move.
func (s *Store) whyNotStopped(ctx context.Context, tx *sql.Tx, id string) error {
	var st domain.State
	err := tx.QueryRowContext(ctx, `SELECT state FROM strangler_repairs WHERE id = $1`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if st != domain.StateSent {
		return &StateError{"it is " + string(st) + ", not sent: only a write recovery resends to its primary is stopped"}
	}
	return &StateError{"it is sent, and the facade that sent it may still record the primary's answer; " +
		"once its lease passes recovery has it, and it can be stopped"}
}

// RepairDepth counts the writes in each open state (pending, dead, unknown,
// sent), for strangler_repair_queue_depth{state}. Every open state is in
// the map, zero included.
func (s *Store) RepairDepth(ctx context.Context) (map[string]int, error) {
	depth := map[string]int{}
	for _, st := range openStates {
		depth[string(st)] = 0
	}
	rows, err := s.db.QueryContext(ctx, countOpen)
	if err != nil {
		return nil, fmt.Errorf("store: repair depth: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: repair depth: %w", err)
		}
		depth[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: repair depth: %w", err)
	}
	return depth, nil
}

// countOpen counts the journal's open writes per state, one state at a
// time: each open state has a partial index of its own (sent, pending_seq,
// unknown, dead), which a query naming several states at once cannot use,
// and the table holds many more settled writes than open ones.
var countOpen = func() string {
	counts := make([]string, len(openStates))
	for i, st := range openStates {
		counts[i] = `SELECT '` + string(st) + `', COUNT(*) FROM strangler_repairs WHERE state = '` + string(st) + `'`
	}
	return strings.Join(counts, " UNION ALL ")
}()

// PurgeRepairs deletes finished writes (done, skipped, discarded) last
// changed more than keep ago, and returns how many it deleted. Open
// writes are never purged. It also forgets the Idempotency-Keys that
// started no write for KeyTTL; a write a remembered key still names is
// kept until the key is forgotten, so that a retry can learn whether the
// primary applied it. Ages are on the store's clock (see clock), which
// stamped the changes: a replica whose own clock is days off purges
// neither early nor late.
func (s *Store) PurgeRepairs(ctx context.Context, keep time.Duration) (int, error) {
	var n int64
	keyTTL, keyTTLArg := s.leaseAt(1, -KeyTTL) // the clock keys are stamped on (beginKeyed)
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM strangler_idempotency_keys WHERE at < `+keyTTL,
			keyTTLArg); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			DELETE FROM strangler_repairs
			WHERE `+statesIn(finalStates)+` AND updated_at < $1
				AND NOT EXISTS (SELECT 1 FROM strangler_idempotency_keys k
					WHERE k.intent_id = strangler_repairs.id)`, s.ts(s.clock().Add(-keep)))
		n, err = rowsChanged(res, err)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge repairs: %w", err)
	}
	return int(n), nil
}

// OpenCount is how many open writes (sent, pending, unknown, dead) of one
// route, journaled under one primary, are in one state: each is owed to
// the other backend.
type OpenCount struct {
	Route   string
	Primary domain.Backend
	State   domain.State
	N       int
}

// OpenRepairs counts the journal's open writes per route, primary and
// state, in route order: what each route still owes its secondary,
// routes the file no longer has included.
func (s *Store) OpenRepairs(ctx context.Context) ([]OpenCount, error) {
	return s.openRepairs(ctx, s.db)
}

func (s *Store) openRepairs(ctx context.Context, q querier) ([]OpenCount, error) {
	rows, err := q.QueryContext(ctx, openCounts)
	if err != nil {
		return nil, fmt.Errorf("store: open repairs: %w", err)
	}
	defer rows.Close()
	var out []OpenCount
	for rows.Next() {
		var c OpenCount
		if err := rows.Scan(&c.Route, &c.Primary, &c.State, &c.N); err != nil {
			return nil, fmt.Errorf("store: open repairs: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: open repairs: %w", err)
	}
	slices.SortFunc(out, func(a, b OpenCount) int {
		return cmp.Or(strings.Compare(a.Route, b.Route), strings.Compare(string(a.Primary), string(b.Primary)),
			slices.Index(domain.States, a.State)-slices.Index(domain.States, b.State))
	})
	return out, nil
}

// OpenPrimaries returns, per route, the primaries its open writes (sent,
// pending, unknown, dead) were journaled under, and how many went to
// each: each is still on its way to the other backend, which must get no
// later write to its resource before it (see control.Flags).
func (s *Store) OpenPrimaries(ctx context.Context) (map[string]map[domain.Backend]int, error) {
	return s.openPrimaries(ctx, s.db)
}

// openPrimaries is OpenPrimaries read through q: the store's pool, or a
// transaction (CheckJournal).
func (s *Store) openPrimaries(ctx context.Context, q querier) (map[string]map[domain.Backend]int, error) {
	counts, err := s.openRepairs(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[string]map[domain.Backend]int{}
	for _, c := range counts {
		if out[c.Route] == nil {
			out[c.Route] = map[domain.Backend]int{}
		}
		out[c.Route][c.Primary] += c.N
	}
	return out, nil
}

// openCounts counts the open writes per route, primary and state, one
// state at a time for the states' partial indexes (see countOpen).
var openCounts = func() string {
	selects := make([]string, len(openStates))
	for i, st := range openStates {
		selects[i] = `SELECT route, primary_side, state, COUNT(*) FROM strangler_repairs WHERE state = '` + string(st) + `' GROUP BY route, primary_side, state`
	}
	return strings.Join(selects, " UNION ALL ")
}()
