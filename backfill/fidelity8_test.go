package backfill_test

import (
	"net/http"
	"reflect"
	"slices"
	"sync"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestAPrefixIndexDoesNotMakeAKeyUnique: UNIQUE (Name(6)) compares the
// first six characters, where utf8mb4_unicode_ci tells Straße from
// Strasse (Straße's six are Strasse's seven), while in full they are one
// key to it, as ORDER BY and > compare them. The plan took the index as
// proof that the key is unique, and a page ending on one of them skipped
// the other: with a batch of one, 2 of the 3 rows were read and copied,
// without a word (verify, whose chunks of 10,000 rows did not end
// there, found the third missing; a chunk that did would have missed it
// too). The key is refused before a row is copied, saying what to do,
// and the query the refusal suggests copies every row.
func TestAPrefixIndexDoesNotMakeAKeyUnique(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE fidelity8_Street (Name VARCHAR(40) COLLATE utf8mb4_unicode_ci NOT NULL, V INT NOT NULL, UNIQUE KEY (Name(6)))",
		"CREATE TABLE fidelity8_streets (name text UNIQUE, v int NOT NULL)",
		config.BackfillTable{Name: "streets", From: "fidelity8_Street", Key: "Name", To: "fidelity8_streets", TargetKey: "name", Columns: cols("Name=name", "V=v")})
	w.exec(t, "INSERT INTO fidelity8_Street VALUES ('Straße', 1), ('Strasse', 2), ('Strbbb', 3)")
	w.cfg.Batch = 1

	keyRefusedThenQueryCopies(t, w, "fidelity8_streets", 3, "backfill.tables[0].key: Name holds keys that differ in their bytes but are one key to its collation",
		"NameKey", "SELECT COALESCE(CONVERT(Name USING utf8mb4) COLLATE utf8mb4_nopad_bin, '') AS NameKey, V FROM fidelity8_Street", "NameKey=name", "V=v")
}

// TestAYearKeyOfZeroIsReadBackAsItself: the driver sends YEAR 0000 (the
// year a lenient legacy stores for one it could not read) as 0, and
// MySQL reads the text '0' as the year 2000, as it reads '99' as 1999.
// Passed back as text, the page after 0000 began after 2000, skipping
// 1999 and 2000, and row 0000 asked for by its key was 2000's: its
// failure was forgotten as a row gone from legacy, and a re-run never
// copied it once it could be.
func TestAYearKeyOfZeroIsReadBackAsItself(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE fidelity8_Budget (FiscalYear YEAR PRIMARY KEY, Amount INT NOT NULL)",
		"CREATE TABLE fidelity8_budgets (fiscal_year int UNIQUE, amount int NOT NULL CHECK (amount >= 0))",
		config.BackfillTable{Name: "budgets", From: "fidelity8_Budget", Key: "FiscalYear", To: "fidelity8_budgets", TargetKey: "fiscal_year",
			Columns: cols("FiscalYear=fiscal_year", "Amount=amount")})
	// Year 0000 has an amount the target refuses.
	w.exec(t, "INSERT INTO fidelity8_Budget VALUES (0, -1), (1999, 2), (2000, 3), (2001, 4)")
	w.cfg.Batch = 1
	years := func() []int64 {
		rows, err := w.modern.Query(t.Context(), "SELECT fiscal_year FROM fidelity8_budgets ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []int64
		for rows.Next() {
			var y int64
			if err := rows.Scan(&y); err != nil {
				t.Fatal(err)
			}
			out = append(out, y)
		}
		return out
	}
	failed := func() int64 {
		return w.count(t, "SELECT count(*) FROM strangler_backfill_failures WHERE table_name = 'budgets' AND source_key = '0'")
	}

	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Read != 4 || tr.Inserted != 3 || tr.Failed != 1 {
		t.Errorf("first run: read %d, inserted %d, failed %d; want 4, 3 and 1 (year 0000)", tr.Read, tr.Inserted, tr.Failed)
	}
	if got := years(); !reflect.DeepEqual(got, []int64{1999, 2000, 2001}) {
		t.Errorf("modern holds years %v, want 1999, 2000 and 2001", got)
	}
	tr = w.run(t, backfill.Options{}).Tables[0]
	if tr.Failed != 1 || tr.NotInSource != 0 || failed() != 1 {
		t.Errorf("plain re-run: failed %d, not in source %d, failures on record for year 0000 %d; want 1, 0 and 1", tr.Failed, tr.NotInSource, failed())
	}
	w.exec(t, "UPDATE fidelity8_Budget SET Amount = 5 WHERE FiscalYear = 0")
	tr = w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 1 || tr.Failed != 0 || failed() != 0 {
		t.Errorf("plain re-run once year 0000 can be copied: inserted %d, failed %d, failures on record %d; want 1, 0 and 0", tr.Inserted, tr.Failed, failed())
	}
	if got := years(); !reflect.DeepEqual(got, []int64{0, 1999, 2000, 2001}) {
		t.Errorf("modern holds years %v, want 0, 1999, 2000 and 2001", got)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want no deviation", d.Tables)
	}
}

