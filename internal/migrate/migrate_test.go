package migrate_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"strangler/internal/migrate"
	"strangler/internal/testdb"
)

// engine is one database engine with the schema settings its users give
// the runner.
type engine struct {
	name string
	// open returns a new empty database and how to open connections to it.
	open func(t *testing.T) func() *sql.DB
	// schema is the engine's Schema without migrations.
	schema migrate.Schema
	// ph is the engine's first placeholder.
	ph string
}

func record(ph string) func(ctx context.Context, ex migrate.Execer, m migrate.Migration) error {
	return func(ctx context.Context, ex migrate.Execer, m migrate.Migration) error {
		_, err := ex.ExecContext(ctx, "INSERT INTO versions (version) VALUES ("+ph+")", m.Version)
		return err
	}
}

func sqlOpen(t *testing.T, driver, dsn string) func() *sql.DB {
	return func() *sql.DB {
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

func engines() []engine {
	return []engine{
		{
			name: "sqlite",
			open: func(t *testing.T) func() *sql.DB {
				path := filepath.Join(t.TempDir(), "db.sqlite")
				return sqlOpen(t, "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_txlock=immediate")
			},
			schema: migrate.Schema{
				Bootstrap: "CREATE TABLE IF NOT EXISTS versions (version INTEGER PRIMARY KEY)",
				Applied:   "SELECT version FROM versions",
				Record:    record("$1"),
			},
			ph: "$1",
		},
		{
			name: "postgres",
			open: func(t *testing.T) func() *sql.DB { return sqlOpen(t, "pgx", testdb.Postgres(t)) },
			schema: migrate.Schema{
				Bootstrap: "CREATE TABLE IF NOT EXISTS versions (version integer PRIMARY KEY)",
				Applied:   "SELECT version FROM versions",
				Record:    record("$1"),
				TxLock:    "SELECT pg_advisory_xact_lock(hashtext('migrate_test'), hashtext(current_schema()))",
			},
			ph: "$1",
		},
		{
			name: "mariadb",
			open: func(t *testing.T) func() *sql.DB { return sqlOpen(t, "mysql", testdb.MySQL(t)) },
			schema: migrate.Schema{
				Bootstrap:   "CREATE TABLE IF NOT EXISTS versions (version INT NOT NULL PRIMARY KEY) ENGINE=InnoDB",
				Applied:     "SELECT version FROM versions",
				Record:      record("?"),
				SessionLock: migrate.MySQLLock("migrate_test"),
			},
			ph: "?",
		},
	}
}

// load reads migrations from files given as name, text pairs.
func load(t *testing.T, files ...string) []migrate.Migration {
	t.Helper()
	fsys := fstest.MapFS{}
	for i := 0; i < len(files); i += 2 {
		fsys[files[i]] = &fstest.MapFile{Data: []byte(files[i+1])}
	}
	list, err := migrate.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func count(t *testing.T, db *sql.DB, query string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func names(ms []migrate.Migration) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name)
	}
	return strings.Join(s, " ")
}

func TestRun(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()

			t.Run("a database at the current version gets nothing run again; a later file is applied alone", func(t *testing.T) {
				db := e.open(t)()
				s := e.schema
				s.Migrations = load(t,
					"0001_events.sql", "CREATE TABLE events (id INT);\n-- a comment line\nINSERT INTO events VALUES (1);\n",
					"0002_more.sql", "INSERT INTO events VALUES (2);\nINSERT INTO events VALUES (3);\n")
				res, err := s.Run(ctx, db)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := names(res.Applied), "0001_events 0002_more"; got != want {
					t.Errorf("first run applied %q, want %q", got, want)
				}
				res, err = s.Run(ctx, db)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Applied) != 0 || res.Newest != 2 {
					t.Errorf("second run applied %q (newest %d), want nothing (newest 2)", names(res.Applied), res.Newest)
				}
				s.Migrations = append(s.Migrations, load(t, "0010_later.sql", "INSERT INTO events VALUES (10);")...)
				res, err = s.Run(ctx, db)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := names(res.Applied), "0010_later"; got != want {
					t.Errorf("third run applied %q, want %q", got, want)
				}
				if got := count(t, db, "SELECT count(*) FROM events"); got != 4 {
					t.Errorf("got %d events, want 4: each statement run once", got)
				}
			})

			t.Run("a migration numbered below the newest applied one is still applied", func(t *testing.T) {
				db := e.open(t)()
				s := e.schema
				s.Migrations = load(t, "0001_a.sql", "CREATE TABLE a (id INT);", "0060_c.sql", "CREATE TABLE c (id INT);")
				if _, err := s.Run(ctx, db); err != nil {
					t.Fatal(err)
				}
				s.Migrations = load(t, "0001_a.sql", "CREATE TABLE a (id INT);", "0050_b.sql", "CREATE TABLE b (id INT);",
					"0060_c.sql", "CREATE TABLE c (id INT);")
				res, err := s.Run(ctx, db)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := names(res.Applied), "0050_b"; got != want {
					t.Errorf("applied %q, want %q", got, want)
				}
				if res.Newest != 60 {
					t.Errorf("newest %d, want 60", res.Newest)
				}
			})

			t.Run("processes starting at once apply each migration once", func(t *testing.T) {
				open := e.open(t)
				s := e.schema
				s.Migrations = load(t,
					"0001_counter.sql", "CREATE TABLE IF NOT EXISTS counter (n INT);",
					"0002_count.sql", "INSERT INTO counter VALUES (1);")
				var wg sync.WaitGroup
				errs := make([]error, 4)
				for i := range errs {
					db := open()
					wg.Go(func() { _, errs[i] = s.Run(ctx, db) })
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("process %d: %v", i, err)
					}
				}
				if got := count(t, open(), "SELECT count(*) FROM counter"); got != 1 {
					t.Errorf("the counting migration ran %d times, want once", got)
				}
			})

			t.Run("a migration that fails is not recorded and the error names it", func(t *testing.T) {
				db := e.open(t)()
				s := e.schema
				s.Migrations = load(t, "0001_ok.sql", "CREATE TABLE ok (id INT);", "0002_bad.sql", "CREATE TABLE nonsense (;")
				_, err := s.Run(ctx, db)
				if err == nil || !strings.Contains(err.Error(), "0002_bad") {
					t.Fatalf("got %v, want an error naming 0002_bad", err)
				}
				if s.SessionLock == nil {
					// One transaction: the run left no trace at all.
					var n int
					if err := db.QueryRow("SELECT count(*) FROM ok").Scan(&n); err == nil {
						t.Errorf("table ok exists although the run failed: one transaction should have undone it")
					}
					return
				}
				// DDL commits at once: what ran before stays, recorded, and
				// the failed migration is not.
				if got := count(t, db, "SELECT count(*) FROM versions WHERE version = 1"); got != 1 {
					t.Errorf("0001 recorded %d times, want once", got)
				}
				if got := count(t, db, "SELECT count(*) FROM versions WHERE version = 2"); got != 0 {
					t.Errorf("the failed migration is recorded")
				}
			})
		})
	}
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{"a name without a version is refused", fstest.MapFS{"init.sql": {}}, "init.sql: name must start with a positive version number"},
		{"version 0 is refused", fstest.MapFS{"0000_init.sql": {}}, "0000_init.sql: name must start with a positive version number"},
		{"two files of one version are refused", fstest.MapFS{"0001_a.sql": {}, "0001_b.sql": {}}, "migrations 0001_a and 0001_b share a version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := migrate.Load(tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	t.Run("files are in version order, other files ignored", func(t *testing.T) {
		list, err := migrate.Load(fstest.MapFS{"0010_b.sql": {}, "0002_a.sql": {}, "README": {}, "0100_c.sql": {}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := names(list), "0002_a 0010_b 0100_c"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}
