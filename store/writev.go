package store

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// writeAtv writes head and then data at off with one system call, sparing
// the copy of every blob into a record buffer.
func writeAtv(f *os.File, off int64, head, data []byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	bufs := [][]byte{head, data}
	for len(bufs) > 0 {
		var n int
		var werr error
		if err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Pwritev(int(fd), bufs, off)
			return werr != unix.EAGAIN
		}); err != nil {
			return err
		}
		if werr == unix.EINTR {
			continue
		}
		if werr != nil {
			return &os.PathError{Op: "pwritev", Path: f.Name(), Err: werr}
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += int64(n)
		for n > 0 && len(bufs) > 0 {
			if n < len(bufs[0]) {
				bufs[0] = bufs[0][n:]
				n = 0
			} else {
				n -= len(bufs[0])
				bufs = bufs[1:]
			}
		}
	}
	return nil
}
