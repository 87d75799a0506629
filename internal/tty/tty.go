// Package tty answers one question: is a writer or reader a terminal that
// a person watches (so progress bars can redraw in place and a prompt can
// wait for an answer)?
package tty

import "os"

// Is reports whether v is an *os.File open on a terminal: a character
// device, not a pipe or a file, and not the null device, which is a
// character device too (cron jobs, systemd units and go test get it).
func Is(v any) bool {
	f, ok := v.(*os.File)
	if !ok || f == nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
