package store

import (
	"testing"

	"strangler/domain"
)

// TestMovesFollowTheTable checks every change of state the store's SQL
// makes against domain's transition table.
func TestMovesFollowTheTable(t *testing.T) {
	for _, m := range moves {
		for _, from := range m.from {
			if !domain.CanMove(from, m.to) {
				t.Errorf("the store moves a write from %s to %s, which domain's table does not allow", from, m.to)
			}
		}
	}
	if got, want := statesIn(finalStates), "(state = 'skipped' OR state = 'done' OR state = 'discarded')"; got != want {
		t.Errorf("final states: %s, want %s", got, want)
	}
	if got, want := statesIn(openStates), "(state = 'sent' OR state = 'pending' OR state = 'unknown' OR state = 'dead')"; got != want {
		t.Errorf("open states: %s, want %s", got, want)
	}
}