// TestKeysOneToLegacysCollationStayApartInModern: under MariaDB's
// case- and accent-insensitive PAD SPACE collations, Straße and Strasse,
// zebra and 'zebra ', Zoo and ZOO are one key; PostgreSQL keeps them
// apart. Legacy respelling a key is a new row to modern, and the old
// spelling a row legacy no longer has, although legacy finds a row when
// asked for it: verify counts it extra, and --propagate-deletes deletes
// it, leaving modern with legacy's bytes.
func TestKeysOneToLegacysCollationStayApartInModern(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE fidelity8_Tag (Name VARCHAR(20) COLLATE utf8mb4_unicode_ci PRIMARY KEY, V INT NOT NULL)",
		"CREATE TABLE fidelity8_tags (name text UNIQUE, v int NOT NULL)",
		config.BackfillTable{Name: "tags", From: "fidelity8_Tag", Key: "Name", To: "fidelity8_tags", TargetKey: "name", Columns: cols("Name=name", "V=v")})
	w.exec(t, "INSERT INTO fidelity8_Tag VALUES ('Straße', 1), ('apple', 2), ('Äpfel', 3), ('zebra ', 4), ('Zoo', 5)")
	w.cfg.Batch = 1
	names := func() []string {
		rows, err := w.modern.Query(t.Context(), "SELECT name FROM fidelity8_tags")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}

	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Read != 5 || tr.Inserted != 5 {
		t.Errorf("copy: read %d, inserted %d; want 5 and 5", tr.Read, tr.Inserted)
	}
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Compared != 5 || tr.Written() != 0 || tr.Extra != 0 {
		t.Errorf("plain re-run: compared %d, written %d, extra %d; want 5, 0 and 0", tr.Compared, tr.Written(), tr.Extra)
	}
	w.exec(t, "UPDATE fidelity8_Tag SET Name = 'Strasse' WHERE Name = 'Straße'")
	w.exec(t, "UPDATE fidelity8_Tag SET Name = 'zebra' WHERE V = 4")
	w.exec(t, "UPDATE fidelity8_Tag SET Name = 'ZOO' WHERE Name = 'Zoo'")
	d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	slices.Sort(d.MissingKeys)
	slices.Sort(d.ExtraKeys)
	if !reflect.DeepEqual(d.MissingKeys, []string{"Strasse", "ZOO", "zebra"}) || !reflect.DeepEqual(d.ExtraKeys, []string{"Straße", "Zoo", "zebra "}) {
		t.Errorf("verify: missing %q, extra %q; want the new spellings missing and the old ones extra", d.MissingKeys, d.ExtraKeys)
	}
	tr := w.run(t, backfill.Options{PropagateDeletes: true}).Tables[0]
	if tr.Inserted != 3 || tr.Deleted != 3 {
		t.Errorf("--propagate-deletes: inserted %d, deleted %d (%q); want 3 and 3", tr.Inserted, tr.Deleted, tr.DeletedKeys)
	}
	if got, want := names(), []string{"Strasse", "ZOO", "apple", "zebra", "Äpfel"}; !reflect.DeepEqual(got, want) {
		t.Errorf("modern holds %q, want %q", got, want)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want no deviation", d.Tables)
	}
}

