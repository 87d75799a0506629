package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/store"
)

// TestACreateQueuesLaterWritesToWhatItMadeHoweverItsLocationIsSpelled
// checks that a create's resource is named as a later write to it is: a
// PUT /records/4 must wait behind the POST that made /records/4, whether
// the primary's Location says /records/4/, /records/%34 or
// /base/records/./4, or only its id_field says 4.
func TestACreateQueuesLaterWritesToWhatItMadeHoweverItsLocationIsSpelled(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Start(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The primary has a base path; it answers a create with the Location
	// the test asks for, and with the new id in its body.
	primary := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if loc := r.Header.Get("X-Test-Location"); loc != "" {
			w.Header().Set("Location", loc)
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"4"}`)
	})
	cfg, err := configfile.Parse("test.yaml", []byte(fmt.Sprintf(`backends:
  legacy: {url: %q}
  modern: {url: %q}
routes:
  - {name: create, match: "POST /records", mode: dual-write, id_field: id}
  - {name: update, match: "PUT /records/{id}", mode: dual-write}
`, primary.URL+"/base", primary.URL)), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: log, Journal: storeJournal{Store: st}})
	table, err := r.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Swap(table)
	send := func(method, path, location string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(`{"name":"x"}`))
		req.Header.Set("X-Test-Location", location)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			t.Fatalf("%s %s: got %d, want 201", method, path, rec.Code)
		}
	}
	resourceKeys := func() map[string]string {
		t.Helper()
		list, err := st.ListRepairs(ctx, store.RepairFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]string{} // newest first: each route's last write
		for _, w := range list {
			if _, ok := keys[w.Route]; !ok {
				keys[w.Route] = w.ResourceKey
			}
		}
		return keys
	}
	send(http.MethodPut, "/records/4", "")
	want := resourceKeys()["update"]
	for _, location := range []string{
		"/base/records/4",
		"/base/records/4/",
		"/base/records/%34",
		"http://primary.example/base/records/./4",
		"/base/records//4",
		"", // no Location: the collection and the id_field's id
	} {
		t.Run("Location "+location, func(t *testing.T) {
			send(http.MethodPost, "/records", location)
			if got := resourceKeys()["create"]; got != want {
				t.Errorf("the create is queued on resource %q, a PUT of /records/4 on %q", got, want)
			}
		})
	}
}
