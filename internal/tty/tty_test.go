package tty

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestIs(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"the null device (a character device) is not a terminal", null},
		{"a file is not a terminal", file},
		{"a pipe is not a terminal", w},
		{"a buffer is not a terminal", &bytes.Buffer{}},
		{"a nil file is not a terminal", (*os.File)(nil)},
	} {
		if Is(tc.v) {
			t.Errorf("%s: Is says it is", tc.name)
		}
	}
	// A terminal, where the test has one: /dev/tty opens only with a
	// controlling terminal, which CI does not have.
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !Is(tty) {
			t.Error("/dev/tty: Is says it is not a terminal")
		}
	}
}
