package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A word left on the command line of a command that runs until stopped
// is a mistake (serve --config a.yaml b.yaml serves a.yaml alone): it is
// refused as on every other command, before anything starts.
func TestServeAndDemoRefuseStrayArguments(t *testing.T) {
	path := writeConfig(t, "", "http://127.0.0.1:1", "http://127.0.0.1:1", `  - {name: p, match: "GET /p", mode: legacy}`)
	for _, args := range [][]string{
		{"serve", "--config", path, "other.yaml"},
		{"demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "extra"},
	} {
		_, err := runQuiet(t, args...)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "unexpected argument") {
			t.Errorf("%q: got %v, want a usage error naming the unexpected argument", args, err)
		}
	}
}

// The command line's --batch, --rate and --concurrency are held to the
// bounds of the file's batch, rate and concurrency, and a --keys list
// holding no key is refused: read as no --keys, it would copy every row
// of every table. Each is a usage error, before any database is reached.
func TestBackfillFlagsAreCheckedLikeTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.yaml")
	y := "backends:\n  legacy: { url: \"http://l\" }\n  modern: { url: \"http://m\" }\n" +
		"backfill:\n  source: mysql://u:p@127.0.0.1:1/h\n  target: postgres://u:p@127.0.0.1:1/app\n" +
		"  tables:\n    - { name: patients, from: Patient, key: ID, to: patients, target_key: legacy_id, columns: { legacy_id: ID } }\n"
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flag, value, want string }{
		{"--batch", "0", "--batch: want a number of rows from 1 to 1000000, got 0"},
		{"--batch", "2000000", "--batch: want a number of rows from 1 to 1000000, got 2000000"},
		{"--concurrency", "0", "--concurrency: want a number from 1 to 64, got 0"},
		{"--concurrency", "500", "--concurrency: want a number from 1 to 64, got 500"},
		{"--rate", "-5", "--rate: want rows per second, 0 for no limit; got -5"},
		{"--keys", "patients=,", "patients= lists no key"},
		{"--keys", "patients= , ", "patients= lists no key"},
	} {
		_, err := runQuiet(t, "backfill", "--config", path, tc.flag, tc.value)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: got %v, want a usage error saying %q", tc.flag, tc.value, err, tc.want)
		}
	}
	// Within the bounds the flags pass, and the run goes on to the
	// databases, which are not there.
	for _, args := range [][]string{{"--batch", "1000000", "--concurrency", "64", "--rate", "0"}, {"--keys", "patients=7, ,8"}} {
		_, err := runQuiet(t, append([]string{"backfill", "--config", path}, args...)...)
		if u := (usageError{}); err == nil || errors.As(err, &u) {
			t.Errorf("%q: got %v, want an error reaching the databases", args, err)
		}
	}
}

// runQuiet runs args and returns what it wrote to stderr and its error.
// Its context is cancelled from the start: a command that took args
// stops at once, instead of serving for good.
func runQuiet(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stderr strings.Builder
	err := run(ctx, args, noEnv, io.Discard, &stderr)
	return stderr.String(), err
}

// A flag given twice is refused, naming it: the flag package keeps the
// last, so serve --config a.yaml --config b.yaml served b.yaml and routes
// set --mode modern --mode legacy flipped to legacy, whichever the
// operator meant. --keys adds up, and a value that looks like a flag is
// a value.
func TestAFlagGivenTwiceIsRefused(t *testing.T) {
	path := writeConfig(t, "", "http://127.0.0.1:1", "http://127.0.0.1:1", `  - {name: p, match: "GET /p", mode: legacy}`)
	for _, args := range [][]string{
		{"serve", "--config", path, "--config", path},
		{"serve", "-config=" + path, "--config", path},
		{"routes", "set", "p", "--mode", "modern", "--mode=legacy"},
		{"healthcheck", "--timeout", "1s", "--timeout", "2s"},
		{"backfill", "--config", path, "--dry-run", "--dry-run"},
	} {
		_, err := runQuiet(t, args...)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "is given twice") {
			t.Errorf("%q: got %v, want a usage error naming the flag given twice", args, err)
		}
	}
	for _, args := range [][]string{
		{"backfill", "--config", path, "--keys", "p=1", "--keys", "q=2"},
		{"routes", "set", "p", "--mode", "modern", "--reason", "--mode"},
	} {
		if _, err := runQuiet(t, args...); err != nil && strings.Contains(err.Error(), "is given twice") {
			t.Errorf("%q: got %v", args, err)
		}
	}
}

