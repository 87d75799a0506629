package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrFileGone refuses a write to an embedded store whose file was removed
// or replaced while the facade had it open.
var ErrFileGone = errors.New("the store's file was removed or replaced while open")

// storeFile is the file a SQLite store opened. SQLite keeps writing
// to a file that was removed (an operator's clean-up, the directory
// deleted) as if nothing happened: every write "succeeds" into a file
// that is gone once the process exits, with the journal, the flags and
// the audit log in it. So each write transaction first checks that the
// path still names the file the connection has open, and is refused
// otherwise (a dual write answers 503 and reaches no backend); reads go
// on from the open file.
//
// Refused, it puts back what the store holds: a copy of the open file
// (VACUUM INTO, as a backup) is written to the path once its directory
// exists, so that a restart, which opens the path, finds every journaled
// write, flag and audit entry. Writes stay refused until that restart:
// the open file is not the one at the path any more.
//
// There is one storeFile per store, shared by its connections: a
// connection opened again after the removal (SQLite would create a new,
// empty file at the path) is checked against the file the store opened
// first.
type storeFile struct {
	path string
	// dir is the file's directory, open to ask its file system's free
	// space (room) without a path lookup; nil where it could not be
	// opened.
	dir *os.File

	mu     sync.Mutex
	opened os.FileInfo // nil: not known (the file did not exist yet)
	copied bool
	// goneSince is when the removal was first seen; zero until then.
	goneSince time.Time
}

// openStoreFile is the storeFile for path, its directory opened.
func openStoreFile(path string) *storeFile {
	f := &storeFile{path: path}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		f.dir = dir
	}
	return f
}

// close closes the directory f keeps open.
func (f *storeFile) close() {
	if f.dir != nil {
		f.dir.Close()
	}
}

// connected notes the file a new connection opened, if the store had
// none yet.
func (f *storeFile) connected() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opened == nil {
		f.opened, _ = os.Stat(f.path)
	}
}

// refused says since when writes are refused because path no longer
// names the opened file, with why; zero and nil while it does. It
// writes nothing: health checks call it.
func (f *storeFile) refused() (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.goneLocked()
	return f.goneSince, err
}

// goneLocked reports whether path still names the opened file (nil), or
// why not; exists says whether another file is at the path.
func (f *storeFile) goneLocked() (exists bool, err error) {
	if f.opened == nil {
		return false, nil
	}
	now, statErr := os.Stat(f.path)
	if statErr == nil && os.SameFile(now, f.opened) {
		return true, nil
	}
	if f.goneSince.IsZero() {
		f.goneSince = time.Now()
	}
	gone := fmt.Errorf("store: %s: %w; writes are refused until the facade restarts", f.path, ErrFileGone)
	if f.copied {
		return statErr == nil, fmt.Errorf("%w (a copy of what it held was written back to that path)", gone)
	}
	return statErr == nil, gone
}

// check reports whether path still names the opened file; if not, it
// tries to write what conn holds back to the path, once.
func (f *storeFile) check(ctx context.Context, conn driver.Conn) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	exists, gone := f.goneLocked()
	if gone == nil || f.copied {
		return gone
	}
	if exists {
		// Another file took its place: an operator's restore. It is
		// theirs; the copy is not written over it.
		return gone
	}
	if err := f.copyBack(ctx, conn); err != nil {
		return fmt.Errorf("%w (writing a copy of what it held back to that path failed: %v)", gone, err)
	}
	f.copied = true
	return fmt.Errorf("%w (a copy of what it held was written back to that path)", gone)
}

// copyBack writes a copy of the database conn has open to f.path: to a
// temporary name, with its leases released (as a backup's), synced and
// then linked to the path.
func (f *storeFile) copyBack(ctx context.Context, conn driver.Conn) error {
	exec, ok := conn.(driver.ExecerContext)
	if !ok {
		return errNoContext
	}
	tmp := filepath.Join(filepath.Dir(f.path), "."+filepath.Base(f.path)+".partial")
	os.Remove(tmp)
	if _, err := exec.ExecContext(ctx, `VACUUM INTO $1`, []driver.NamedValue{{Ordinal: 1, Value: tmp}}); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := releaseCopiedLeases(ctx, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	// A link, not a rename: a file an operator put there meanwhile stays.
	err := os.Link(tmp, f.path)
	os.Remove(tmp)
	if err != nil {
		return err
	}
	return syncFile(filepath.Dir(f.path))
}

// WritesRefused says since when the store refuses every write for a
// reason that lasts until the facade restarts, and why; zero and nil
// otherwise. It writes nothing, so that health checks and metrics see
// the condition without write traffic: an embedded store whose file was
// removed or replaced.
func (s *Store) WritesRefused() (time.Time, error) {
	if s.dialect.file == nil {
		return time.Time{}, nil
	}
	return s.dialect.file.refused()
}
