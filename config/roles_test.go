package config

import (
	"testing"
	"time"
)

func TestRolesAreOrdered(t *testing.T) {
	for _, tc := range []struct {
		have, need Role
		allows     bool
	}{
		{RoleViewer, RoleViewer, true}, {RoleViewer, RoleOperator, false}, {RoleViewer, RoleAdmin, false},
		{RoleOperator, RoleViewer, true}, {RoleOperator, RoleOperator, true}, {RoleOperator, RoleAdmin, false},
		{RoleAdmin, RoleViewer, true}, {RoleAdmin, RoleOperator, true}, {RoleAdmin, RoleAdmin, true},
		{"", RoleViewer, false}, {"root", RoleViewer, false}, {RoleAdmin, "root", false},
	} {
		if got := tc.have.Allows(tc.need); got != tc.allows {
			t.Errorf("%q allows %q: got %v, want %v", tc.have, tc.need, got, tc.allows)
		}
	}
}

func TestATokenWorksThroughItsExpiryDay(t *testing.T) {
	var d Date
	if err := d.UnmarshalText([]byte("2026-03-31")); err != nil {
		t.Fatal(err)
	}
	tok := Token{Name: "bot", Expires: &d}
	if tok.Expired(time.Date(2026, 3, 31, 23, 59, 59, 999999999, time.UTC)) {
		t.Error("expired on its last day")
	}
	if !tok.Expired(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("still works the day after")
	}
	if !tok.Expired(time.Date(2026, 4, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600))) {
		t.Error("still works at 01:00 CET the day after, which is midnight UTC")
	}
	if (Token{Name: "forever"}).Expired(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("a token without expires expired")
	}
}
