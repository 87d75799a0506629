package backfill

import (
	"testing"
	"time"
)

// TestTheResumptionPolicyWaitsHalfAMinute: a run's policy, unshortened,
// resumes a lost connection 5 times after 1, 2, 4, 8 and 16 s, half a
// minute for a server to restart, and says so when it gives up. The
// tests of a database gone shorten it (QuickResumption), which leaves
// its pauses to this test.
func TestTheResumptionPolicyWaitsHalfAMinute(t *testing.T) {
	p := (&Options{}).policy()
	if p.first != time.Second {
		t.Errorf("the first pause is %s, want 1s", p.first)
	}
	if got, want := p.resumed("a key range of patients"), "a key range of patients resumed 5 times over 31s"; got != want {
		t.Errorf("the policy says %q, want %q", got, want)
	}
}
