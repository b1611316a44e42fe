package engine

import "github.com/kennel-cache/kennel/internal/vfs"

// SetCrashPoint makes fn run at every crash point (see crashPoint). A
// child process of a test sets it before it opens a cache.
func SetCrashPoint(fn func(name string)) { crashPoint = fn }

// CrashPoints returns the name of every crash point (crashPoints).
func CrashPoints() []string { return append([]string(nil), crashPoints...) }

// WithFS returns o with the cache changing its directory through fsys (a
// vfs.CrashFS or vfs.FaultFS) instead of the real filesystem.
func WithFS(o Options, fsys vfs.FS) Options {
	o.fs = fsys
	return o
}
