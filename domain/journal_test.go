package domain

import "testing"

// TestTransitions checks the journal's state machine over every pair of
// states against the life of a write as State's documentation tells it.
func TestTransitions(t *testing.T) {
	allowed := map[[2]State]bool{
		{StateSent, StatePending}: true, {StateSent, StateSkipped}: true, {StateSent, StateUnknown}: true,
		{StateUnknown, StatePending}: true, {StateUnknown, StateSent}: true,
		{StateUnknown, StateDiscarded}: true,
		{StatePending, StateDone}:      true, {StatePending, StateDead}: true, {StatePending, StateDiscarded}: true,
		{StateDead, StatePending}: true, {StateDead, StateDiscarded}: true,
	}
	for _, from := range States {
		for _, to := range States {
			if got, want := CanMove(from, to), allowed[[2]State{from, to}]; got != want {
				t.Errorf("CanMove(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
	for _, st := range States {
		want := st == StateDone || st == StateSkipped || st == StateDiscarded
		if st.Final() != want {
			t.Errorf("%s.Final() = %v, want %v", st, st.Final(), want)
		}
	}
}
