package dsn

import "testing"

func TestSQLiteSplitsTheFileFromItsOptions(t *testing.T) {
	for _, c := range []struct {
		in, path, options string
		ok                bool
	}{
		{"sqlite:./strangler.db", "./strangler.db", "", true},
		{"sqlite:/var/lib/s@b/state.db?sync=full", "/var/lib/s@b/state.db", "sync=full", true},
		{"sqlite:", "", "", true},
		{"postgres://app:pw@db/sqlite:x.db", "", "", false},
		{"./strangler.db", "", "", false},
	} {
		path, options, ok := SQLite(c.in)
		if path != c.path || options != c.options || ok != c.ok {
			t.Errorf("SQLite(%q) = %q, %q, %v; want %q, %q, %v", c.in, path, options, ok, c.path, c.options, c.ok)
		}
	}
}
