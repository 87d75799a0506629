package dberr_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"strangler/internal/dberr"
	"strangler/internal/testdb"
)

// The canaries: a value holding quotes (which no cut between one pair of
// quotes removes), a record number and a birth date.
const (
	name = `Zelda "Canary" 'Quimby' MRN7730019`
	mrn  = "MRN7730019"
)

// canaries are the parts of the values that must not survive a cut.
var canaries = []string{"Zelda", "Canary", "Quimby", "7730019", "1901-02-3", "65-4329", "1961"}

// TestPostgresErrorsLoseTheirValues: PostgreSQL's own errors, each got
// from the server, quote the value they refuse; cut, they name the
// type, constraint or column and no value, wrapped or joined.
func TestPostgresErrorsLoseTheirValues(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TYPE mood AS ENUM ('ok');
		CREATE TABLE privacy8_patients (mrn text UNIQUE CHECK (mrn <> 'MRN0'), born date, n int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO privacy8_patients (mrn) VALUES ($1)", mrn); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sql  string
		args []any
		want string
	}{
		{"SELECT $1::int", []any{name}, "invalid input syntax for type integer (SQLSTATE 22P02)"},
		{"SELECT $1::date", []any{"1901-02-33"}, "date/time field value out of range (SQLSTATE 22008)"},
		{"SELECT $1::date", []any{"1901-02-3x " + name}, "invalid input syntax for type date (SQLSTATE 22007)"},
		{"SELECT $1::mood", []any{name}, "invalid input value for enum mood (SQLSTATE 22P02)"},
		{"SELECT $1::int", []any{"77300190000"}, "value is out of range for type integer (SQLSTATE 22003)"},
		{"SELECT $1::text[]", []any{name}, "malformed array literal (SQLSTATE 22P02)"},
		{"SELECT convert_from($1, 'UTF8')", []any{[]byte("Zelda\xe9Canary")}, "invalid byte sequence for encoding (SQLSTATE 22021)"},
		{"SELECT $1::tsvector", []any{"Zelda:::Canary"}, "syntax error in tsvector (SQLSTATE 42601)"},
		{"SELECT $1::tsquery", []any{"Zelda & "}, "no operand in tsquery (SQLSTATE 42601)"},
		{"INSERT INTO privacy8_patients (mrn) VALUES ($1)", []any{mrn}, `duplicate key value violates unique constraint "privacy8_patients_mrn_key", key (mrn) (SQLSTATE 23505)`},
	} {
		_, err := conn.Exec(ctx, c.sql, c.args...)
		var pg *pgconn.PgError
		if !errors.As(err, &pg) {
			t.Fatalf("%s: %v, want an error from the server", c.sql, err)
		}
		before := pg.Error() + pg.Detail + pg.Where
		wrapped := fmt.Errorf("copy patients: %w", errors.Join(errors.New("first"), err))
		got := dberr.Cut(wrapped).Error()
		if want := "copy patients: first\nERROR: " + c.want; got != want {
			t.Errorf("%s quoting %q: cut to %q, want %q", c.sql, before, got, want)
		}
		if again := dberr.Cut(fmt.Errorf("again: %w", err)).Error(); again != "again: ERROR: "+c.want {
			t.Errorf("%s cut a second time: %q", c.sql, again)
		}
		if !errors.Is(dberr.Cut(wrapped), err) {
			t.Errorf("%s: the cut error does not wrap the database's", c.sql)
		}
	}
}

