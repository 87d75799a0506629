package config_test

import (
	"testing"

	"strangler/config/configfile"
)

func TestBackfillColumnsListTheTargetKeyFirst(t *testing.T) {
	cfg, err := configfile.Load("testdata/backfill_full.yaml", testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Backfill.Table("patients").ColumnNames()
	want := []string{"legacy_id", "born", "email", "first_name", "language", "last_name", "source"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want the target key first, then by name: %v", got, want)
		}
	}
}
