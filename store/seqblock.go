package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// seqBlockSize is how many sequence numbers an embedded store reserves
// at a time (seqBlock).
const seqBlockSize = 1024

// seqBlock hands out the sequence numbers of an embedded store's
// recorded outcomes (queueEmbedded) from a block this process reserved
// by advancing strangler_sequences' value past it, as PostgreSQL
// sequences with a cache do, rather than by advancing the value once a
// write.
//
// Why: the value's page was one page more in every outcome's commit, and
// each page a commit dirties is written to the WAL and checksummed (with
// its statement, 19k of the 490k instructions of a dual write, and two
// write system calls). Now one outcome in seqBlockSize writes it.
//
// Why it stays safe: the value is never below a number a committed write
// holds. A block is reserved in the transaction of the first write
// numbered from it, so that write commits only with its reservation; a
// number is used only while the value is still the one this process
// wrote (the queueing UPDATE checks it, seqGuard), so a reservation
// rolled back, or a number another process or the operator's resend took
// meanwhile (nextSeq advances the value by one), makes the write reserve
// a block after the value it finds instead. After a restart numbering
// resumes after the value: the unused rest of the last block is skipped.
// Numbers only order writes, so gaps are harmless.
type seqBlock struct {
	mu sync.Mutex
	// next is the last number handed out, limit the block's last one,
	// which is the value this process last wrote: 0 and 0 until the
	// first block is reserved.
	next, limit int64
}

// take hands out the block's next number, with the block's limit; ok
// is false when the block is used up.
func (b *seqBlock) take() (seq, limit int64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next >= b.limit {
		return 0, 0, false
	}
	b.next++
	return b.next, b.limit, true
}

// seqGuard is the condition on which a number from the block whose limit
// is $n may be used: the sequence's value is still that limit.
func seqGuard(n int) string {
	return fmt.Sprintf(`(SELECT value FROM strangler_sequences WHERE name = 'strangler_repair_seq') = $%d`, n)
}

// reserveSeqs reserves, in tx, the block after the sequence's value and
// hands out its first number, with its limit.
func (s *Store) reserveSeqs(ctx context.Context, tx *sql.Tx) (seq, limit int64, err error) {
	if _, err := tx.ExecContext(ctx, `
		UPDATE strangler_sequences SET value = value + $1 WHERE name = 'strangler_repair_seq'`, seqBlockSize); err != nil {
		return 0, 0, fmt.Errorf("reserve sequence numbers: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `
		SELECT value FROM strangler_sequences WHERE name = 'strangler_repair_seq'`).Scan(&limit); err != nil {
		return 0, 0, fmt.Errorf("reserve sequence numbers: %w", err)
	}
	b := &s.seqs
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limit, b.next = limit, limit-seqBlockSize+1
	return b.next, limit, nil
}

// seqMoved reports whether the sequence's value, in tx, is no longer
// limit, the limit of the block a number was taken from.
func (s *Store) seqMoved(ctx context.Context, tx *sql.Tx, limit int64) (bool, error) {
	var value int64
	if err := tx.QueryRowContext(ctx, `
		SELECT value FROM strangler_sequences WHERE name = 'strangler_repair_seq'`).Scan(&value); err != nil {
		return false, fmt.Errorf("next sequence number: %w", err)
	}
	return value != limit, nil
}
