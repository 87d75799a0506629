package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConfigCheckKeepsTheAdminAPIOffThePublicNetwork: an admin listener
// other machines can reach needs a token, and it may not share the
// public listener's port in any spelling; config check names the file,
// the line and the field.
func TestConfigCheckKeepsTheAdminAPIOffThePublicNetwork(t *testing.T) {
	const token = "a-token-of-sixteen-or-more"
	for _, tc := range []struct {
		name          string
		listen, admin string
		token         string
		want          string // "" for a file that passes
	}{
		{"every interface without a token", ":8080", "0.0.0.0:9901", "", "reachable from other machines"},
		{"every interface by port alone without a token", ":8080", ":9901", "", "reachable from other machines"},
		{"every IPv6 interface without a token", ":8080", "[::]:9901", "", "reachable from other machines"},
		{"a LAN address without a token", ":8080", "10.0.0.5:9901", "", "reachable from other machines"},
		{"a host name without a token", ":8080", "admin.internal:9901", "", "reachable from other machines"},
		{"every interface with a token", ":8080", "0.0.0.0:9901", token, ""},
		{"127.0.0.1 without a token", ":8080", "127.0.0.1:9901", "", ""},
		{"another loopback address without a token", ":8080", "127.0.0.2:9901", "", ""},
		{"localhost without a token", ":8080", "localhost:9901", "", ""},
		{"IPv6 loopback without a token", ":8080", "[::1]:9901", "", ""},
		{"the public listener's address", ":8080", ":8080", token, "must differ from listen"},
		{"the public listener's port on every interface", ":8080", "0.0.0.0:8080", token, "must differ from listen"},
		{"the public listener's port on loopback", ":8080", "127.0.0.1:8080", "", "must differ from listen"},
		{"the public listener's loopback address as localhost", "127.0.0.1:8080", "localhost:8080", "", "must differ from listen"},
		{"the public listener's address spelled in IPv6", "[::ffff:10.0.0.5]:8080", "10.0.0.5:8080", token, "must differ from listen"},
		{"the public listener's port on another address", "10.0.0.5:8080", "127.0.0.1:8080", "", ""},
		{"port 0 for both, as tests do", "127.0.0.1:0", "127.0.0.1:0", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "strangler.yaml")
			yaml := fmt.Sprintf("listen: %q\nadmin:\n  listen: %q\n", tc.listen, tc.admin)
			if tc.token != "" {
				yaml += fmt.Sprintf("  token: %q\n", tc.token)
			}
			yaml += "backends:\n  legacy: {url: \"http://legacy\"}\n  modern: {url: \"http://modern\"}\n"
			if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"config", "check", path}, noEnv, &stdout, &stderr)
			if tc.want == "" {
				if err != nil {
					t.Errorf("refused: %v\n%s", err, stderr.String())
				}
				return
			}
			if prefix := path + ":3:11: admin.listen: "; err == nil || !strings.Contains(stderr.String(), prefix) || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("got %v and %q, want a refusal starting %q and saying %q", err, stderr.String(), prefix, tc.want)
			}
		})
	}
}

// TestConfigCheckRefusesWhatIsNoConfigurationFile: a path naming a
// device, a named pipe, a directory or a file past the size bound is
// refused at once, by name, and the check fails; before, /dev/zero was
// read until memory ran out and a named pipe held it for good. Files the
// configuration names are bounded the same way, at their line and field.
func TestConfigCheckRefusesWhatIsNoConfigurationFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), 420_000), 0o600); err != nil {
		t.Fatal(err)
	}
	names := filepath.Join(dir, "names.yaml")
	y := "admin:\n  token: ${file:" + fifo + "}\nbackends:\n  legacy: {url: \"http://legacy\"}\n" +
		"  modern: {url: \"https://modern\", tls: {ca: /dev/zero}}\n"
	if err := os.WriteFile(names, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "/dev/zero is a device: want a regular file"},
		{fifo, fifo + " is a named pipe (FIFO): want a regular file"},
		{dir, dir + " is a directory: want a regular file"},
		{big, big + " is larger than 4.0 MiB"},
		{names, names + ":2:10: admin.token: placeholder ${file:" + fifo + "}: " + fifo + " is a named pipe (FIFO)"},
		{names, names + ":5:45: backends.modern.tls.ca: /dev/zero is a device"},
	} {
		var stdout, stderr bytes.Buffer
		done := make(chan error, 1)
		go func() {
			done <- run(context.Background(), []string{"config", "check", tc.path}, noEnv, &stdout, &stderr)
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("config check %s: got %v and %q, want a failure saying %q", tc.path, err, stderr.String(), tc.want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("config check %s has not returned after 20s", tc.path)
		}
	}
}
