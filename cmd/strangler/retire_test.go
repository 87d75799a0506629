package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/store"
)

// TestRetirementVerdictCountsLegacyServingItself: the verdict says
// retirable only when nothing in retire_after needed legacy, fallbacks or
// not. A route at percent 50 has legacy answering half of its clients
// without a single fallback; a route new in the configuration (or
// renamed) has no record of what legacy served before it. Both looked
// retirable as soon as modern had served retire_min_requests.
func TestRetirementVerdictCountsLegacyServingItself(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/failing/") {
			w.WriteHeader(http.StatusInternalServerError)
		}
		io.WriteString(w, "modern")
	})
	dir := t.TempDir()
	// split and full have been counted for 8 days: one hour of theirs back
	// then stands for it.
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "strangler.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-8 * 24 * time.Hour)
	if err := st.AddCounts(context.Background(), []domain.HourCount{
		{Route: "split", Hour: old, Requests: 10, Modern: 10},
		{Route: "full", Hour: old, Requests: 10, Modern: 10},
		{Route: "failing", Hour: old, Requests: 10, Modern: 10},
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL, modern: modern.URL, routes: `
  - {name: split, match: "GET /split/{id}", mode: modern, percent: 50, retire_min_requests: 100}
  - {name: full, match: "GET /full/{id}", mode: modern, retire_min_requests: 100}
  - {name: fresh, match: "GET /fresh/{id}", mode: modern, retire_min_requests: 100}
  - {name: failing, match: "GET /failing/{id}", mode: modern, retire_min_requests: 100}
`})
	f := startRun(t, "serve", "--config", cfg)

	// send asks route n times and counts who answered.
	send := func(route string, n int) map[string]int {
		by := map[string]int{}
		for i := range n {
			resp, err := e2eClient.Get(fmt.Sprintf("http://%s/%s/%d", f.public, route, i))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			by[resp.Header.Get("X-Strangler-Backend")]++
		}
		return by
	}
	type report struct {
		Retirable bool   `json:"retirable"`
		Verdict   string `json:"verdict"`
		Periods   []struct {
			Legacy int `json:"legacy"`
		} `json:"periods"`
		Outlook struct {
			Summary string `json:"summary"`
		} `json:"outlook"`
	}
	reportOf := func(route string) report {
		var r report
		adminGetJSON(t, f.admin, "/admin/routes/"+route+"/report", &r)
		return r
	}

	t.Run("legacy answering half of the clients", func(t *testing.T) {
		by := send("split", 400)
		if by["legacy"] == 0 || by["modern"] < 100 {
			t.Fatalf("answered by %v, want both, modern at least 100 times", by)
		}
		r := reportOf("split")
		want := fmt.Sprintf("not yet: legacy answered %d of %d requests in the last 7d itself, not as a fallback; percent 50: legacy still serves part of the traffic", by["legacy"], 400)
		if r.Retirable || r.Verdict != want {
			t.Errorf("retirable %v, %q; want %q", r.Retirable, r.Verdict, want)
		}
		if len(r.Periods) != 3 || r.Periods[0].Legacy != by["legacy"] {
			t.Errorf("periods %+v, want legacy's own %d in the last 24h", r.Periods, by["legacy"])
		}
		if !strings.HasPrefix(r.Outlook.Summary, "not while legacy answers requests itself") {
			t.Errorf("outlook %q, want it to say legacy still answers", r.Outlook.Summary)
		}
	})
	t.Run("a route counted for less than retire_after", func(t *testing.T) {
		first := time.Now().UTC().Truncate(time.Hour)
		send("fresh", 150)
		r := reportOf("fresh")
		if r.Retirable || r.Verdict != "not yet: this route's counts begin "+first.Format("2006-01-02 15:04 UTC")+", less than 7d ago" {
			t.Errorf("retirable %v, %q; want not yet, its counts beginning %v", r.Retirable, r.Verdict, first)
		}
		if r.Outlook.Summary != "at the current trend, retirable around "+first.Add(7*24*time.Hour).Format("2006-01-02 15:04 UTC") {
			t.Errorf("outlook %q, want retirable 7d after its first hour", r.Outlook.Summary)
		}
	})
	t.Run("modern answering 500 to everyone", func(t *testing.T) {
		if by := send("failing", 150); by["modern"] != 150 {
			t.Fatalf("answered by %v, want modern 150 times", by)
		}
		r := reportOf("failing")
		want := "not yet: modern served 0 requests in the last 7d, 100 needed (and 150 requests of modern's that it answered with a 5xx, broke off answering or had not answered when their client left, which do not count)"
		if r.Retirable || r.Verdict != want {
			t.Errorf("retirable %v, %q; want %q", r.Retirable, r.Verdict, want)
		}
	})
	t.Run("modern serving everyone for 8 days", func(t *testing.T) {
		send("full", 150)
		if r := reportOf("full"); !r.Retirable {
			t.Errorf("retirable %v, %q; want retirable", r.Retirable, r.Verdict)
		}
	})
}
