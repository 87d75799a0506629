package control

import (
	"net/http"
	"testing"

	"strangler/domain"
)

// TestAClearWhoseCommitLostItsAnswerIsToldWhetherItWasMade: a clear
// whose commit the store made and whose answer was lost answers 200 and
// the route goes back to the file's mode; one whose commit never
// reached the store answers that it was not made, and the route keeps
// its override on this replica as in the store. No test held the clear's
// side of reading a lost commit back: one answered as made whatever the
// store held would have served the file's mode here while every other
// replica served the override.
func TestAClearWhoseCommitLostItsAnswerIsToldWhetherItWasMade(t *testing.T) {
	clear := func(t *testing.T, p *plane) int {
		resp, _ := p.call(t, "PATCH", "/admin/routes/get-patient", bobToken, `{"clear": true, "reason": "back to the file"}`,
			"If-Match", p.version(t, "get-patient"))
		return resp.StatusCode
	}
	t.Run("made", func(t *testing.T) {
		p, proxy, observer := lostCommitPlane(t, "")
		p.flip(t, "get-patient", domain.ModeLegacy, nil)
		var status int
		lostCommit(t, proxy, observer, "bob clear get-patient", func() { status = clear(t, p) }, nil)
		if status != http.StatusOK {
			t.Errorf("the clear whose commit lost its answer: got %d, want 200: it was made", status)
		}
		if got, want := p.served("get-patient"), "fallback"; got != want {
			t.Errorf("this replica serves the route as %s, want %s, the file's", got, want)
		}
	})
	t.Run("not made", func(t *testing.T) {
		p, proxy, _ := lostCommitPlane(t, "")
		p.flip(t, "get-patient", domain.ModeLegacy, nil)
		proxy.CutOn("commit")
		status := clear(t, p)
		if proxy.CutsOn() != 1 {
			t.Fatal("the clear's commit was never cut")
		}
		if status == http.StatusOK {
			t.Errorf("the clear whose commit never reached the store: got 200, want a refusal: it was not made")
		}
		if got, want := p.served("get-patient"), "legacy"; got != want {
			t.Errorf("this replica serves the route as %s, want %s, as the store has it", got, want)
		}
	})
}
