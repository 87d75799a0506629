package store

import (
	"os"
	"syscall"
)

// spaceOf is how many bytes an unprivileged writer may still use on the
// file system holding the directory dir, and how many are in use there;
// -1 and -1 when dir is nil. It looks up no path, so it allocates
// nothing: every dual write asks.
func spaceOf(dir *os.File) (avail, used int64, err error) {
	if dir == nil {
		return -1, -1, nil
	}
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(int(dir.Fd()), &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks-st.Bfree) * st.Bsize, nil
}
