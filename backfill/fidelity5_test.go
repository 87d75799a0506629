package backfill_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestAnIdentityColumnGeneratedAlwaysIsRefusedBeforeCopying: PostgreSQL
// takes a value for an identity column GENERATED ALWAYS from COPY and
// refuses one from INSERT (SQLSTATE 428C9). A run mapping a source
// column to it wrote these three rows through the direct COPY without a
// word, the sequence left at 1 for the service's next row, and stopped
// the table at the first batch going the staged way (a NULL, a re-run
// with rows changed). It is refused before a row is read, at the
// column's line in the file.
func TestAnIdentityColumnGeneratedAlwaysIsRefusedBeforeCopying(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Ident (Id INT PRIMARY KEY, Num INT)",
		"CREATE TABLE ident (legacy_id bigint UNIQUE, num int GENERATED ALWAYS AS IDENTITY)",
		config.BackfillTable{Name: "ident", From: "Ident", Key: "Id", To: "ident", TargetKey: "legacy_id", Columns: cols("Id=legacy_id", "Num=num")})
	w.exec(t, "INSERT INTO Ident VALUES (1, 10), (2, 20), (3, 30)")
	for run := 1; run <= 2; run++ {
		_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
		want := `testdata/reference.yaml:20:9: backfill.tables[0].columns.num: target column "num" is an identity column GENERATED ALWAYS, which only the target may write`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("run %d: %v\nwant %q", run, err, want)
		}
		if n := w.count(t, "SELECT count(*) FROM ident"); n != 0 {
			t.Errorf("run %d: the target has %d rows, want none written", run, n)
		}
	}
	// An identity column the run leaves to the target is fine.
	w.cfg.Tables[0].Columns = cols("Id=legacy_id")
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 3 || tr.Failed != 0 {
		t.Errorf("without num: inserted %d, failed %d, want 3 and 0", tr.Inserted, tr.Failed)
	}
}

