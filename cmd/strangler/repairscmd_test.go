package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startDeadLetterFacade runs a facade whose dual-write secondary refuses
// every write with 400, so each write to update-patient is dead-lettered,
// and makes two: to patients 1 and 2.
func startDeadLetterFacade(t *testing.T) *running {
	t.Helper()
	legacy := backendAnswering(t, `{"ok":true}`)
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such patient", http.StatusBadRequest)
	})
	f := startAdminFacade(t, legacy.URL, modern.URL, `  - {name: update-patient, match: "PUT /patients/{id}", mode: dual-write, primary: legacy}
`)
	for _, id := range []string{"1", "2"} {
		req, _ := http.NewRequest("PUT", "http://"+f.public+"/patients/"+id, strings.NewReader(`{"name":"Ann Example"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT /patients/%s: %s", id, resp.Status)
		}
	}
	return f
}

// repairIDs waits until n repairs are dead and returns their ids, newest
// first.
func repairIDs(t *testing.T, f *running, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous for a loaded machine
	for {
		var list struct {
			Repairs []struct{ ID string } `json:"repairs"`
		}
		adminGet(t, f.admin, "/admin/repairs?state=dead", &list)
		if len(list.Repairs) == n {
			var ids []string
			for _, r := range list.Repairs {
				ids = append(ids, r.ID)
			}
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead repairs after 30s, want %d", len(list.Repairs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRepairsCommands(t *testing.T) {
	f := startDeadLetterFacade(t)
	strangler := cli(f.admin)
	ids := repairIDs(t, f, 2)
	second, first := ids[0], ids[1]

	t.Run("list shows the dead writes with the reason", func(t *testing.T) {
		out := strangler(t, "repairs", "list").must(t)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") {
			t.Fatalf("list:\n%s", out)
		}
		got := strings.Join(strings.Fields(lines[2]), " ")
		want := "^" + first + ` update-patient PUT /patients/\{id:h:[0-9a-f]{16}\} dead 1 the secondary \(modern\) answered 400 Bad Request `
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("row = %q, want it to match %q: the patient's id hashed", got, want)
		}
	})

	t.Run("list pages with --before", func(t *testing.T) {
		r := strangler(t, "repairs", "list", "--limit", "1")
		if out := r.must(t); !strings.Contains(out, second) || strings.Contains(out, first) {
			t.Errorf("list --limit 1:\n%s", out)
		}
		if want := "add --before " + second + "\n"; !strings.HasSuffix(r.stderr, want) {
			t.Errorf("stderr %q, want it to end %q", r.stderr, want)
		}
		r = strangler(t, "repairs", "list", "--limit", "1", "--before", second)
		if out := r.must(t); !strings.Contains(out, first) || strings.Contains(out, second) {
			t.Errorf("list --limit 1 --before %s:\n%s", second, out)
		}
		r = strangler(t, "repairs", "list", "--limit", "3")
		if r.stderr != "" {
			t.Errorf("a page short of the limit: stderr %q, want none", r.stderr)
		}
		r = strangler(t, "repairs", "list", "--before", "no-such-id")
		if r.err == nil || !strings.Contains(r.err.Error(), `no repair with id "no-such-id"`) {
			t.Errorf("--before a made-up id: err = %v", r.err)
		}
	})

	t.Run("list filters by state and route", func(t *testing.T) {
		if out := strangler(t, "repairs", "list", "--state", "pending").must(t); out != "no repairs match\n" {
			t.Errorf("list --state pending:\n%s", out)
		}
		if out := strangler(t, "repairs", "list", "--route", "update-patient", "--limit", "1").must(t); !strings.Contains(out, second) || strings.Contains(out, first) {
			t.Errorf("list --limit 1:\n%s", out)
		}
		r := strangler(t, "repairs", "list", "--state", "deadd")
		if r.err == nil || !strings.Contains(r.err.Error(), `unknown state "deadd"`) {
			t.Errorf("err = %v", r.err)
		}
		req, _ := http.NewRequest("GET", "http://"+f.admin+"/admin/repairs?state=deadd", nil)
		req.Header.Set("Authorization", "Bearer "+aliceToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "want one of sent, pending") {
			t.Errorf("GET /admin/repairs?state=deadd: %s %s", resp.Status, body)
		}
	})

	t.Run("show has no body without --body", func(t *testing.T) {
		r := strangler(t, "repairs", "show", first)
		out := r.must(t)
		if !regexp.MustCompile(`write: PUT /patients/\{id:h:[0-9a-f]{16}\}\n`).MatchString(oneSpaced(out)) || !strings.Contains(oneSpaced(out), "state: dead\n") {
			t.Errorf("show:\n%s", out)
		}
		if strings.Contains(out, "Ann Example") || strings.Contains(r.stderr, "audit") {
			t.Errorf("show without --body shows the body or says it was audited:\n%s%s", out, r.stderr)
		}
	})

	t.Run("show --body has the body and says it was audited", func(t *testing.T) {
		r := strangler(t, "repairs", "show", "--body", first)
		out := r.must(t)
		for _, want := range []string{"\nPUT /patients/1\n", "Content-Type: application/json\n", `{"name":"Ann Example"}`} {
			if !strings.Contains(out, want) {
				t.Errorf("show --body lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(r.stderr, "recorded in the audit log") {
			t.Errorf("stderr = %q", r.stderr)
		}
	})

	t.Run("retry and discard need a reason", func(t *testing.T) {
		for _, args := range [][]string{{"retry", first}, {"discard", first, "--yes"}} {
			r := strangler(t, append([]string{"repairs"}, args...)...)
			var u usageError
			if !errors.As(r.err, &u) || !strings.Contains(r.err.Error(), "--reason is required") {
				t.Errorf("%s without a reason: err = %v", args[0], r.err)
			}
		}
	})

	t.Run("retry puts it back to pending", func(t *testing.T) {
		out := strangler(t, "repairs", "retry", first, "--reason", "modern fixed").must(t)
		if want := "^repair " + first + ` \(update-patient PUT /patients/\{id:h:[0-9a-f]{16}\}\) is pending now\n$`; !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("retry printed %q, want %q", out, want)
		}
	})

	t.Run("discard off a terminal needs --yes", func(t *testing.T) {
		r := strangler(t, "repairs", "discard", second, "--reason", "r")
		if r.err == nil || !strings.Contains(r.err.Error(), "add --yes") {
			t.Errorf("err = %v", r.err)
		}
	})

	t.Run("discard on a terminal asks, and no keeps it", func(t *testing.T) {
		var stdout, stderr strings.Builder
		err := repairsCommand(context.Background(), []string{"discard", second, "--reason", "r"},
			func(k string) string { return aliceEnv(f.admin)[k] }, console{in: strings.NewReader("n\n"), interactive: true}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "not confirmed") {
			t.Errorf("err = %v", err)
		}
		if want := `Discard PUT /patients/\{id:h:[0-9a-f]{16}\} on update-patient \(dead, 1 attempts\)\?`; !regexp.MustCompile(want).MatchString(stderr.String()) {
			t.Errorf("prompt = %q, want it to match %q", stderr.String(), want)
		}
	})

	t.Run("discard sets discarded", func(t *testing.T) {
		var stdout strings.Builder
		err := repairsCommand(context.Background(), []string{"discard", second, "--reason", "duplicate of 1"},
			func(k string) string { return aliceEnv(f.admin)[k] }, console{in: strings.NewReader("y\n"), interactive: true}, &stdout, &strings.Builder{})
		if err != nil {
			t.Fatal(err)
		}
		if want := "^repair " + second + ` \(update-patient PUT /patients/\{id:h:[0-9a-f]{16}\}\) is discarded now\n$`; !regexp.MustCompile(want).MatchString(stdout.String()) {
			t.Errorf("discard printed %q, want %q", stdout.String(), want)
		}
	})

	t.Run("an unknown id is named", func(t *testing.T) {
		r := strangler(t, "repairs", "retry", "no-such-id", "--reason", "r")
		if r.err == nil || !strings.Contains(r.err.Error(), `no repair with id "no-such-id"`) {
			t.Errorf("err = %v", r.err)
		}
	})

	t.Run("reading, retrying and discarding are audited with alice and the reason", func(t *testing.T) {
		var audit struct {
			Entries []struct{ Actor, Action, Reason, Detail string } `json:"entries"`
		}
		adminGet(t, f.admin, "/admin/audit", &audit)
		var got []string
		for _, e := range audit.Entries {
			got = append(got, e.Actor+" "+e.Action+" "+e.Detail+" "+e.Reason)
		}
		want := []string{
			"alice repair_discard " + second + " duplicate of 1",
			"alice repair_retry " + first + " modern fixed",
			"alice repair_read " + first + " ",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// oneSpaced is text with each line's runs of blanks made one space, so a
// test does not depend on how wide tabwriter made the columns.
func oneSpaced(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