// TestHostileKeysArePagedOneAtATime: keys whose text MySQL reads back
// as another type (DECIMAL digits beyond a double's, zero and impossible
// dates, TIMEs beyond a day or below zero, BINARY padded with zero
// bytes, MariaDB's UUID, which sorts by its time fields, and a key made
// of columns of mixed types) are each passed back to MySQL as the last
// key of a page of one row: every row is copied once, a restart finds
// them all present, and verify finds nothing.
func TestHostileKeysArePagedOneAtATime(t *testing.T) {
	for _, c := range []struct {
		name, legacy, modern, query string
		rows                        []string
		// keys are modern's keys as text.
		keys []string
	}{
		{name: "DECIMAL(65,30)", legacy: "DECIMAL(65,30)", modern: "numeric",
			rows: []string{"1.000000000000000000000000000001", "1.000000000000000000000000000002", "1", "-0.000000000000000000000000000001",
				"99999999999999999999999999999999999.999999999999999999999999999999"},
			keys: []string{"-0.000000000000000000000000000001", "1.000000000000000000000000000000", "1.000000000000000000000000000001",
				"1.000000000000000000000000000002", "99999999999999999999999999999999999.999999999999999999999999999999"}},
		{name: "DECIMAL(30,0) beyond a double's integers", legacy: "DECIMAL(30,0)", modern: "numeric(30)",
			rows: []string{"9007199254740992", "9007199254740993", "9007199254740994", "100000000000000000000000000001", "100000000000000000000000000002"},
			keys: []string{"9007199254740992", "9007199254740993", "9007199254740994", "100000000000000000000000000001", "100000000000000000000000000002"}},
		{name: "DATETIME with zero and impossible dates", legacy: "DATETIME", modern: "text",
			rows: []string{"'0000-00-00 00:00:00'", "'2024-00-10 00:00:00'", "'2024-02-00 00:00:00'", "'2024-02-30 10:00:00'", "'2024-02-31 10:00:00'", "'2024-03-01 00:00:00'"},
			keys: []string{"0000-00-00 00:00:00", "2024-00-10 00:00:00", "2024-02-00 00:00:00", "2024-02-30 10:00:00", "2024-02-31 10:00:00", "2024-03-01 00:00:00"}},
		{name: "TIME beyond a day and below zero", legacy: "TIME(1)", modern: "text",
			rows: []string{"'-838:59:59'", "'-00:00:00.5'", "'00:00:00'", "'24:00:00'", "'100:00:00.1'", "'838:59:59'"},
			keys: []string{"-838:59:59.0", "-00:00:00.5", "00:00:00.0", "24:00:00.0", "100:00:00.1", "838:59:59.0"}},
		{name: "BINARY(4) padded with zero bytes", legacy: "BINARY(4)", modern: "bytea",
			rows: []string{"X'00'", "X'0001'", "X'61'", "X'62'"},
			keys: []string{`\x00000000`, `\x00010000`, `\x61000000`, `\x62000000`}},
		{name: "MariaDB's UUID", legacy: "UUID", modern: "uuid",
			rows: []string{"'00000000-0000-0000-0000-000000000002'", "'00000001-0000-0000-0000-000000000001'", "'ffffffff-0000-0000-0000-000000000000'",
				"'00000000-0000-0000-0001-000000000000'"},
			keys: []string{"00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0001-000000000000", "00000001-0000-0000-0000-000000000001",
				"ffffffff-0000-0000-0000-000000000000"}},
		{name: "a key of columns of mixed types", legacy: "INT", modern: "text",
			query: "SELECT COALESCE(CONCAT_WS('|', K, Bed, Since), '') AS K, V FROM fidelity8_Key",
			rows:  []string{"1", "2", "10", "11"},
			keys:  []string{"1|b1|2024-01-01", "10|b10|2024-01-10", "11|b11|2024-01-11", "2|b2|2024-01-02"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, fixture.Sizes{}, nil)
			bt := config.BackfillTable{Name: "keys", From: "fidelity8_Key", Key: "K", To: "fidelity8_keys", TargetKey: "k", Columns: cols("K=k", "V=v")}
			if c.query != "" {
				bt.From, bt.Query = "", c.query
			}
			w.mapTable(t, "CREATE TABLE fidelity8_Key (K "+c.legacy+" PRIMARY KEY, V INT NOT NULL, Bed VARCHAR(10) COLLATE utf8mb4_general_ci, Since DATE)",
				"CREATE TABLE fidelity8_keys (k "+c.modern+" UNIQUE, v int NOT NULL)", bt)
			// A monolith's lenient session stores zero and impossible dates.
			conn := w.legacyConn(t)
			if _, err := conn.ExecContext(t.Context(), "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'"); err != nil {
				t.Fatal(err)
			}
			for i, r := range c.rows {
				if _, err := conn.ExecContext(t.Context(), "INSERT IGNORE INTO fidelity8_Key VALUES ("+r+", ?, CONCAT('b', ?), DATE_ADD('2024-01-01', INTERVAL ? - 1 DAY))",
					i, r, r); err != nil {
					t.Fatalf("%s: %v", r, err)
				}
			}
			w.cfg.Batch = 1
			n := int64(len(c.keys))
			if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Read != n || tr.Inserted != n || tr.Failed != 0 {
				t.Errorf("copy: read %d, inserted %d, failed %d (%q); want %d, %d and 0", tr.Read, tr.Inserted, tr.Failed, failureReasons(tr), n, n)
			}
			rows, err := w.modern.Query(t.Context(), "SELECT k::text FROM fidelity8_keys")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var k string
				if err := rows.Scan(&k); err != nil {
					t.Fatal(err)
				}
				got = append(got, k)
			}
			rows.Close()
			slices.Sort(got)
			if want := slices.Sorted(slices.Values(c.keys)); !reflect.DeepEqual(got, want) {
				t.Errorf("modern's keys %q, want %q", got, want)
			}
			if tr := w.run(t, backfill.Options{Restart: true}).Tables[0]; tr.Read != n || tr.Present != n || tr.Written() != 0 {
				t.Errorf("restart: read %d, present %d, written %d; want %d, %d and 0", tr.Read, tr.Present, tr.Written(), n, n)
			}
			if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 || d.Tables[0].LegacyRows != n {
				t.Errorf("verify: %+v, want %d rows and no deviation", d.Tables, n)
			}
		})
	}
}

