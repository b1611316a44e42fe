//go:build !unix

package workload

import "io/fs"

// allocated returns a file's size where the allocated size is not known.
func allocated(info fs.FileInfo) int64 { return info.Size() }
