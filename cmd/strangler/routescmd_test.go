package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// routesForCLI are the routes of the routes command tests: one to flip,
// one shadowed, and one whose gate refuses a flip while modern lacks
// everything.
const routesForCLI = `  - {name: get-patient, match: "GET /patients/{id}", mode: legacy}
  - {name: list-photos, match: "GET /photos", mode: shadow}
  - name: get-visit
    match: "GET /visits/{id}"
    mode: fallback
    percent: 50
    gates: { max_fallback_rate: 1% }
`

func startRoutesFacade(t *testing.T) *running {
	t.Helper()
	legacy := backendAnswering(t, `{"from":"legacy"}`)
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/visits/") {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"from":"modern"}`))
	})
	return startAdminFacade(t, legacy.URL, modern.URL, routesForCLI)
}

// row returns the table row of route in a routes list, as fields.
func row(t *testing.T, table, route string) []string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == route {
			return f
		}
	}
	t.Fatalf("no row for %s in:\n%s", route, table)
	return nil
}

func TestRoutesListSetClear(t *testing.T) {
	f := startRoutesFacade(t)
	strangler := cli(f.admin)

	t.Run("list shows every route with its file and effective mode", func(t *testing.T) {
		out := strangler(t, "routes", "list").must(t)
		if !strings.HasPrefix(out, "ROUTE ") {
			t.Errorf("no header line:\n%s", out)
		}
		for route, want := range map[string]string{
			"get-patient": "get-patient GET /patients/{id} legacy legacy - 0.00 0% 0% -",
			"list-photos": "list-photos GET /photos shadow shadow - 0.00 0% 0% -",
			"get-visit":   "get-visit GET /visits/{id} fallback at 50% fallback 50% 0.00 0% 0% -",
		} {
			if got := strings.Join(row(t, out, route), " "); got != want {
				t.Errorf("row of %s = %q, want %q", route, got, want)
			}
		}
	})

	t.Run("set flips the route, list shows the override, and modern serves", func(t *testing.T) {
		out := strangler(t, "routes", "set", "get-patient", "--mode", "modern", "--reason", "r").must(t)
		if want := "get-patient: legacy -> modern\n"; out != want {
			t.Errorf("set printed %q, want %q", out, want)
		}
		got := strings.Join(row(t, strangler(t, "routes", "list").must(t), "get-patient"), " ")
		if ok, _ := regexp.MatchString(`^get-patient GET /patients/\{id\} legacy modern 100% \S+ \S+ \S+ \d+s by alice$`, got); !ok {
			t.Errorf("row after the flip = %q, want modern with an override age by alice", got)
		}
		if _, body := getBody(t, "http://"+f.public+"/patients/1"); body != `{"from":"modern"}` {
			t.Errorf("the facade served %s, want modern", body)
		}
	})

	t.Run("set to what the route already is says so, and the audit log keeps one flip", func(t *testing.T) {
		for _, args := range [][]string{{"--mode", "modern"}, {"--mode", "modern", "--percent", "100"}, {"--percent", "100"}} {
			out := strangler(t, append([]string{"routes", "set", "get-patient", "--reason", "again"}, args...)...).must(t)
			if want := "get-patient: already modern; nothing was changed or audited\n"; out != want {
				t.Errorf("set %v printed %q, want %q", args, out, want)
			}
		}
	})

	t.Run("--clear brings the file's mode back", func(t *testing.T) {
		out := strangler(t, "routes", "set", "get-patient", "--clear", "--reason", "done trying").must(t)
		if want := "get-patient: modern -> legacy (the file's mode again)\n"; out != want {
			t.Errorf("set --clear printed %q, want %q", out, want)
		}
		got := row(t, strangler(t, "routes", "list").must(t), "get-patient")
		if mode, override := got[4], got[len(got)-1]; mode != "legacy" || override != "-" {
			t.Errorf("after --clear: mode %s, override %s; want legacy, -", mode, override)
		}
		if _, body := getBody(t, "http://"+f.public+"/patients/1"); body != `{"from":"legacy"}` {
			t.Errorf("the facade served %s, want legacy", body)
		}
	})

	t.Run("--json prints the API's JSON", func(t *testing.T) {
		var out struct {
			Routes []struct {
				Name string `json:"name"`
			} `json:"routes"`
		}
		if err := json.Unmarshal([]byte(strangler(t, "routes", "list", "--json").must(t)), &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Routes) != 3 || out.Routes[0].Name != "get-patient" {
			t.Errorf("routes = %+v", out.Routes)
		}
	})

	t.Run("every flip is audited with alice and the reason", func(t *testing.T) {
		var audit struct {
			Entries []struct{ Actor, Action, Route, Reason string } `json:"entries"`
		}
		adminGet(t, f.admin, "/admin/audit?route=get-patient", &audit)
		var got []string
		for _, e := range audit.Entries {
			got = append(got, e.Actor+" "+e.Action+" "+e.Reason)
		}
		if want := "alice clear done trying,alice flip r"; strings.Join(got, ",") != want {
			t.Errorf("audit = %q, want %q", strings.Join(got, ","), want)
		}
	})
}

