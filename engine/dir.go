package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kennel-cache/kennel/segment"
)

// File names in a cache directory. Segment and hint files are named by
// segment id (see package segment); no name is ever derived from a key.
const (
	// formatFile marks a kennel directory and holds its format version.
	formatFile = "KENNEL"
	// lockFile holds the byte-range locks of the multi-process protocol
	// (package lockf); it stays empty.
	lockFile = "lock"
)

// formatVersion is the directory format this kennel reads and writes. A
// directory with another version is refused, never rewritten.
const formatVersion = 4

// formatLine is the whole content of the format file.
func formatLine(version int) []byte { return fmt.Appendf(nil, "kennel format %d\n", version) }

// openDir creates or checks the directory.
func (c *Cache) openDir() error {
	fi, err := os.Lstat(c.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && c.opts.ReadOnly:
		return fmt.Errorf("kennel: open %s read-only: %w", c.dir, err)
	case errors.Is(err, fs.ErrNotExist):
		if err := c.createDir(); err != nil {
			return fmt.Errorf("kennel: create directory: %w", err)
		}
	case err != nil:
		return fmt.Errorf("kennel: open %s: %w", c.dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrNotKennelDir, c.dir)
	}
	if !c.opts.ReadOnly {
		// Writes create files in the directory (a segment at every roll):
		// one this user may not write would take writes until the first
		// roll, then refuse them all.
		if err := unix.Faccessat(unix.AT_FDCWD, c.dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
			return fmt.Errorf("kennel: open %s read-write: %w (Options.ReadOnly opens it for reading)", c.dir, err)
		}
	}
	if !c.opts.AllowNetworkFS {
		if err := c.checkLocalFS(); err != nil {
			return err
		}
	}
	if _, err := c.checkFormat(); err != nil {
		return err
	}
	return nil
}

// checkFormat reads the format file. A directory without one must be empty
// but for what a concurrent first Open creates (the lock and state files, a
// temporary format file): the format file is then written by writeFormat,
// once the open lock is held. Anything else belongs to someone else.
func (c *Cache) checkFormat() (missing bool, err error) {
	path := filepath.Join(c.dir, formatFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		entries, err := os.ReadDir(c.dir)
		if err != nil {
			return false, fmt.Errorf("kennel: read directory: %w", err)
		}
		if slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() == formatFile }) {
			return c.checkFormat() // another opener has just written it
		}
		foreign := slices.DeleteFunc(entries, func(e fs.DirEntry) bool {
			name := e.Name()
			return name == lockFile || name == stateFile || strings.HasPrefix(name, formatFile+segment.TempInfix)
		})
		if len(foreign) > 0 || c.opts.ReadOnly {
			return false, fmt.Errorf("%w: %s holds %d files and no %s file", ErrNotKennelDir, c.dir, len(entries), formatFile)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("kennel: read format file: %w", err)
	}
	var version int
	if _, err := fmt.Sscanf(string(b), "kennel format %d\n", &version); err != nil || !bytes.Equal(b, formatLine(version)) {
		return false, fmt.Errorf("%w: %s does not hold a kennel format line", ErrNotKennelDir, path)
	}
	if version != formatVersion {
		return false, fmt.Errorf("%w: directory has format %d, this kennel reads format %d", ErrIncompatible, version, formatVersion)
	}
	return false, nil
}

// writeFormat writes the format file of a new directory. Callers hold the
// open lock, so of processes opening a new directory at once one writes it
// and the others find it.
func (c *Cache) writeFormat() error {
	missing, err := c.checkFormat()
	if err != nil || !missing {
		return err
	}
	if err := segment.WriteFileAtomic(c.fs, c.dir, formatFile, formatLine(formatVersion), c.opts.FileMode); err != nil {
		return fmt.Errorf("kennel: write format file: %w", err)
	}
	return nil
}

// Filesystem magic numbers (statfs f_type) whose locks kennel cannot trust.
var networkFS = map[int64]string{
	0x6969:     "nfs",
	0x517B:     "smb",
	0xFF534D42: "cifs",
	0xFE534D42: "smb2",
	0x65735546: "fuse",
	0x00C36400: "ceph",
	0x5346414F: "afs",
	0x013111A8: "ibrix",
	0x47504653: "gpfs",
	0x0BD00BD0: "lustre",
}

// createDir creates the directory and any missing parent, and syncs the
// parent of each folder it created: without that, a power cut could lose
// the whole directory, durable segments and all.
func (c *Cache) createDir() error {
	top := filepath.Clean(c.dir) // the highest folder missing
	for {
		parent := filepath.Dir(top)
		if _, err := os.Lstat(parent); err == nil || parent == top {
			break
		}
		top = parent
	}
	if err := c.fs.MkdirAll(c.dir, c.opts.dirMode()); err != nil {
		return err
	}
	for d := filepath.Clean(c.dir); ; d = filepath.Dir(d) {
		if err := c.fs.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
		if d == top {
			return nil
		}
	}
}

// checkLocalFS refuses directories on network and FUSE filesystems.
func (c *Cache) checkLocalFS() error {
	fsType, err := c.fs.FSType(c.dir)
	if err != nil {
		return fmt.Errorf("kennel: %w", err)
	}
	if name, ok := networkFS[fsType]; ok {
		return fmt.Errorf("%w: %s is on %s; set Options.AllowNetworkFS to use it anyway", ErrNetworkFS, c.dir, name)
	}
	return nil
}

// isTemp reports whether a directory entry is an unfinished temporary file.
func isTemp(name string) bool { return strings.Contains(name, segment.TempInfix) }
