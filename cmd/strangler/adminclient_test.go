package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// aliceToken is the admin token of the facades these tests start; its
// name, alice, is the actor in the audit log.
const aliceToken = "alice-token-0123456789"

// writeAdminConfig writes a config with an admin token for alice and a
// SQLite store, and returns its path. (writeConfig writes an admin
// section without tokens.)
func writeAdminConfig(t *testing.T, legacy, modern, routes string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens: [{name: alice, token: %q, role: admin}]
backends:
  legacy: { url: %q, timeout: 2s }
  modern: { url: %q, timeout: 2s }
debug_headers: true
shutdown: { delay: 0s, grace: 2s }
store: "sqlite:%s"
routes:
%s`, aliceToken, legacy, modern, filepath.Join(dir, "strangler.db"), routes)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startAdminFacade runs a facade over legacy and modern with routes.
func startAdminFacade(t *testing.T, legacy, modern, routes string) *running {
	t.Helper()
	return startRun(t, "serve", "--config", writeAdminConfig(t, legacy, modern, routes))
}

// cliResult is what one command printed and returned.
type cliResult struct {
	stdout, stderr string
	err            error
}

// cli runs strangler commands against the admin listener admin with env
// (STRANGLER_ADMIN and STRANGLER_ADMIN_TOKEN by default alice's).
func cli(admin string) func(t *testing.T, args ...string) cliResult {
	return cliEnv(aliceEnv(admin))
}

// aliceEnv is the environment of an operator holding alice's token.
func aliceEnv(admin string) map[string]string {
	return map[string]string{"STRANGLER_ADMIN": "http://" + admin, "STRANGLER_ADMIN_TOKEN": aliceToken}
}

func cliEnv(env map[string]string) func(t *testing.T, args ...string) cliResult {
	return func(t *testing.T, args ...string) cliResult {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
		return cliResult{stdout.String(), stderr.String(), err}
	}
}

// must is the output of a command that must succeed.
func (r cliResult) must(t *testing.T) string {
	t.Helper()
	if r.err != nil {
		t.Fatalf("command failed: %v\nstderr:\n%s", r.err, r.stderr)
	}
	return r.stdout
}

// adminGet calls the admin API as alice and decodes its JSON into v.
func adminGet(t *testing.T, admin, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// refusedAddr is a local address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestAdminClientErrors(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	f := startAdminFacade(t, legacy.URL, legacy.URL, `  - {name: get-patient, match: "GET /patients/{id}", mode: legacy}
`)

	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{
			"a wrong token is refused with a hint at the variable",
			map[string]string{"STRANGLER_ADMIN": "http://" + f.admin, "STRANGLER_ADMIN_TOKEN": "not-alice-token-0123456789"},
			"the admin API refused the token: set STRANGLER_ADMIN_TOKEN to an admin token",
		},
		{
			"no token at all is caught before calling",
			map[string]string{"STRANGLER_ADMIN": "http://" + f.admin},
			"no admin token: set STRANGLER_ADMIN_TOKEN",
		},
		{
			"an admin URL nothing listens on says what to check",
			map[string]string{"STRANGLER_ADMIN": "http://" + refusedAddr(t), "STRANGLER_ADMIN_TOKEN": aliceToken},
			"is strangler serve running, and is --admin right?",
		},
		{
			"a URL that is not an admin listener says so",
			map[string]string{"STRANGLER_ADMIN": legacy.URL, "STRANGLER_ADMIN_TOKEN": aliceToken},
			"is --admin a strangler admin listener",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cliEnv(tc.env)(t, "routes", "list")
			if r.err == nil {
				t.Fatalf("routes list succeeded:\n%s", r.stdout)
			}
			if got := r.err.Error(); !strings.Contains(got, tc.want) {
				t.Errorf("error = %q, want it to contain %q", got, tc.want)
			}
		})
	}

	t.Run("--admin wins over STRANGLER_ADMIN and takes a bare host:port", func(t *testing.T) {
		env := map[string]string{"STRANGLER_ADMIN": "http://" + refusedAddr(t), "STRANGLER_ADMIN_TOKEN": aliceToken}
		out := cliEnv(env)(t, "routes", "list", "--admin", f.admin).must(t)
		if !strings.Contains(out, "get-patient") {
			t.Errorf("routes list:\n%s", out)
		}
	})

	t.Run("no token flag exists to leak into shell history", func(t *testing.T) {
		r := cli(f.admin)(t, "routes", "list", "--token", aliceToken)
		var u usageError
		if !errors.As(r.err, &u) {
			t.Errorf("err = %v, want a usage error", r.err)
		}
		if !strings.Contains(r.stderr, "never accepted as a flag") {
			t.Errorf("usage text does not say the token is never a flag:\n%s", r.stderr)
		}
	})
}
