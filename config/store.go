package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"path/filepath"
	"strings"

	"strangler/internal/dsn"
	"strangler/internal/filecap"
)

// checkHosts refuses a PostgreSQL address naming several hosts (a primary
// and its standbys, for failover) unless it asks for the one that takes
// writes: otherwise the facade could connect to a standby and every
// write would fail until it reconnected.
func checkHosts(u *url.URL) error {
	if !strings.Contains(u.Host, ",") {
		return nil
	}
	switch u.Query().Get("target_session_attrs") {
	case "read-write", "primary":
		return nil
	}
	return errors.New("names several hosts, so it needs target_session_attrs=read-write: the facade must write to the primary, never to a standby")
}

// checkStore refuses a store the facade would refuse to open, beyond the
// address's form that decoding checked: a PostgreSQL URL the driver
// cannot read (an unknown sslmode, a port out of range), or a SQLite file
// that is a directory or a device. A reload must not adopt a store that
// only the next restart finds unusable.
func (d *checker) checkStore(s StoreDSN) {
	if path, _, ok := dsn.SQLite(string(s)); ok {
		if err := filecap.RegularOrAbsent(path); err != nil {
			d.errorAt("store", "%v", err)
		}
		return
	}
	if err := d.CheckPostgres(string(s)); err != nil {
		d.errorAt("store", "invalid PostgreSQL URL: %v", err)
	}
}

// snapshotPath is state_snapshot, or where it defaults to: next to a
// SQLite store, whose file the replica owns anyway; for PostgreSQL, in
// the temporary directory ($TMPDIR, else /tmp; in the Kubernetes base an
// emptyDir, which outlives a container's restarts) under a name derived
// from the store's address without its password, so two facades on one
// machine keep apart and a new password keeps the snapshot.
func snapshotPath(set string, store StoreDSN, getenv func(string) string) string {
	if set != "" {
		return set
	}
	if path, _, ok := dsn.SQLite(string(store)); ok {
		return path + ".snapshot.json"
	}
	dir := "/tmp"
	if getenv != nil && getenv("TMPDIR") != "" {
		dir = getenv("TMPDIR")
	}
	sum := sha256.Sum256([]byte(dsn.Redact(string(store))))
	return filepath.Join(dir, "strangler-snapshot-"+hex.EncodeToString(sum[:4])+".json")
}

// Redacted is the store's address without its password, as logs and
// config print show it.
func (d StoreDSN) Redacted() string { return dsn.Redact(string(d)) }
