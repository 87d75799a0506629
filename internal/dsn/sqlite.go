package dsn

import (
	"fmt"
	"strings"
)

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

// SQLiteSync checks the path and options SQLite split an embedded
// store's address into, and returns the synchronous setting the options
// ask for: NORMAL, or FULL for sync=full. The configuration and the store
// both check with it, so that an address `config check` passes is one
// the store opens.
func SQLiteSync(path, options string) (sync string, err error) {
	switch options {
	case "", "sync=normal":
		sync = "NORMAL"
	case "sync=full":
		sync = "FULL"
	default:
		return "", fmt.Errorf("unknown option %q; the only one is sync=full", options)
	}
	if path == "" {
		return "", fmt.Errorf("no file named; write sqlite:./strangler.db")
	}
	if strings.ContainsRune(path, '#') {
		return "", fmt.Errorf("file name %q must not contain #", path)
	}
	return sync, nil
}
