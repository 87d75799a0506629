package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"strangler/domain"
)

// TestAWriteTooLargeForTheRoomIsRefusedAloneOnlyWhileTheStoreHasItsHeadroom:
// with the headroom and more free, a write whose body does not fit is
// refused with a *domain.TooLargeForRoomError naming the sizes, and the
// probe passes (the store takes writes of ordinary size); with less
// free than the headroom, the same refusal is the store's own (no such
// error), and the probe fails.
func TestAWriteTooLargeForTheRoomIsRefusedAloneOnlyWhileTheStoreHasItsHeadroom(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("mounting a small tmpfs needs root: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	s := openStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"), newClock())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.BeginWrite(ctx, intent("roomrefusal1-before", "/patients/1"), time.Minute); err != nil {
		t.Fatalf("a write before the disk fills: %v", err)
	}
	filler := filepath.Join(dir, "filler")
	leave := func(free int64) {
		t.Helper()
		os.Remove(filler)
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*st.Bsize-free), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	large := intent("roomrefusal1-large", "/patients/2")
	large.Body = []byte(`{"p":"` + strings.Repeat("x", 2<<20) + `"}`)

	leave(4 << 20)
	err := s.BeginWrite(ctx, large, time.Minute)
	room := domain.TooLargeForRoom(err)
	if room == nil || room.Need < bodyCopies*int64(len(large.Body)) || room.Free < writeHeadroom || room.Free >= room.Need {
		t.Errorf("a 2 MiB write with 4 MiB free: got %v (%+v), want a TooLargeForRoomError with what it needs and what is free", err, room)
	}
	if err := s.ProbeWrites(ctx); err != nil {
		t.Errorf("the probe beside a write refused for its size: %v, want nil", err)
	}

	leave(writeHeadroom / 2)
	small := intent("roomrefusal1-small", "/patients/3")
	err = s.BeginWrite(ctx, small, time.Minute)
	if err == nil || domain.TooLargeForRoom(err) != nil {
		t.Errorf("a small write with half the headroom free: got %v, want the store refusing writes, not this write's size", err)
	}
	if err := s.ProbeWrites(ctx); err == nil {
		t.Errorf("the probe with half the headroom free passed, want it refused")
	}
}
