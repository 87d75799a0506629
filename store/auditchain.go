package store

// The audit log is a SHA-256 hash chain: each entry stores the hash of
// the entry before it (in id order) and its own hash, computed over that
// previous hash and its content. An entry edited in the database no
// longer matches its hash; a deleted or moved one breaks the link of the
// entry after it; entries cut off the end no longer reach the head, a
// one-row table every append updates under a lock. Whoever rewrites the
// whole chain from some entry on (and the head) goes unnoticed here, but
// not by an auditor who kept an earlier head or export: the hashes of
// the entries they hold no longer appear.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"strangler/domain"
)

// GenesisHash is the previous hash of the chain's first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// auditFormat names the canonical form auditHash hashes; a new form gets
// a new name.
const auditFormat = "strangler-audit-v1"

// auditHash is e's hash in the chain: the SHA-256, in lower-case hex, of
// its canonical form. That is, for each of auditFormat, PrevHash, At (UTC,
// 2006-01-02T15:04:05.000000Z), Actor, Action, Route, FromMode, ToMode,
// FromPercent and ToPercent (the shortest decimal that reads back as the
// same number, no exponent; empty when unset), Reason, Forced (true or
// false) and Detail: its length in bytes in decimal, a colon, its UTF-8
// bytes and a newline. Lengths make the form unambiguous whatever the
// text holds, and simple to recompute from an export in any language.
func auditHash(e domain.AuditEntry) string {
	h := sha256.New()
	for _, f := range []string{
		auditFormat, e.PrevHash, AuditTime(e.At), e.Actor, e.Action, e.Route,
		string(e.FromMode), string(e.ToMode), AuditPercent(e.FromPercent), AuditPercent(e.ToPercent),
		e.Reason, strconv.FormatBool(e.Forced), e.Detail,
	} {
		fmt.Fprintf(h, "%d:%s\n", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AuditTime writes an entry's time as its hash covers it.
func AuditTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// AuditPercent writes an entry's percent as its hash covers it: "" when
// unset.
func AuditPercent(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

// AuditHead is the end of the chain, as the store records it.
type AuditHead struct {
	// ID and Hash are the newest chained entry's: 0 and GenesisHash
	// before the first.
	ID   int64
	Hash string
	// PreChainLastID is the newest entry written before the store had a
	// chain (0 for none). Those entries were chained as they were at
	// StartedAt, when the store was upgraded: a change to them before
	// then cannot be detected.
	PreChainLastID int64
	StartedAt      time.Time
}

// AuditHead returns the end of the chain.
func (s *Store) AuditHead(ctx context.Context) (AuditHead, error) {
	h, err := s.readAuditHead(ctx, s.db, "")
	if err != nil {
		return AuditHead{}, fmt.Errorf("store: audit head: %w", err)
	}
	return h, nil
}

// lockAuditHead reads the end of the chain and holds it until tx ends:
// on PostgreSQL a row lock that makes every other replica's append wait;
// SQLite's write transactions exclude each other already.
func (s *Store) lockAuditHead(ctx context.Context, tx *sql.Tx) (AuditHead, error) {
	h, err := s.readAuditHead(ctx, tx, s.dialect.forUpdate)
	if err != nil {
		return AuditHead{}, fmt.Errorf("audit head: %w", err)
	}
	return h, nil
}

func (s *Store) readAuditHead(ctx context.Context, q querier, suffix string) (AuditHead, error) {
	var h AuditHead
	err := q.QueryRowContext(ctx, `
		SELECT last_id, hash, pre_chain_last_id, started_at FROM strangler_audit_head WHERE one = 1 `+suffix).
		Scan(&h.ID, &h.Hash, &h.PreChainLastID, scanTime(&h.StartedAt))
	if errors.Is(err, sql.ErrNoRows) {
		return AuditHead{}, errors.New("the chain's head row is missing")
	}
	return h, err
}

// moveAuditHead makes e the end of the chain.
func (s *Store) moveAuditHead(ctx context.Context, tx *sql.Tx, e domain.AuditEntry) error {
	_, err := tx.ExecContext(ctx, `UPDATE strangler_audit_head SET last_id = $1, hash = $2 WHERE one = 1`, e.ID, e.Hash)
	if err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	return nil
}

// chainPreExisting is the audit chain migration's step that SQL cannot
// take: it chains the entries written before the store had a chain, in id
// order, as they are now. Chaining them, rather than starting the chain
// after them, means a later change to them is detected like a change to
// any other entry; AuditHead.PreChainLastID keeps on record that they
// were not protected before.
func (s *Store) chainPreExisting(ctx context.Context, tx *sql.Tx) error {
	head, err := s.lockAuditHead(ctx, tx)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM strangler_audit WHERE id > $1 ORDER BY id`, head.ID)
	if err != nil {
		return err
	}
	// Read whole before updating: a connection runs one statement at a time.
	var pending []domain.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			rows.Close()
			return err
		}
		pending = append(pending, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	prev := head.Hash
	for _, e := range pending {
		e.PrevHash = prev
		e.Hash = auditHash(e)
		if _, err := tx.ExecContext(ctx, `UPDATE strangler_audit SET prev_hash = $1, hash = $2 WHERE id = $3`,
			e.PrevHash, e.Hash, e.ID); err != nil {
			return err
		}
		prev = e.Hash
		if err := s.moveAuditHead(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// WalkAudit calls fn with the audit entries from the first at or after
// since (zero: all of them) on, in chain order, reading them as it goes.
// An error from fn stops the walk and is returned as it is. Entries'
// times need not rise with their ids (see AuditLog): an entry
// after the first that carries an earlier time is walked too, so that
// what is walked is a piece of the chain without a gap.
func (s *Store) WalkAudit(ctx context.Context, since time.Time, fn func(domain.AuditEntry) error) error {
	q, args := `SELECT `+auditColumns+` FROM strangler_audit ORDER BY id`, []any(nil)
	if !since.IsZero() {
		q, args = `SELECT `+auditColumns+` FROM strangler_audit
			WHERE id >= (SELECT min(id) FROM strangler_audit WHERE at >= $1) ORDER BY id`, []any{s.auditBound(since)}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: walk audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return fmt.Errorf("store: walk audit: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: walk audit: %w", err)
	}
	return nil
}

// AuditVerification is what VerifyAudit found.
type AuditVerification struct {
	// Entries is how many entries were checked: all of them when the
	// chain holds, those up to Break when it does not.
	Entries int64
	// Head is the end of the chain as the store recorded it when the
	// walk began.
	Head AuditHead
	// Break is the first entry that does not match; nil when the chain
	// holds.
	Break *AuditBreak
}

// AuditBreak is where the chain does not hold.
type AuditBreak struct {
	// ID is the first entry that does not match.
	ID int64
	// After is the last entry that did: the one ID should follow; 0 when
	// ID is the first entry.
	After int64
	// Problem says what is wrong, in a sentence.
	Problem string
}

// errChainBroken stops VerifyAudit's walk at the first break.
var errChainBroken = errors.New("chain broken")

// VerifyAudit walks the whole chain and reports the first entry that was
// edited, deleted, reordered or written around the chain. Replicas may
// append meanwhile: the head is read first, and the entries after it are
// checked too.
func (s *Store) VerifyAudit(ctx context.Context) (AuditVerification, error) {
	head, err := s.AuditHead(ctx)
	if err != nil {
		return AuditVerification{}, err
	}
	v := AuditVerification{Head: head}
	prev, prevID, reachedHead := GenesisHash, int64(0), head.ID == 0
	brk := func(id int64, format string, args ...any) error {
		v.Break = &AuditBreak{ID: id, After: prevID, Problem: fmt.Sprintf(format, args...)}
		return errChainBroken
	}
	err = s.WalkAudit(ctx, time.Time{}, func(e domain.AuditEntry) error {
		switch {
		case e.Hash == "" || e.PrevHash == "":
			return brk(e.ID, "entry %d is not chained: it has no hash, so it was written around the chain (by a release without it, or directly in the database)", e.ID)
		case e.PrevHash != prev && prevID == 0:
			return brk(e.ID, "entry %d does not start the chain: the entries before it were deleted, or it was moved", e.ID)
		case e.PrevHash != prev:
			return brk(e.ID, "entry %d does not follow entry %d: an entry between them was deleted, or entries were reordered", e.ID, prevID)
		case auditHash(e) != e.Hash:
			return brk(e.ID, "entry %d was changed after it was written: its content no longer matches its hash", e.ID)
		case e.ID == head.ID && e.Hash != head.Hash:
			return brk(e.ID, "entry %d does not match the chain's head: it and the entries before it were rewritten, or the head was changed", e.ID)
		}
		v.Entries++
		prev, prevID = e.Hash, e.ID
		reachedHead = reachedHead || e.ID == head.ID
		return nil
	})
	switch {
	case errors.Is(err, errChainBroken):
		return v, nil
	case err != nil:
		return AuditVerification{}, err
	case !reachedHead && prevID < head.ID:
		v.Break = &AuditBreak{ID: head.ID, After: prevID,
			Problem: fmt.Sprintf("entry %d, the newest the chain's head records, is missing: entries after entry %d were deleted", head.ID, prevID)}
	case !reachedHead:
		v.Break = &AuditBreak{ID: head.ID, After: prevID,
			Problem: fmt.Sprintf("the chain's head names entry %d, which is not in the chain: the head was changed", head.ID)}
	}
	return v, nil
}
