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
// /base/records/./4, or only its id_field says 4; and that a Location
// naming nothing the facade serves (another host, a path of the primary's
// outside its base path) queues it on no resource of its naming.
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
	send(http.MethodPut, "/records/9", "")
	other := resourceKeys()["update"]
	send(http.MethodPut, "/records/4", "")
	want := resourceKeys()["update"]
	host := strings.TrimPrefix(primary.URL, "http://")
	for _, location := range []string{
		"/base/records/4",
		"/base/records/4/",
		"/base/records/%34",
		primary.URL + "/base/records/./4",
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
	// The Location names the resource over the id_field's id (4 here).
	for _, location := range []string{
		"/base/records/9",
		"/base/records/%39",
		primary.URL + "/base/records/./9",
		"records/9",                     // relative to /base/records, the URL the primary was sent
		"/base/x/../records/9?page=1#a", // dot segments removed before the base path is
		"http://example.com/records/9",  // the host the client asked for (X-Forwarded-Host)
	} {
		t.Run("Location "+location+" over the id", func(t *testing.T) {
			send(http.MethodPost, "/records", location)
			if got := resourceKeys()["create"]; got != other {
				t.Errorf("the create is queued on resource %q, a PUT of /records/9 on %q", got, other)
			}
		})
	}
	// A Location naming no path on the facade is no resource of the
	// create's: the id_field's id names it. Taken as a path, a primary's
	// Location queued the create on /records/9.
	for _, location := range []string{
		"http://evil.example/records/9",
		"//evil.example/records/9",
		"http://" + host + "/records/9",           // the primary's, outside its base path
		"/records/9",                              // the same
		"/base/../records/9",                      // the same
		"/basement/records/9",                     // no segment boundary after the base path
		"http://user@" + host + "/base/records/9", // user info: not the primary as the facade reaches it
		"http://example.com:8443/records/9",       // another port of the client's host
	} {
		t.Run("Location "+location+" names no resource of the facade", func(t *testing.T) {
			send(http.MethodPost, "/records", location)
			switch got := resourceKeys()["create"]; got {
			case want:
			case other:
				t.Errorf("the create is queued on /records/9, which its Location names outside the facade")
			default:
				t.Errorf("the create is queued on resource %q, want the id_field's /records/4 (%q)", got, want)
			}
		})
	}
}
