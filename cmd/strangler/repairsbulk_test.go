package main

import (
	"slices"
	"strings"
	"testing"
)

// TestRepairsOfARouteAreDiscardedInOneCommand: the dead letters of a
// route are looked at with --dry-run, then discarded with one command,
// each audited; before, it took one command per write.
func TestRepairsOfARouteAreDiscardedInOneCommand(t *testing.T) {
	f := startDeadLetterFacade(t)
	ids := repairIDs(t, f, 2)
	strangler := cli(f.admin)

	out := strangler(t, "repairs", "discard", "--route", "update-patient", "--state", "dead", "--dry-run").must(t)
	if want := "2 dead writes of update-patient would be discarded: " + strings.Join(ids, " ") + "\n"; out != want {
		t.Errorf("--dry-run printed %q, want %q", out, want)
	}
	if r := strangler(t, "repairs", "discard", "--route", "update-patient", "--state", "dead", "--reason", "retired"); r.err == nil || !strings.Contains(r.err.Error(), "add --yes") {
		t.Errorf("off a terminal without --yes: %v, want a refusal asking for --yes", r.err)
	}
	out = strangler(t, "repairs", "discard", "--route", "update-patient", "--state", "dead", "--reason", "route retired, ticket 7", "--yes").must(t)
	if want := "2 of 2 dead writes of update-patient discarded, each audited\n"; out != want {
		t.Errorf("discard printed %q, want %q", out, want)
	}
	var audit struct {
		Entries []struct{ Actor, Action, Reason, Detail string } `json:"entries"`
	}
	adminGet(t, f.admin, "/admin/audit?route=update-patient", &audit)
	var got []string
	for _, e := range audit.Entries {
		if e.Action == "repair_discard" && e.Reason == "route retired, ticket 7" {
			got = append(got, e.Detail)
		}
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(ids)); !slices.Equal(got, want) {
		t.Errorf("discards audited for %v, want %v", got, ids)
	}
}
