package store

import (
	"strings"

	"strangler/domain"
)

// A move is a change of state the journal makes: a write in one of the
// states from goes to state to. Every UPDATE that changes a journaled
// write's state writes its SET and WHERE from its move, and
// TestMovesFollowTheTable checks each move against domain's transition
// table, the one place that says which changes are allowed.
type move struct {
	from []domain.State
	to   domain.State
}

// The journal's moves.
var (
	// moveSkip and moveQueue: the primary refused, or applied, the write
	// (RecordOutcome), its sender's call or recovery's resend; only while
	// it is sent (RecordOutcome says why).
	moveSkip  = move{[]domain.State{domain.StateSent}, domain.StateSkipped}
	moveQueue = move{[]domain.State{domain.StateSent}, domain.StatePending}
	// moveLose: the sender's lease passed before its answer (MarkUnknown),
	// or an operator stopped the resends of a write (StopResend).
	moveLose = move{[]domain.State{domain.StateSent}, domain.StateUnknown}
	// moveResume: a client retried a write of unknown outcome with its key.
	moveResume = move{[]domain.State{domain.StateUnknown}, domain.StateSent}
	// moveRetryDead and moveRetryUnknown: an operator's retry.
	moveRetryDead    = move{[]domain.State{domain.StateDead}, domain.StatePending}
	moveRetryUnknown = move{[]domain.State{domain.StateUnknown}, domain.StatePending}
	// moveDiscard: an operator gave up on the write.
	moveDiscard = move{[]domain.State{domain.StatePending, domain.StateDead, domain.StateUnknown}, domain.StateDiscarded}
	// moveDeliver: the secondary applied the write.
	moveDeliver = move{[]domain.State{domain.StatePending}, domain.StateDone}
	// moveGiveUp: delivery gave up on the write (FailRepair with dead).
	moveGiveUp = move{[]domain.State{domain.StatePending}, domain.StateDead}
)

// moves lists every move, for the test.
var moves = []move{moveSkip, moveQueue, moveLose, moveResume, moveRetryDead, moveRetryUnknown, moveDiscard, moveDeliver, moveGiveUp}

// set is the SQL assignment that puts a row in m's target state.
func (m move) set() string { return "state = '" + string(m.to) + "'" }

// where is the SQL condition that a row is in one of m's source states.
func (m move) where() string { return statesIn(m.from) }

// statesIn is the SQL condition that a row's state is one of states,
// spelled as ORed equalities: for a constant IN list of three or more
// values SQLite builds a temporary b-tree each time a statement runs.
// The journal's partial indexes of settled writes spell their condition
// so too (migration 0105), as SQLite uses a partial index only for a
// condition spelled as the index's is.
func statesIn(states []domain.State) string {
	equal := make([]string, len(states))
	for i, st := range states {
		equal[i] = "state = '" + string(st) + "'"
	}
	return "(" + strings.Join(equal, " OR ") + ")"
}

// finalStates and openStates split the journal's states into those no
// write leaves (its payload erased, purged after a while) and the others.
var finalStates, openStates = splitStates()

func splitStates() (final, open []domain.State) {
	for _, st := range domain.States {
		if st.Final() {
			final = append(final, st)
		} else {
			open = append(open, st)
		}
	}
	return final, open
}