// TestIntegrityViolationsNameTheKeyNotItsValue: PostgreSQL's integrity
// violations name a constraint, whose name need not say which columns it
// holds (uq_7); the key's columns are in the detail, with the values
// (`Key (ssn)=(123-45-6789) already exists`). The message gets the
// columns and none of the values, whatever a value or a column's name
// holds; a detail without a key (a check's failing row) or one a
// function wrote adds nothing.
func TestIntegrityViolationsNameTheKeyNotItsValue(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS btree_gist;
		CREATE TABLE privacy10_wards (id text PRIMARY KEY);
		CREATE TABLE privacy10_patients (ssn text, site text, email text, ward text REFERENCES privacy10_wards,
			"odd)=(name" text UNIQUE, note text CHECK (note <> 'x'), room text, EXCLUDE USING gist (room WITH =));
		CREATE UNIQUE INDEX uq_7 ON privacy10_patients (ssn, site);
		CREATE UNIQUE INDEX uq_8 ON privacy10_patients (lower(email));
		CREATE UNIQUE INDEX uq_9 ON privacy10_patients (coalesce(site, ')=('), ward)`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO privacy10_wards VALUES ('Zelda Canary')`,
		`INSERT INTO privacy10_patients VALUES ('987-65-4329', 'a', 'zelda@quimby.example', 'Zelda Canary', 'Zelda)=(Canary', NULL, 'MRN7730019')`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		sql  string
		args []any
		want string
	}{
		{"INSERT INTO privacy10_patients (ssn, site) VALUES ($1, 'a')", []any{"987-65-4329"},
			`duplicate key value violates unique constraint "uq_7", key (ssn, site)`},
		{"INSERT INTO privacy10_patients (email) VALUES ($1)", []any{"Zelda@Quimby.example"},
			`duplicate key value violates unique constraint "uq_8", key (lower(email))`},
		{"INSERT INTO privacy10_patients (site, ward) VALUES ('a', $1)", []any{"Zelda Canary"},
			`duplicate key value violates unique constraint "uq_9", key (COALESCE(site, ')=('::text), ward)`},
		{`INSERT INTO privacy10_patients ("odd)=(name") VALUES ($1)`, []any{"Zelda)=(Canary"},
			`duplicate key value violates unique constraint "privacy10_patients_odd)=(name_key", key ("odd)=(name")`},
		{"INSERT INTO privacy10_patients (ward) VALUES ($1)", []any{"Quimby " + mrn},
			`insert or update on table "privacy10_patients" violates foreign key constraint "privacy10_patients_ward_fkey", key (ward)`},
		{"DELETE FROM privacy10_wards WHERE id = $1", []any{"Zelda Canary"},
			`update or delete on table "privacy10_wards" violates foreign key constraint "privacy10_patients_ward_fkey" on table "privacy10_patients", key (id)`},
		{"INSERT INTO privacy10_patients (room) VALUES ($1)", []any{mrn},
			`conflicting key value violates exclusion constraint "privacy10_patients_room_excl", key (room)`},
		{"DO $$ BEGIN RAISE unique_violation USING MESSAGE = 'not again', DETAIL = 'Key (Zelda)=(Canary) already exists.'; END $$", nil,
			"raised by function inline_code_block"},
		{"INSERT INTO privacy10_patients (note, ssn) VALUES ('x', $1)", []any{name},
			`new row for relation "privacy10_patients" violates check constraint "privacy10_patients_note_check"`},
	} {
		_, err := conn.Exec(ctx, c.sql, c.args...)
		var pg *pgconn.PgError
		if !errors.As(err, &pg) || !strings.HasPrefix(pg.Code, "23") {
			t.Fatalf("%s: %v, want an integrity violation from the server", c.sql, err)
		}
		if got := dberr.PostgresMessage(pg); got != c.want || hasCanary(got) {
			t.Errorf("%s (detail %q): worded %q, want %q", c.sql, pg.Detail, got, c.want)
		}
		if got := dberr.Cut(err).Error(); hasCanary(got) {
			t.Errorf("%s: cut to %q, which holds a value", c.sql, got)
		}
	}
}

