package mysqldsn_test

import (
	"testing"

	"strangler/internal/mysqldsn"
)

func TestDriverDSN(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"mysql://root@127.0.0.1:3306/test", "root@tcp(127.0.0.1:3306)/test"},
		{"mysql://app:p%40ss@db/hospital", "app:p@ss@tcp(db:3306)/hospital"},
		{"mysql://app@localhost/hospital?socket=/run/mysqld/mysqld.sock", "app@unix(/run/mysqld/mysqld.sock)/hospital"},
		{"mariadb://app@db:3307/h?timeout=5s", "app@tcp(db:3307)/h?timeout=5s"},
	} {
		got, err := mysqldsn.DriverDSN(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("DriverDSN(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
	for _, bad := range []string{"postgres://db/x", "mysql://db/x?timeout=soon"} {
		if got, err := mysqldsn.DriverDSN(bad); err == nil {
			t.Errorf("DriverDSN(%q) = %q, want an error", bad, got)
		}
	}
}
