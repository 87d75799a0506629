package config_test

import (
	"testing"

	"strangler/config"
)

func TestMySQLDriverDSN(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"mysql://root@127.0.0.1:3306/test", "root@tcp(127.0.0.1:3306)/test"},
		{"mysql://app:p%40ss@db/hospital", "app:p@ss@tcp(db:3306)/hospital"},
		{"mysql://app@localhost/hospital?socket=/run/mysqld/mysqld.sock", "app@unix(/run/mysqld/mysqld.sock)/hospital"},
		{"mariadb://app@db:3307/h?timeout=5s", "app@tcp(db:3307)/h?timeout=5s"},
	} {
		got, err := config.MySQLDriverDSN(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("MySQLDriverDSN(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
	for _, bad := range []string{"postgres://db/x", "mysql://db/x?timeout=soon"} {
		if got, err := config.MySQLDriverDSN(bad); err == nil {
			t.Errorf("MySQLDriverDSN(%q) = %q, want an error", bad, got)
		}
	}
}

func TestBackfillColumnsListTheTargetKeyFirst(t *testing.T) {
	cfg, err := config.Load("testdata/backfill_full.yaml", testEnv(nil))
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
