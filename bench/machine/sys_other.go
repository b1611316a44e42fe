//go:build !linux

package machine

import (
	"errors"
	"os"
	"runtime"
)

func fdatasync(f *os.File) error { return f.Sync() }

func dropCache(string) error { return errors.New("not supported on " + runtime.GOOS) }