// TestMySQLErrorsLoseTheirValues: MariaDB's (and MySQL's) messages quote
// the value in single quotes; cut, they keep the key or column they name.
func TestMySQLErrorsLoseTheirValues(t *testing.T) {
	db, err := sql.Open("mysql", testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE Privacy8Patient (MRN VARCHAR(40) UNIQUE, N INT, Born DATE, Short VARCHAR(3))",
		"INSERT INTO Privacy8Patient (MRN) VALUES ('" + mrn + "')",
		"CREATE TABLE Privacy10Ward (MRN VARCHAR(40), Site VARCHAR(10), PRIMARY KEY (MRN, Site))",
		"CREATE TABLE Privacy10Bed (Id INT PRIMARY KEY, MRN VARCHAR(40), UNIQUE KEY Bed_MRN (MRN), FOREIGN KEY (MRN) REFERENCES Privacy10Ward (MRN) ON UPDATE CASCADE)",
		"INSERT INTO Privacy10Ward VALUES ('" + mrn + "', 'north'), ('Zelda Canary', 'south')",
		"INSERT INTO Privacy10Bed VALUES (1, '" + mrn + "'), (2, 'Zelda Canary')",
		"CREATE TABLE Privacy10Born (Born DATE) PARTITION BY RANGE (YEAR(Born)) (PARTITION old VALUES LESS THAN (1900))",
		"CREATE TABLE Privacy11Hold (MRN VARCHAR(80))",
		`CREATE TRIGGER Privacy11Hold BEFORE INSERT ON Privacy11Hold FOR EACH ROW BEGIN
			DECLARE msg VARCHAR(200) DEFAULT CONCAT('patient ', NEW.MRN, ' is on hold');
			SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = msg;
		END`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		sql  string
		arg  any
		want string
	}{
		{"INSERT INTO Privacy8Patient (MRN) VALUES (?)", mrn, "Error 1062 (23000): Duplicate entry for key 'MRN'"},
		{"INSERT INTO Privacy8Patient (MRN) VALUES (CONCAT(?, ''))", mrn, "Error 1062 (23000): Duplicate entry for key 'MRN'"},
		{"INSERT INTO Privacy8Patient (N) VALUES (?)", name, "Error 1366 (22007): Incorrect integer value for column `"},
		{"INSERT INTO Privacy8Patient (Born) VALUES (?)", "1901-02-3x " + name, "Error 1292 (22007): Incorrect date value for column `"},
		{"INSERT INTO Privacy8Patient (Short) VALUES (?)", name, "Error 1406 (22001): Data too long for column 'Short' at row 1"},
		{"UPDATE Privacy10Ward SET MRN = ? WHERE MRN = '" + mrn + "'", "Zelda Canary",
			"Error 1761 (23000): Foreign key constraint for table 'Privacy10Ward' would lead to a duplicate entry in table 'Privacy10Bed', key 'Bed_MRN'"},
		{"INSERT INTO Privacy10Born VALUES (?)", "1961-07-14", "Error 1526 (HY000): Table has no partition"},
		{"INSERT INTO Privacy8Patient (N) SELECT COLUMN_GET(COLUMN_CREATE('a', ?), 'a' AS INT)", name,
			"Error 1918 (22007): Encountered illegal value when converting to INT"},
		{"INSERT INTO Privacy8Patient (N) SELECT COLUMN_GET(COLUMN_CREATE('a', CAST(? AS DOUBLE)), 'a' AS INT)", "1961e30",
			"Error 1916 (22003): Got overflow when converting to INT. Value truncated"},
		{"INSERT INTO Privacy11Hold VALUES (?)", name, "Error 1644 (45000): signalled by a trigger or routine"},
		{"SELECT ? FROM Privacy8Patient WHERE WHERE MRN = '" + mrn + "'", name,
			"Error 1064 (42000): You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use at line 1"},
	} {
		_, err := db.Exec(c.sql, c.arg)
		if err == nil {
			t.Fatalf("%s: no error", c.sql)
		}
		before := err.Error()
		got := dberr.Cut(fmt.Errorf("legacy: %w", err)).Error()
		if !strings.HasPrefix(got, "legacy: "+c.want) || hasCanary(got) {
			t.Errorf("%s quoting %q: cut to %q, want it to begin %q and hold no value", c.sql, before, got, c.want)
		}
	}
}

func hasCanary(s string) bool {
	for _, c := range canaries {
		if strings.Contains(s, c) {
			return true
		}
	}
	return false
}

// TestCutLeavesOtherErrorsAlone: nil stays nil, and an error no database
// gave keeps its text, quotes and all.
func TestCutLeavesOtherErrorsAlone(t *testing.T) {
	if dberr.Cut(nil) != nil {
		t.Error("Cut(nil) is not nil")
	}
	plain := errors.New(`not a database's: "Zelda"`)
	if got := dberr.Cut(plain); got != plain || got.Error() != `not a database's: "Zelda"` {
		t.Errorf("an error from elsewhere became %q", got)
	}
}

