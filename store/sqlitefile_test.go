package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestARemovedFileIsReportedWithoutAWrite: once the embedded store's
// file is removed, WritesRefused says so at once, before any write is
// tried, and goes on saying so (with the same time) while nothing is
// written and after another file appears at the path: writes stay
// refused until a restart, and health must say so for as long.
func TestARemovedFileIsReportedWithoutAWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "strangler.db")
	s := openStore(t, "sqlite:"+path, newClock())
	if since, err := s.WritesRefused(); err != nil || !since.IsZero() {
		t.Fatalf("WritesRefused with the file in place: %v, %v; want zero and nil", since, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	since, err := s.WritesRefused()
	if !errors.Is(err, ErrFileGone) || since.IsZero() {
		t.Fatalf("WritesRefused with the file removed: %v, %v; want a time and ErrFileGone", since, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if again, err := s.WritesRefused(); !errors.Is(err, ErrFileGone) || !again.Equal(since) {
		t.Errorf("WritesRefused with another file at the path: %v, %v; want %v and ErrFileGone", again, err, since)
	}
	if err := s.BeginWrite(context.Background(), intent("w1", "update-patient/1"), time.Minute); !errors.Is(err, ErrFileGone) {
		t.Errorf("a write with another file at the path: %v, want ErrFileGone", err)
	}
}

// TestAStoreInPlaceRefusesNoWrites: WritesRefused is nil on a store whose
// file is in place, and on PostgreSQL, which has none.
func TestAStoreInPlaceRefusesNoWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.fresh(t), newClock())
		if since, err := s.WritesRefused(); err != nil || !since.IsZero() {
			t.Errorf("WritesRefused: %v, %v; want zero and nil", since, err)
		}
	})
}
