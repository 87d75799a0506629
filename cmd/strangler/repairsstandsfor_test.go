package main

import (
	"net/http"
	"strings"
	"testing"

	"strangler/control"
)

// TestRepairsShowWhatAPostStandsFor: a dead-lettered POST of a patient
// with X-HTTP-Method-Override: DELETE deletes the patient on both sides.
// The admin API lists it with stands_for DELETE, and `strangler repairs
// list` and `show` say POST (as DELETE): an operator retrying or
// discarding it is told it deletes, where both showed a bare POST, which
// reads as a create.
func TestRepairsShowWhatAPostStandsFor(t *testing.T) {
	legacy := backendAnswering(t, `{"ok":true}`)
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such patient", http.StatusBadRequest)
	})
	f := startAdminFacade(t, legacy.URL, modern.URL, `  - {name: patient, match: "/patients/{id}", mode: dual-write, primary: legacy}
`)
	req, _ := http.NewRequest("POST", "http://"+f.public+"/patients/1", nil)
	req.Header.Set("X-HTTP-Method-Override", "DELETE")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /patients/1 standing for a DELETE: %s", resp.Status)
	}
	id := repairIDs(t, f, 1)[0]

	var view struct {
		Method    string `json:"method"`
		StandsFor string `json:"stands_for"`
	}
	adminGet(t, f.admin, "/admin/repairs/"+id, &view)
	if view.Method != "POST" || view.StandsFor != "DELETE" {
		t.Errorf("GET /admin/repairs/%s: method %q stands_for %q, want POST and DELETE", id, view.Method, view.StandsFor)
	}
	strangler := cli(f.admin)
	if out := oneSpaced(strangler(t, "repairs", "list").must(t)); !strings.Contains(out, id+" patient POST (as DELETE) /patients/") {
		t.Errorf("repairs list does not say the POST stands for a DELETE:\n%s", out)
	}
	if out := oneSpaced(strangler(t, "repairs", "show", id).must(t)); !strings.Contains(out, "write: POST (as DELETE) /patients/") {
		t.Errorf("repairs show does not say the POST stands for a DELETE:\n%s", out)
	}
}

// TestOnlyAPostIsShownStandingForAnother: a write other than a POST is
// shown by its method alone, also when the journal knows no method it
// stands for (a method from allow_methods, which the store does not
// know); a POST shows what it stands for.
func TestOnlyAPostIsShownStandingForAnother(t *testing.T) {
	for _, c := range []struct{ method, standsFor, want string }{
		{"PURGE", "", "PURGE"},
		{"PUT", "PUT", "PUT"},
		{"POST", "POST", "POST"},
		{"POST", "DELETE", "POST (as DELETE)"},
		{"POST", "", "POST (as several methods, or not known)"},
	} {
		if got := writeMethod(control.RepairView{Method: c.method, StandsFor: c.standsFor}); got != c.want {
			t.Errorf("%s standing for %q is shown %q, want %q", c.method, c.standsFor, got, c.want)
		}
	}
}
