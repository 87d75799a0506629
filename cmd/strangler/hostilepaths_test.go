package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"strangler/store"
)

// strangle runs the strangler binary with args, killing it if it has not
// exited within 20 seconds (a file it was handed that is a named pipe
// would otherwise hold it for good), and returns its exit code and
// stderr.
func strangle(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("strangler %s: still running after 20s", strings.Join(args, " "))
	}
	failOnDataRace(t, "strangler", stderr.String())
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// A named pipe or a device where the store or a backup is to be is
// refused by name before anything opens it: SQLite handed one would wait
// for a writer, or read zeros.
func TestSpecialFilesAreRefusedByName(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	// A real store, so that a backup of it gets as far as its output.
	db := filepath.Join(dir, "s.db")
	st, err := store.Open(context.Background(), "sqlite:"+db, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	config := func(name, storePath string) string {
		path := filepath.Join(dir, name+".yaml")
		yaml := `listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:0" }
backends:
  legacy: { url: "http://127.0.0.1:1", timeout: 2s }
  modern: { url: "http://127.0.0.1:1", timeout: 2s }
store: "sqlite:` + storePath + `"
routes: []
`
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := config("good", db)
	for _, special := range []struct{ path, kind string }{
		{fifo, "is a named pipe (FIFO): want a regular file"},
		{"/dev/zero", "is a device: want a regular file"},
	} {
		onStore := config("on-"+filepath.Base(special.path), special.path)
		for _, args := range [][]string{
			{"serve", "--config", onStore},
			{"store", "backup", "--config", onStore, filepath.Join(dir, "backup.db")},
			{"store", "backup", "--config", good, special.path},
			{"store", "verify", special.path},
			{"audit", "verify", "--config", onStore},
			{"audit", "export", "--config", onStore},
		} {
			code, stderr := strangle(t, args...)
			if code != 1 || !strings.Contains(stderr, special.path+" "+special.kind) {
				t.Errorf("strangler %s: exit %d, stderr %q; want 1 and an error saying %s %s",
					strings.Join(args, " "), code, stderr, special.path, special.kind)
			}
		}
	}
	// A report is written to a pipe or a device as to a file
	// (--report-json /dev/stdout); one named a directory is refused before
	// the configuration is read.
	for _, args := range [][]string{
		{"backfill", "--config", good, "--report-json", dir},
		{"backfill", "--config", good, "--report-html", dir},
		{"verify", "--config", good, "--report-json", dir},
	} {
		code, stderr := strangle(t, args...)
		if code != 1 || !strings.Contains(stderr, dir+" is a directory: want a file to write the report to") {
			t.Errorf("strangler %s: exit %d, stderr %q; want 1 and an error saying %s is a directory",
				strings.Join(args, " "), code, stderr, dir)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "backup.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a backup was written from a store that is no file: %v", err)
	}
}
