package filecap_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"strangler/internal/filecap"
)

// readSoon is filecap.Read, failing the test if it has not returned
// within a few seconds (opening a named pipe waits for a writer for good).
func readSoon(t *testing.T, path string, limit int64) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := filecap.Read(path, limit)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("reading %s has not returned after 10s", path)
		return nil, nil
	}
}

func TestWhatIsNoRegularFileIsRefusedByName(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	sock := filepath.Join(dir, "s.yaml")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range []struct{ path, want string }{
		{dir, "is a directory"},
		{fifo, "is a named pipe (FIFO)"},
		{sock, "is a socket"},
		{"/dev/zero", "is a device"},
		{"/dev/null", "is a device"},
	} {
		if _, err := os.Stat(tc.path); err != nil {
			t.Logf("%s: %v", tc.path, err)
			continue
		}
		_, err := readSoon(t, tc.path, filecap.Limit)
		if err == nil || !strings.Contains(err.Error(), tc.path+" "+tc.want+": want a regular file") {
			t.Errorf("%s: got %v, want an error naming it and saying it %s", tc.path, err, tc.want)
		}
	}
}

func TestALargerFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, make([]byte, 2049), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readSoon(t, path, 2048); err == nil || !strings.Contains(err.Error(), path+" is larger than 2.0 KiB") {
		t.Errorf("got %v, want an error naming the file and the limit", err)
	}
	b, err := readSoon(t, path, 2049)
	if err != nil || len(b) != 2049 {
		t.Errorf("at the limit: got %d bytes, %v; want all 2049", len(b), err)
	}
}

// A file whose size says nothing of what it holds (a file under /proc
// says 0; a file growing while it is read said less) is cut off at the
// limit as it is read.
func TestAFileLargerThanItsSizeSaidIsRefused(t *testing.T) {
	const path = "/proc/self/status"
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != 0 {
		t.Skipf("no %s of size 0 here", path)
	}
	if _, err := readSoon(t, path, 64); err == nil || !strings.Contains(err.Error(), path+" is larger than 64 B") {
		t.Errorf("got %v, want an error naming the file and the limit", err)
	}
}

// A file to be written may be absent or regular; anything else is named.
func TestRegularOrAbsent(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "out.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	file := filepath.Join(dir, "f.json")
	if err := os.WriteFile(file, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, filepath.Join(dir, "new.json")} {
		if err := filecap.RegularOrAbsent(path); err != nil {
			t.Errorf("%s: %v, want nil", path, err)
		}
	}
	for path, want := range map[string]string{
		fifo:        fifo + " is a named pipe (FIFO): want a regular file",
		dir:         dir + " is a directory: want a regular file",
		"/dev/zero": "/dev/zero is a device: want a regular file",
	} {
		if err := filecap.RegularOrAbsent(path); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", path, err, want)
		}
	}
}
