package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestDiffsNoiseGivesEachRouteOneLine: `diffs --noise` wrote the noise
// fields of the answer as they were, the one table of the CLI whose cells
// did not go through cell(), so a field name holding a newline and a tab
// wrote a row of its own that read like another route's. The facade
// learns only names that read like field names (phi.FieldName), but the
// CLI shows what the URL in STRANGLER_ADMIN answers, as every other
// table does: one row a route.
func TestDiffsNoiseGivesEachRouteOneLine(t *testing.T) {
	admin := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"noise":{"get-visit":["n\nget-patient\tforged\rall"]}}`)
	})
	out := cli(strings.TrimPrefix(admin.URL, "http://"))(t, "diffs", "--noise").must(t)
	if want := "ROUTE      NOISE FIELDS\nget-visit  n get-patient forged all\n"; out != want {
		t.Errorf("diffs --noise = %q, want %q", out, want)
	}
}