// TestHostileMariaDBValuesAreCopiedExactlyOrRefused pins, from a real
// MariaDB to a real PostgreSQL, values at the edges of their types: each
// is copied as the source has it or its row is refused with a reason
// naming the column, never the value; verify finds the copy equal (the
// refused rows missing as failed) and finds a change one digit deep.
func TestHostileMariaDBValuesAreCopiedExactlyOrRefused(t *testing.T) {
	const refused = "refused"
	cases := []struct {
		src, dst string
		vals     []string // SQL literals, the row keys 1, 2…
		want     []string // the target's text of each, or refused
	}{
		{"BIGINT UNSIGNED", "bigint", []string{"18446744073709551615", "9223372036854775807"}, []string{refused, "9223372036854775807"}},
		{"BIGINT UNSIGNED", "numeric", []string{"18446744073709551615", "9223372036854775808"}, []string{"18446744073709551615", "9223372036854775808"}},
		{"TINYINT(1)", "boolean", []string{"0", "1", "2", "-1"}, []string{"false", "true", refused, refused}},
		{"BIT(64)", "numeric", []string{"b'1111111111111111111111111111111111111111111111111111111111111111'"}, []string{"18446744073709551615"}},
		{"BIT(64)", "bigint", []string{"b'1111111111111111111111111111111111111111111111111111111111111111'"}, []string{refused}},
		{"YEAR", "smallint", []string{"0", "2155"}, []string{"0", "2155"}},
		{"DECIMAL(65,30)", "numeric", []string{"-99999999999999999999999999999999999.999999999999999999999999999999"},
			[]string{"-99999999999999999999999999999999999.999999999999999999999999999999"}},
		{"DECIMAL(40,0)", "real", []string{"1" + strings.Repeat("0", 39)}, []string{refused}},
		{"DATE", "date", []string{"'0000-00-00'", "'2024-00-15'", "'0050-06-15'", "'9999-12-31'"}, []string{refused, refused, "0050-06-15", "9999-12-31"}},
		{"DATE", "text", []string{"'0000-00-00'"}, []string{"0000-00-00"}},
		{"TIME(6)", "time", []string{"'838:59:59'", "'-01:00:00'", "'23:59:59.999999'"}, []string{refused, refused, "23:59:59.999999"}},
		{"TIME(6)", "interval", []string{"'-838:59:59.000001'", "'-00:00:00.5'"}, []string{"-838:59:59.000001", "-00:00:00.5"}},
		{"JSON", "jsonb", []string{`'{"n": 123456789012345678901234567890.000000000000000000001}'`, `'{"z": "\\u0000"}'`},
			[]string{`{"n": 123456789012345678901234567890.000000000000000000001}`, refused}},
		{"ENUM('a','b')", "text", []string{"''", "'b'"}, []string{"", "b"}},
	}
	w := newWorld(t, fixture.Sizes{}, nil)
	conn := w.legacyConn(t)
	ctx := context.Background()
	w.cfg.Tables = nil
	for i, c := range cases {
		name := fmt.Sprintf("edge%d", i)
		w.exec(t, fmt.Sprintf("CREATE TABLE %s (Id INT PRIMARY KEY, V %s)", name, c.src))
		w.pg(t, fmt.Sprintf("CREATE TABLE %s (legacy_id bigint UNIQUE, v %s)", name, c.dst))
		for j, v := range c.vals {
			if _, err := conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%d, %s)", name, j+1, v)); err != nil {
				t.Fatalf("%s: %v", c.src, err)
			}
		}
		w.cfg.Tables = append(w.cfg.Tables, config.BackfillTable{Name: name, From: name, Key: "Id", To: name, TargetKey: "legacy_id",
			Columns: cols("Id=legacy_id", "V=v"), Redact: []string{"v"}})
	}
	rep := w.run(t, backfill.Options{})
	for i, c := range cases {
		name := fmt.Sprintf("edge%d", i)
		got := map[int64]string{}
		rows, err := w.modern.Query(ctx, fmt.Sprintf("SELECT legacy_id, v::text FROM %s", name))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			var v string
			if err := rows.Scan(&id, &v); err != nil {
				t.Fatal(err)
			}
			got[id] = v
		}
		var failed int64
		for j, want := range c.want {
			v, ok := got[int64(j+1)]
			switch {
			case want == refused && ok:
				t.Errorf("%s into %s: %s became %q, want the row refused", c.src, c.dst, c.vals[j], v)
			case want == refused:
				failed++
			case !ok || v != want:
				t.Errorf("%s into %s: %s became %q (written %v), want %q", c.src, c.dst, c.vals[j], v, ok, want)
			}
		}
		tr := tableReport(t, rep, name)
		if tr.Failed != failed {
			t.Errorf("%s into %s: %d rows failed, want %d", c.src, c.dst, tr.Failed, failed)
		}
		for _, r := range failureReasons(tr) {
			if !strings.HasPrefix(r, "column v: ") {
				t.Errorf("%s into %s: reason %q does not name the column", c.src, c.dst, r)
			}
		}
	}
	for _, d := range w.verify(t, backfill.VerifyOptions{}).Tables {
		if d.Changed != 0 || d.Extra != 0 || d.Missing != d.MissingFailed {
			t.Errorf("verify of %s after the copy: %+v, want only the refused rows missing", d.Table, d)
		}
	}
	// One digit deep, in the last place each type keeps.
	w.pg(t, "UPDATE edge1 SET v = v - 1 WHERE legacy_id = 1")
	w.pg(t, "UPDATE edge6 SET v = v + 0.000000000000000000000000000001")
	w.pg(t, `UPDATE edge12 SET v = '{"n": 123456789012345678901234567890.000000000000000000002}' WHERE legacy_id = 1`)
	w.pg(t, "UPDATE edge11 SET v = v - interval '1 microsecond' WHERE legacy_id = 2")
	changed := map[string]int64{}
	for _, d := range w.verify(t, backfill.VerifyOptions{}).Tables {
		if d.Changed > 0 {
			changed[d.Table] = d.Changed
		}
	}
	if want := map[string]int64{"edge1": 1, "edge6": 1, "edge11": 1, "edge12": 1}; !maps.Equal(changed, want) {
		t.Errorf("verify after changing one digit: changed %v, want %v", changed, want)
	}
}