// Numbers out of range on the command line are usage errors, not a run
// that cannot do what it was asked: a healthcheck with no time to wait
// fails a healthy facade, a reference API asked to fail 200% of imports
// serves anyway.
func TestFlagsOutOfRangeAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"healthcheck", "--admin", "http://127.0.0.1:1", "--timeout", "0"},
		{"healthcheck", "--admin", "http://127.0.0.1:1", "--timeout", "-1s"},
		{"modern", "serve", "--listen", "127.0.0.1:0", "--fail-503", "200"},
		{"modern", "serve", "--listen", "127.0.0.1:0", "--fail-429", "-1"},
		{"modern", "serve", "--listen", "127.0.0.1:0", "--job-time", "-5s"},
		{"legacy", "serve", "--listen", "127.0.0.1:0", "--dsn", "mysql://u@127.0.0.1:1/h", "--seed", "-5"},
	} {
		_, err := runQuiet(t, args...)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
}

// An empty value where a script's variable was meant is refused, never
// read as the flag left out: backfill --tables "$TABLES" with TABLES
// empty would copy every table, and store backup --config F "$OUT" would
// copy the whole store before failing to name the copy.
func TestAnEmptyListOrFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.yaml")
	y := "backends:\n  legacy: { url: \"http://l\" }\n  modern: { url: \"http://m\" }\nstore: \"sqlite:" + filepath.Join(filepath.Dir(path), "state.db") + "\"\n" +
		"backfill:\n  source: mysql://u:p@127.0.0.1:1/h\n  target: postgres://u:p@127.0.0.1:1/app\n" +
		"  tables:\n    - { name: patients, from: Patient, key: ID, to: patients, target_key: legacy_id, columns: { legacy_id: ID } }\n"
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"backfill", "--config", path, "--tables", ""},
		{"backfill", "--config", path, "--tables", " , "},
		{"verify", "--config", path, "--tables="},
		{"store", "backup", "--config", path, ""},
	} {
		_, err := runQuiet(t, args...)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "state.db")); err == nil {
		t.Error("the store was opened")
	}
}

// A table --tables or --keys names that the file does not have is
// reported before any database is reached: with a database down, or
// slow to answer, the typo was found only after the connection failed.
func TestAnUnknownTableIsNamedBeforeConnecting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.yaml")
	y := "backends:\n  legacy: { url: \"http://l\" }\n  modern: { url: \"http://m\" }\n" +
		"backfill:\n  source: mysql://u:p@127.0.0.1:1/h\n  target: postgres://u:p@127.0.0.1:1/app\n" +
		"  tables:\n    - { name: patients, from: Patient, key: ID, to: patients, target_key: legacy_id, columns: { legacy_id: ID } }\n"
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backfill", "--config", path, "--tables", "patient"}, `no table "patient" in the backfill section; it has patients`},
		{[]string{"backfill", "--config", path, "--keys", "patient=1"}, `keys: no table "patient" in the backfill section; it has patients`},
		{[]string{"verify", "--config", path, "--tables", "patient"}, `no table "patient" in the backfill section; it has patients`},
	} {
		_, err := runQuiet(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.args, err, tc.want)
		}
	}
}

// config check and print take file names only, and check --strict: a
// flag was read as one ("stat --lint: no such file or directory", exit
// 1), and its help flag too.
func TestConfigCommandsRefuseFlags(t *testing.T) {
	path := writeConfig(t, "", "http://127.0.0.1:1", "http://127.0.0.1:1", `  - {name: p, match: "GET /p", mode: legacy}`)
	for _, args := range [][]string{
		{"config", "check", "--lint", path},
		{"config", "print", path, "--redact=false"},
		{"config", "print", "--strict", path},
	} {
		_, err := runQuiet(t, args...)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "unknown flag") {
			t.Errorf("%q: got %v, want a usage error naming the flag", args, err)
		}
	}
	if _, err := runQuiet(t, "config", "check", "--help"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("config check --help: got %v, want the usage", err)
	}
}
