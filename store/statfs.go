package store

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// DiskSpace is what the filesystem holding a directory has room for.
type DiskSpace struct {
	Free  int64 // bytes an unprivileged writer may still use
	Total int64
}

// StatDisk returns the free and total bytes of the filesystem holding dir.
func StatDisk(dir string) (DiskSpace, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return DiskSpace{}, fmt.Errorf("statfs %q: %w", dir, err)
	}
	bs := int64(st.Bsize)
	return DiskSpace{Free: int64(st.Bavail) * bs, Total: int64(st.Blocks) * bs}, nil
}
