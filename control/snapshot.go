package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"strangler/domain"
	"strangler/internal/filecap"
)

// Snapshot is this replica's last-known-good copy of the route overrides
// on local disk (state_snapshot): what it serves when it starts while the
// state store cannot be reached. It is rewritten whole, atomically, on
// every change the replica learns, so a crash at any instant leaves the
// previous snapshot or the new one, never a mix.
type Snapshot struct {
	path string
	// store names the state store the overrides come from, without its
	// password: a snapshot of another store is never served.
	store string
}

// NewSnapshot returns the snapshot kept at path for the store named
// storeName.
func NewSnapshot(path, storeName string) *Snapshot {
	return &Snapshot{path: path, store: storeName}
}

// Path is where the snapshot lives.
func (s *Snapshot) Path() string { return s.path }

// snapshotFile is the file's layout; version 1.
type snapshotFile struct {
	Version   int                         `json:"version"`
	Store     string                      `json:"store"`
	SavedAt   time.Time                   `json:"saved_at"`
	Overrides map[string]snapshotOverride `json:"overrides"`
}

type snapshotOverride struct {
	Mode      string    `json:"mode"`
	Percent   *float64  `json:"percent,omitempty"`
	Version   int64     `json:"version"`
	Actor     string    `json:"actor"`
	Reason    string    `json:"reason"`
	UpdatedAt time.Time `json:"updated_at"`
}

// maxSnapshot bounds the snapshot read: an override takes at most a few
// KiB (its reason is 500 characters at most), so this holds thousands of
// routes, and a state_snapshot naming a device or a file something else
// fills is refused rather than read until memory runs out.
const maxSnapshot = 64 << 20

// errNoSnapshot is Load's answer when there is no snapshot to serve.
var errNoSnapshot = errors.New("no snapshot")

// Save writes overrides as the snapshot, learned at at: a temporary file
// next to it, synced, renamed over it, and the directory synced, so the
// new snapshot survives a crash or power loss once Save returns.
func (s *Snapshot) Save(overrides map[string]domain.Override, at time.Time) error {
	if err := filecap.RegularOrAbsent(s.path); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	f := snapshotFile{Version: 1, Store: s.store, SavedAt: at.UTC(), Overrides: map[string]snapshotOverride{}}
	for name, o := range overrides {
		f.Overrides[name] = snapshotOverride{
			Mode: string(o.Mode), Percent: o.Percent, Version: o.Version,
			Actor: o.Actor, Reason: o.Reason, UpdatedAt: o.UpdatedAt.UTC(),
		}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(s.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; left only by a failure
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("snapshot: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("snapshot: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("snapshot: sync directory %s: %w", dir, err)
	}
	return nil
}

// Load reads the snapshot: the overrides and when they were learned. It
// is errNoSnapshot when the file does not exist, and an error saying why
// when it cannot be served: unreadable, damaged, or another store's.
func (s *Snapshot) Load() (map[string]domain.Override, time.Time, error) {
	b, err := filecap.Read(s.path, maxSnapshot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, errNoSnapshot
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("snapshot: %w", err)
	}
	var f snapshotFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, time.Time{}, fmt.Errorf("snapshot %s: damaged: %w", s.path, err)
	}
	switch {
	case f.Version != 1:
		return nil, time.Time{}, fmt.Errorf("snapshot %s: unknown version %d", s.path, f.Version)
	case f.Store != s.store:
		return nil, time.Time{}, fmt.Errorf("snapshot %s: taken of the store %s, not of %s", s.path, f.Store, s.store)
	case f.SavedAt.IsZero():
		return nil, time.Time{}, fmt.Errorf("snapshot %s: damaged: no saved_at", s.path)
	}
	out := make(map[string]domain.Override, len(f.Overrides))
	for name, o := range f.Overrides {
		if !slices.Contains(domain.Modes, domain.Mode(o.Mode)) || o.Version < 1 {
			return nil, time.Time{}, fmt.Errorf("snapshot %s: damaged: route %q has mode %q, version %d", s.path, name, o.Mode, o.Version)
		}
		if o.Percent != nil { // as served, as the store reads it (an older release wrote it)
			p := domain.ServedPercent(*o.Percent)
			o.Percent = &p
		}
		out[name] = domain.Override{
			Route: name, Mode: domain.Mode(o.Mode), Percent: o.Percent, Version: o.Version,
			Actor: o.Actor, Reason: o.Reason, UpdatedAt: o.UpdatedAt,
		}
	}
	return out, f.SavedAt, nil
}
