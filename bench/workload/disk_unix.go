//go:build unix

package workload

import (
	"io/fs"
	"syscall"
)

// allocated returns the bytes the file system allocated to a file, which is
// what du counts: sparse or preallocated files count what they occupy.
func allocated(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512 // st_blocks is in 512-byte units on every unix
	}
	return info.Size()
}