func TestRoutesSetRefusals(t *testing.T) {
	f := startRoutesFacade(t)
	strangler := cli(f.admin)

	t.Run("a change made since the route was read is refused with what it is now", func(t *testing.T) {
		c, err := newAdminClient(f.admin, aliceToken)
		if err != nil {
			t.Fatal(err)
		}
		_, etag, err := readRoute(context.Background(), c, "get-patient")
		if err != nil {
			t.Fatal(err)
		}
		strangler(t, "routes", "set", "get-patient", "--mode", "fallback", "--percent", "50", "--reason", "first").must(t)
		_, _, err = patchRoute(context.Background(), c, "get-patient", etag, patchBody{Mode: "modern", Reason: "second"})
		want := "the route changed since it was read (now fallback at 50% by alice); run the command again"
		if err == nil || err.Error() != want {
			t.Errorf("err = %v, want %q", err, want)
		}
	})

	// Modern has no visits: every request it gets falls back.
	for range 20 {
		getBody(t, "http://"+f.public+"/visits/1")
	}
	for _, tc := range []struct {
		name  string
		args  []string
		want  string
		usage bool
	}{
		{"a missing reason is caught before calling", []string{"get-patient", "--mode", "modern"}, "--reason is required", true},
		{"a blank reason is no reason", []string{"get-patient", "--mode", "modern", "--reason", "  "}, "--reason is required", true},
		{"an unknown mode names the modes", []string{"get-patient", "--mode", "modren", "--reason", "r"}, `unknown mode "modren"; want legacy, shadow, fallback, dual-write or modern`, true},
		{"a percent above 100 is refused", []string{"get-patient", "--percent", "120", "--reason", "r"}, "want a number from 0 to 100", true},
		{"a percent on a mode without one is refused", []string{"get-patient", "--mode", "shadow", "--percent", "50", "--reason", "r"}, "--percent applies to fallback and modern; get-patient would be shadow", true},
		{"--clear takes no mode", []string{"get-patient", "--clear", "--mode", "modern", "--reason", "r"}, "takes no --mode", true},
		{"nothing to change", []string{"get-patient", "--reason", "r"}, "say what to change", true},
		{"an unknown route is named", []string{"get-patiens", "--mode", "modern", "--reason", "r"}, `no route named "get-patiens"`, false},
		{"a gate's refusal names the number and hints at --force", []string{"get-visit", "--mode", "modern", "--reason", "r"}, "fallback rate 100% is above the gate's 1%\nrun the command again with --force", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := strangler(t, append([]string{"routes", "set"}, tc.args...)...)
			if r.err == nil {
				t.Fatalf("routes set succeeded: %s", r.stdout)
			}
			if !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("error = %q, want it to contain %q", r.err, tc.want)
			}
			var u usageError
			if got := errors.As(r.err, &u); got != tc.usage {
				t.Errorf("usage error: got %v, want %v", got, tc.usage)
			}
		})
	}

	t.Run("--force flips past the gate", func(t *testing.T) {
		out := strangler(t, "routes", "set", "get-visit", "--mode", "modern", "--reason", "r", "--force").must(t)
		if want := "get-visit: fallback at 50% -> modern (forced past the gates)\n"; out != want {
			t.Errorf("set --force printed %q, want %q", out, want)
		}
	})
}

func TestRoutesReport(t *testing.T) {
	f := startRoutesFacade(t)
	strangler := cli(f.admin)

	t.Run("every route has its periods and a verdict", func(t *testing.T) {
		out := strangler(t, "routes", "report").must(t)
		for _, want := range []string{
			"get-patient (legacy)\n",
			"get-visit (fallback at 50%)\n",
			"  24h  0         0       0          0                  0\n",
			"  last fallback:         none in 30d\n",
			"  verdict:               not yet: modern served 0 requests in the last 7d",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("report lacks %q:\n%s", want, out)
			}
		}
		if got := strings.Count(out, "verdict:"); got != 3 {
			t.Errorf("%d verdicts, want 3:\n%s", got, out)
		}
	})

	t.Run("one route by name, or as JSON", func(t *testing.T) {
		out := strangler(t, "routes", "report", "list-photos").must(t)
		if !strings.HasPrefix(out, "list-photos (shadow)\n") || strings.Contains(out, "get-patient") {
			t.Errorf("report of list-photos:\n%s", out)
		}
		var rep struct{ Route, Verdict string }
		if err := json.Unmarshal([]byte(strangler(t, "routes", "report", "--json", "list-photos").must(t)), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Route != "list-photos" || !strings.HasPrefix(rep.Verdict, "not yet") {
			t.Errorf("JSON report = %+v", rep)
		}
	})

	t.Run("an unknown route is named", func(t *testing.T) {
		r := strangler(t, "routes", "report", "nope")
		if r.err == nil || !strings.Contains(r.err.Error(), `no route named "nope"`) {
			t.Errorf("err = %v", r.err)
		}
	})
}