// TestAnIdempotencyKeyNamesItsRowAsTheServiceReadsIt: a header value's
// last spaces and tabs are not part of it (RFC 9110), so the service read
// the Idempotency-Key of key 'A1\t' (a row of its own under MariaDB's PAD
// SPACE collations, a tab being no space) as codes:A1, row A1's, and an
// API honouring keys answered it with A1's answer: the row was never
// applied. A key with a line break was never sent (Go refuses such a
// header), and its row failed. Every row's key reaches the service as
// its own, and one spelling another's encoding stays apart from it.
func TestAnIdempotencyKeyNamesItsRowAsTheServiceReadsIt(t *testing.T) {
	seen := &seenKeys{}
	w := newConsentAPI(t, seen)
	if _, err := w.legacy.Exec("CREATE TABLE fidelity8_Code (Code VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, V INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"A1", "A1\t", "A\t1", "A1\n", "A1%09"} {
		if _, err := w.legacy.Exec("INSERT INTO fidelity8_Code VALUES (?, ?)", k, i); err != nil {
			t.Fatal(err)
		}
	}
	cfg := w.config(t)
	bt := &cfg.Tables[0]
	bt.Name, bt.From, bt.Key = "codes", "fidelity8_Code", "Code"
	bt.TargetAPI.Method, bt.TargetAPI.Path, bt.TargetAPI.Body = http.MethodPost, "/codes", map[string]config.Column{"v": {From: "V"}}
	bt.TargetAPI.Retry.MaxAttempts = 1

	if tr := w.run(t, cfg, backfill.Options{}).Tables[0]; tr.Written() != 5 || tr.Failed != 0 {
		t.Errorf("migrated %d, failed %d (%+v); want 5 and 0", tr.Written(), tr.Failed, tr.Failures)
	}
	want := []string{"codes:A\t1", "codes:A1", "codes:A1%09", "codes;A1%09", "codes;A1%0A"}
	if got := seen.sorted(); !reflect.DeepEqual(got, want) {
		t.Errorf("the service read the keys %q, want %q", got, want)
	}
	if tr := w.run(t, cfg, backfill.Options{}).Tables[0]; tr.Written() != 0 || tr.Present != 5 || len(seen.sorted()) != 5 {
		t.Errorf("plain re-run: migrated %d, present %d, requests so far %d; want 0, 5 and 5", tr.Written(), tr.Present, len(seen.sorted()))
	}
}

// seenKeys is an API that answers every request 200 and records the
// Idempotency-Key of each as a server reads it.
type seenKeys struct {
	mu   sync.Mutex
	keys []string
}

func (s *seenKeys) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
}

// sorted is the keys read so far, sorted.
func (s *seenKeys) sorted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(slices.Values(s.keys))
}
