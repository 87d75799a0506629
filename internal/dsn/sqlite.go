package dsn

import "strings"

// SQLite splits an embedded store's address, "sqlite:PATH[?OPTIONS]",
// into the file's path and the options; ok is false for any other
// address. The store opens that path, and the commands that read the
// store's file (backup, audit, the snapshot beside it) look at it.
func SQLite(s string) (path, options string, ok bool) {
	rest, ok := strings.CutPrefix(s, "sqlite:")
	if !ok {
		return "", "", false
	}
	path, options, _ = strings.Cut(rest, "?")
	return path, options, true
}
