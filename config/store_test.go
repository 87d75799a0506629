package config_test

import (
	"strings"
	"testing"

	"strangler/config"
	"strangler/config/configfile"
)

func TestStateSnapshotDefaults(t *testing.T) {
	parse := func(t *testing.T, extra string, env map[string]string) *config.Config {
		t.Helper()
		cfg, err := configfile.Parse("s.yaml", []byte(`
backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: "http://modern.internal" }
`+extra), configfile.Env{Getenv: func(k string) string { return env[k] }})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	t.Run("next to a SQLite store", func(t *testing.T) {
		if got, want := parse(t, `store: "sqlite:/var/lib/strangler/state.db?sync=full"`, nil).StateSnapshot, "/var/lib/strangler/state.db.snapshot.json"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("in the temporary directory for PostgreSQL, the same whatever the password", func(t *testing.T) {
		a := parse(t, `store: "postgres://strangler:one@db:5432/state"`, map[string]string{"TMPDIR": "/run/tmp"}).StateSnapshot
		b := parse(t, `store: "postgres://strangler:two@db:5432/state"`, map[string]string{"TMPDIR": "/run/tmp"}).StateSnapshot
		c := parse(t, `store: "postgres://strangler:one@db:5432/other"`, map[string]string{"TMPDIR": "/run/tmp"}).StateSnapshot
		if !strings.HasPrefix(a, "/run/tmp/strangler-snapshot-") || a != b {
			t.Errorf("got %q and %q, want one file in /run/tmp for both passwords", a, b)
		}
		if a == c {
			t.Errorf("two stores share the snapshot %q", a)
		}
	})
	t.Run("as the file says", func(t *testing.T) {
		if got, want := parse(t, `state_snapshot: /data/flags.json`, nil).StateSnapshot, "/data/flags.json"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestStoreWithSeveralHosts(t *testing.T) {
	for _, tc := range []struct{ dsn, err string }{
		{"postgres://s@db-a:5432,db-b:5432/state?target_session_attrs=read-write", ""},
		{"postgres://s@db-a:5432,db-b:5432/state?target_session_attrs=primary", ""},
		{"postgres://s@db-a:5432/state", ""},
		{"postgres://s@db-a:5432,db-b:5432/state", "needs target_session_attrs=read-write"},
		{"postgres://s@db-a:5432,db-b:5432/state?target_session_attrs=any", "needs target_session_attrs=read-write"},
	} {
		var d config.StoreDSN
		err := d.UnmarshalText([]byte(tc.dsn))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: got %v, want %q", tc.dsn, err, tc.err)
		}
	}
}

// An embedded store without a file name is refused when the file is read
// (config check), not when the facade opens the store.
func TestStoreNeedsAFileName(t *testing.T) {
	for _, s := range []string{"sqlite:", "sqlite:?sync=full"} {
		var d config.StoreDSN
		if err := d.UnmarshalText([]byte(s)); err == nil || !strings.Contains(err.Error(), "want sqlite:PATH") {
			t.Errorf("%s: got %v, want it refused", s, err)
		}
	}
	var d config.StoreDSN
	if err := d.UnmarshalText([]byte("sqlite:./s.db?sync=full")); err != nil {
		t.Errorf("sqlite:./s.db?sync=full: %v", err)
	}
}