// TestRaisedMessagesLoseTheirWords: a trigger's RAISE (or ASSERT) says
// what its author wrote, as often as not the row (`RAISE EXCEPTION 'bad %',
// NEW.ssn`), under any code it likes; cut, it names the function, and
// a RAISE outside a named function names none.
func TestRaisedMessagesLoseTheirWords(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE privacy11_patients (ssn text, mrn text);
		CREATE FUNCTION privacy11_guard() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.mrn IS NULL THEN
				RAISE EXCEPTION 'bad ssn %', NEW.ssn USING DETAIL = 'row ' || NEW.ssn;
			END IF;
			RAISE EXCEPTION 'mrn % taken', NEW.mrn USING ERRCODE = 'unique_violation';
		END $$;
		CREATE TRIGGER privacy11_guard BEFORE INSERT ON privacy11_patients
			FOR EACH ROW EXECUTE FUNCTION privacy11_guard()`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sql  string
		args []any
		want string
	}{
		{"INSERT INTO privacy11_patients (ssn) VALUES ($1)", []any{"987-65-4329 " + name},
			"ERROR: raised by function privacy11_guard() (SQLSTATE P0001)"},
		{"INSERT INTO privacy11_patients (mrn) VALUES ($1)", []any{mrn},
			"ERROR: raised by function privacy11_guard() (SQLSTATE 23505)"},
		{"INSERT INTO privacy11_patients (mrn) SELECT 'MRN7730019' FROM generate_series(1, 1)", nil,
			"ERROR: raised by function privacy11_guard() (SQLSTATE 23505)"},
		{"DO $$ BEGIN RAISE EXCEPTION 'Zelda Canary %', 1961; END $$", nil,
			"ERROR: raised by function inline_code_block (SQLSTATE P0001)"},
		{"DO $$ BEGIN ASSERT 1 = 2, 'Zelda Canary 1961'; END $$", nil,
			"ERROR: raised by function inline_code_block (SQLSTATE P0004)"},
	} {
		_, err := conn.Exec(ctx, c.sql, c.args...)
		var pg *pgconn.PgError
		if !errors.As(err, &pg) {
			t.Fatalf("%s: %v, want an error from the server", c.sql, err)
		}
		got := dberr.Cut(fmt.Errorf("copy patients: %w", err)).Error()
		if want := "copy patients: " + c.want; got != want || hasCanary(got) {
			t.Errorf("%s raising %q: cut to %q, want %q", c.sql, pg.Error(), got, want)
		}
	}
}

// TestStatementsBuiltAtRunTimeLoseTheirNames: a PL/pgSQL function that
// builds a statement from a row's values (a table per record number,
// EXECUTE'd, as partition-routing triggers do) fails with the names it
// built, the record number in them: table missing, a duplicate in a
// constraint named after it, in every form of dynamic statement and
// from a function called by another. Cut, each names the function that
// built the statement; a statement written in a function keeps its
// message.
func TestStatementsBuiltAtRunTimeLoseTheirNames(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE privacy13_chart_mrn7730019 (id int PRIMARY KEY);
		INSERT INTO privacy13_chart_mrn7730019 VALUES (1);
		CREATE FUNCTION privacy13_file(mrn text) RETURNS int LANGUAGE plpgsql AS $$
		BEGIN
			EXECUTE format('INSERT INTO %I VALUES (1)', 'privacy13_chart_' || lower(mrn));
			RETURN 1;
		END $$;
		CREATE FUNCTION privacy13_loop(mrn text) RETURNS int LANGUAGE plpgsql AS $$
		DECLARE r record;
		BEGIN
			FOR r IN EXECUTE 'SELECT * FROM ' || quote_ident('privacy13_' || mrn) LOOP END LOOP;
			RETURN 1;
		END $$;
		CREATE FUNCTION privacy13_query(mrn text) RETURNS SETOF int LANGUAGE plpgsql AS $$
		BEGIN
			RETURN QUERY EXECUTE 'SELECT 1 FROM ' || quote_ident('privacy13_' || mrn);
		END $$;
		CREATE FUNCTION privacy13_open(mrn text) RETURNS int LANGUAGE plpgsql AS $$
		DECLARE c refcursor;
		BEGIN
			OPEN c FOR EXECUTE 'SELECT 1 FROM ' || quote_ident('privacy13_' || mrn);
			RETURN 1;
		END $$;
		CREATE FUNCTION privacy13_outer(mrn text) RETURNS int LANGUAGE plpgsql AS $$
		BEGIN
			RETURN privacy13_loop(mrn);
		END $$;
		CREATE FUNCTION privacy13_static() RETURNS int LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO privacy13_nosuch VALUES (1);
			RETURN 1;
		END $$`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sql  string
		want string
	}{
		{"SELECT privacy13_file($1)", "a statement built at run time by function privacy13_file(text) failed (SQLSTATE 23505)"},
		{"SELECT privacy13_file($1 || 'x')", "a statement built at run time by function privacy13_file(text) failed (SQLSTATE 42P01)"},
		{"SELECT privacy13_loop($1)", "a statement built at run time by function privacy13_loop(text) failed (SQLSTATE 42P01)"},
		{"SELECT privacy13_query($1)", "a statement built at run time by function privacy13_query(text) failed (SQLSTATE 42P01)"},
		{"SELECT privacy13_open($1)", "a statement built at run time by function privacy13_open(text) failed (SQLSTATE 42P01)"},
		{"SELECT privacy13_outer($1)", "a statement built at run time by function privacy13_loop(text) failed (SQLSTATE 42P01)"},
		{"SELECT privacy13_static() FROM (SELECT $1::text) v", `relation "privacy13_nosuch" does not exist (SQLSTATE 42P01)`},
	} {
		_, err := conn.Exec(ctx, c.sql, mrn)
		var pg *pgconn.PgError
		if !errors.As(err, &pg) {
			t.Fatalf("%s: %v, want an error from the server", c.sql, err)
		}
		got := dberr.Cut(fmt.Errorf("copy patients: %w", err)).Error()
		if want := "copy patients: ERROR: " + c.want; got != want || hasCanary(got) {
			t.Errorf("%s failing with %q: cut to %q, want %q", c.sql, pg.Error(), got, want)
		}
	}
}

