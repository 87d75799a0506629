package router

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWhatAPostStandsForIsJournaledOnlyAsAMethod: a POST's method
// override is any token its client chose; the journal keeps what the
// write stands for in clear, in listings and the admin API, so an
// override the facade does not know as a method (here a patient's name)
// is kept as "" (no create), and a known one as the method it names.
func TestWhatAPostStandsForIsJournaledOnlyAsAMethod(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusOK, "legacy"))
	modern := newBackend(t, answer(http.StatusOK, "modern"))
	d := newDualWriteFacade(t, legacy.URL, modern.URL, time.Second,
		`  - {name: items, match: "/items/{id}", mode: dual-write}`)
	for _, c := range []struct{ override, want string }{
		{"Ann Example", ""},
		{"patch", "PATCH"},
	} {
		resp, _ := d.send(t, http.MethodPost, "/items/7", "", http.Header{"X-Http-Method-Override": {c.override}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST with X-HTTP-Method-Override: %s: %d, want 200", c.override, resp.StatusCode)
		}
		w := d.writes(t)
		if got := w[len(w)-1].StandsFor; got != c.want {
			t.Errorf("X-HTTP-Method-Override: %s: journaled as standing for %q, want %q", c.override, got, c.want)
		}
		if strings.Contains(strings.ToUpper(w[len(w)-1].StandsFor), "ANN") {
			t.Errorf("the journal keeps the override %q in clear", w[len(w)-1].StandsFor)
		}
	}
}
