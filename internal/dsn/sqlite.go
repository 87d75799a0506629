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
		return "", fmt.Errorf("unknown option %q; the only one is sync=full", shownOptions(options))
	}
	if path == "" {
		return "", fmt.Errorf("no file named; write sqlite:./strangler.db")
	}
	if strings.ContainsRune(path, '#') {
		return "", fmt.Errorf("file name %q must not contain #", path)
	}
	return sync, nil
}

// shownOptions is options as a message shows them: the values of options
// other than sync left out, since other SQLite drivers take a password
// there (_auth_pass, _pragma_key) and someone used to them may write one.
func shownOptions(options string) string {
	parts := strings.Split(options, "&")
	for i, o := range parts {
		if name, _, ok := strings.Cut(o, "="); ok && name != "sync" {
			parts[i] = name + "=…"
		}
	}
	return strings.Join(parts, "&")
}