// TestMySQLErrorsNotGotHereLoseTheirValues: errors whose message quotes
// a value but that this MariaDB gives for no statement the test could
// find (ER_DATA_TRUNCATED rounds silently, an ALTER TABLE's resequencing
// duplicate comes as ER_DUP_ENTRY), worded as the server's message list
// (perror) words them.
func TestMySQLErrorsNotGotHereLoseTheirValues(t *testing.T) {
	for _, c := range []struct {
		err  *mysql.MySQLError
		want string
	}{
		{&mysql.MySQLError{Number: 1917, Message: "Truncated value '" + name + "' when converting to INT"},
			"Error 1917: Truncated value when converting to INT"},
		{&mysql.MySQLError{Number: 1741, Message: "Key value '" + name + "' was not found in table 'test.Patient'"},
			"Error 1741: Key value"},
		{&mysql.MySQLError{Number: 1569, Message: "ALTER TABLE causes auto_increment resequencing, resulting in duplicate entry '" + mrn + "' for key 'MRN'"},
			"Error 1569: ALTER TABLE causes auto_increment resequencing, resulting in duplicate entry for key 'MRN'"},
	} {
		if got := dberr.Cut(c.err).Error(); got != c.want || hasCanary(got) {
			t.Errorf("%q: cut to %q, want %q", c.err.Message, got, c.want)
		}
	}
}

// TestADatabasesMessageIsOneLine: a name may hold a line break, and a
// message quoting it spread one
// error over several lines of a terminal or a log, where each line reads
// as an error of its own. Cut, the break is shown as an escape, as a
// config error shows one. (A syntax error's quote of a multi-line query
// is cut whole.)
func TestADatabasesMessageIsOneLine(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE leftovers1_patients (\"m\nrn\" text UNIQUE)"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		exec func(string) error
		sql  string
		want string
	}{
		{func(q string) error { _, err := conn.Exec(ctx, q); return err }, "SELECT \"no\nsuch\"",
			`ERROR: column "no\u000asuch" does not exist (SQLSTATE 42703)`},
		{func(q string) error { _, err := conn.Exec(ctx, q); return err }, "INSERT INTO leftovers1_patients VALUES ('a'), ('a')",
			`ERROR: duplicate key value violates unique constraint "leftovers1_patients_m\u000arn_key", key ("m\u000arn") (SQLSTATE 23505)`},
		{func(q string) error { _, err := db.Exec(q); return err }, "SELECT `no\nsuch`",
			`Error 1054 (42S22): Unknown column 'no\u000asuch' in 'SELECT'`},
		{func(q string) error { _, err := db.Exec(q); return err }, "SELECT 1 FROM WHERE\n1",
			`Error 1064 (42000): You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use at line 1`},
	} {
		err := c.exec(c.sql)
		if err == nil {
			t.Fatalf("%q: no error", c.sql)
		}
		if got := dberr.Cut(fmt.Errorf("copy patients: %w", err)).Error(); got != "copy patients: "+c.want {
			t.Errorf("%q failing with %q: cut to %q, want %q", c.sql, err, got, "copy patients: "+c.want)
		}
	}
}

