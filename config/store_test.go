package config_test

import (
	"errors"
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

// A store the facade would refuse to open, or a backfill target the
// backfill would refuse to connect to, is an error of `config check`
// (and so of a reload) at the field's line, never only of the next
// start; and the message never holds the password.
func TestAStoreTheFacadeCannotOpenIsAnError(t *testing.T) {
	const head = "backends:\n  legacy: { url: \"http://legacy:8080\" }\n  modern: { url: \"http://modern:9090\" }\n"
	dir := t.TempDir()
	for _, tc := range []struct{ y, field, want string }{
		{"store: \"postgres://u:s3cr3t-pw@db:5432/state?sslmode=requir\"\n", "store", "sslmode is invalid"},
		{"store: \"postgres://u:s3cr3t-pw@db:99999/state\"\n", "store", "invalid port"},
		{"store: \"postgres://u:s3cr3t-pw@db/state?connect_timeout=soon\"\n", "store", "invalid connect_timeout"},
		{"store: \"postgres://u:s3cr3t-pw@db/state?sslmode=verify-full&sslrootcert=/dev/zero\"\n", "store", "sslrootcert: /dev/zero is a device"},
		{"store: \"postgres://u:s3cr3t-pw@db/state?sslmode=verify-full&sslrootcert=" + dir + "/none.pem\"\n", "store", "unable to read CA file"},
		{"store: \"sqlite:" + dir + "/state.db?sync=ful\"\n", "store", `unknown option "sync=ful"; the only one is sync=full`},
		{"store: \"sqlite:" + dir + "/state.db?sync=full&_auth_pass=s3cr3t-pw\"\n", "store", `unknown option "sync=full&_auth_pass=…"`},
		{"store: \"sqlite:" + dir + "/a#b.db\"\n", "store", "must not contain #"},
		{"store: \"sqlite:" + dir + "\"\n", "store", dir + " is a directory: want a regular file"},
		{"store: \"sqlite:/dev/zero\"\n", "store", "/dev/zero is a device"},
		{"backfill:\n  source: \"mysql://u:s3cr3t-pw@db:3306/h\"\n  target: \"postgres://u:s3cr3t-pw@db:5432/app?sslmode=nope\"\n" +
			"  tables: [{ name: p, from: P, key: ID, to: p, target_key: legacy_id, columns: { legacy_id: ID } }]\n", "backfill.target", "sslmode is invalid"},
	} {
		_, err := configfile.Parse("c.yaml", []byte(head+tc.y), testEnv(nil))
		var errs config.Errors
		if !errors.As(err, &errs) {
			t.Errorf("%s: got %v, want config.Errors", tc.y, err)
			continue
		}
		line := 4
		if tc.field == "backfill.target" {
			line = 6
		}
		if len(errs) != 1 || errs[0].Line != line || errs[0].Field != tc.field || !strings.Contains(errs[0].Msg, tc.want) {
			t.Errorf("%s: got %v, want one error at line %d on %s saying %q", tc.y, errs, line, tc.field, tc.want)
		}
		if strings.Contains(errs.Error(), "s3cr3t") {
			t.Errorf("%s: the message shows the password: %s", tc.y, errs)
		}
	}
	for _, store := range []string{
		"postgres://u:s3cr3t-pw@db:5432/state?sslmode=require",
		"postgres://u:s3cr3t-pw@db1,db2/state?target_session_attrs=read-write&connect_timeout=5",
		"sqlite:" + dir + "/state.db?sync=full",
		// The driver reads no password file it is not given.
		"postgres://u@db/state?passfile=" + dir + "/none",
	} {
		if _, err := configfile.Parse("c.yaml", []byte(head+"store: \""+store+"\"\n"), testEnv(nil)); err != nil {
			t.Errorf("%s: %v", store, err)
		}
	}
}