// TestSignalledMessagesLoseTheirWords: a legacy trigger's SIGNAL says
// what its author wrote, as often as not the row (`SET MESSAGE_TEXT =
// msg` built from NEW.MRN), under whatever number and SQLSTATE its
// author picked: a number of its own, one of the server's, or none (a
// not-found condition). Each, got from a real MariaDB, keeps its number
// and SQLSTATE and says it was signalled (or, under the number of an
// error that quotes a value, that its words are not the server's); none
// keeps the row.
func TestSignalledMessagesLoseTheirWords(t *testing.T) {
	db, err := sql.Open("mysql", testdb.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE Privacy12Hold (Kind INT, MRN VARCHAR(80))",
		`CREATE TRIGGER Privacy12Hold BEFORE INSERT ON Privacy12Hold FOR EACH ROW BEGIN
			DECLARE msg VARCHAR(200) DEFAULT CONCAT('patient ', NEW.MRN, ' is on hold');
			CASE NEW.Kind
			WHEN 1 THEN SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = 30001, MESSAGE_TEXT = msg;
			WHEN 2 THEN SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 20001, MESSAGE_TEXT = msg;
			WHEN 3 THEN SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 1062, MESSAGE_TEXT = msg;
			WHEN 4 THEN SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1526, MESSAGE_TEXT = msg;
			WHEN 5 THEN SIGNAL SQLSTATE '02000' SET MESSAGE_TEXT = msg;
			WHEN 6 THEN SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1146, MESSAGE_TEXT = msg;
			ELSE SIGNAL SQLSTATE '22000' SET MESSAGE_TEXT = msg;
			END CASE;
		END`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	const said, notTheServers = "signalled by a trigger or routine", "message not kept: not the server's English words (a SIGNAL's, or lc_messages)"
	for kind, want := range map[int]string{
		1: "Error 30001 (45000): " + said,
		2: "Error 20001 (HY000): " + said,
		3: "Error 1062 (23000): " + notTheServers,
		4: "Error 1526 (HY000): " + notTheServers,
		5: "Error 1643 (02000): " + said,
		7: "Error 1644 (22000): " + said,
	} {
		_, err := db.Exec("INSERT INTO Privacy12Hold VALUES (?, ?)", kind, name)
		var my *mysql.MySQLError
		if !errors.As(err, &my) {
			t.Fatalf("kind %d: %v, want an error from the server", kind, err)
		}
		got := dberr.Cut(fmt.Errorf("legacy: %w", err)).Error()
		if got != "legacy: "+want || hasCanary(got) {
			t.Errorf("a SIGNAL saying %q: cut to %q, want %q", my.Error(), got, "legacy: "+want)
		}
	}
	// Under a number of the server's that quotes no value, and its own
	// SQLSTATE, a SIGNAL reads as that error: its text is kept (the
	// README says so).
	_, err = db.Exec("INSERT INTO Privacy12Hold VALUES (6, 'the words')")
	if got := dberr.Cut(err); got == nil || !strings.Contains(got.Error(), "the words") {
		t.Errorf("a SIGNAL borrowing ER_NO_SUCH_TABLE: cut to %v, want its text kept", got)
	}
	// The server's own errors under those numbers keep their names.
	if _, err := db.Exec("CREATE TABLE Privacy12Unique (MRN VARCHAR(40) UNIQUE)"); err != nil {
		t.Fatal(err)
	}
	db.Exec("INSERT INTO Privacy12Unique VALUES (?)", mrn)
	_, err = db.Exec("INSERT INTO Privacy12Unique VALUES (?)", mrn)
	if got := dberr.Cut(err); got == nil || got.Error() != "Error 1062 (23000): Duplicate entry for key 'MRN'" {
		t.Errorf("the server's duplicate entry: cut to %v", got)
	}
	_, err = db.Exec("SELECT * FROM Privacy12Missing")
	if got := dberr.Cut(err); got == nil || !strings.Contains(got.Error(), "Privacy12Missing' doesn't exist") {
		t.Errorf("the server's missing table: cut to %v, want the table named", got)
	}
}

// TestAFunctionWhoseNameSaysLineIsNamedWhole: PostgreSQL quotes a
// function name holding " line " in its context lines, whose own
// " line N at" follows it; the function is named whole.
func TestAFunctionWhoseNameSaysLineIsNamedWhole(t *testing.T) {
	for _, c := range []struct{ routine, where, want string }{
		{"", `PL/pgSQL function "file line 2"(text) line 3 at EXECUTE`, `a statement built at run time by function "file line 2"(text) failed`},
		{"exec_stmt_raise", `PL/pgSQL function "guard line 2"() line 4 at RAISE`, `raised by function "guard line 2"()`},
	} {
		pg := &pgconn.PgError{Severity: "ERROR", Code: "42P01", Message: `relation "visits_` + mrn + `" does not exist`, Where: c.where, Routine: c.routine}
		if got := dberr.PostgresMessage(pg); got != c.want {
			t.Errorf("%s: %q, want %q", c.where, got, c.want)
		}
	}
}
