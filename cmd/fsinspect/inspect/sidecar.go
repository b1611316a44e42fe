package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

// This file holds what the commands share about sidecar files: the values
// kept outside the log, one file each in the directory's sidecars folder,
// named by the descriptor in a put-sidecar record (segment.Sidecar).

// sidecarJSON is how JSON output carries a sidecar descriptor.
type sidecarJSON struct {
	Name   string `json:"name"`
	File   string `json:"file"` // relative to the cache directory
	Size   int64  `json:"size"`
	Hashed bool   `json:"hashed"`        // Sum is the xxhash64 of the file's bytes
	Sum    string `json:"sum,omitempty"` // 16 hex digits; absent when not hashed
}

func newSidecarJSON(d segment.Sidecar) *sidecarJSON {
	j := &sidecarJSON{Name: d.Name.String(), File: sidecarFile(d.Name), Size: d.Size, Hashed: d.Hashed}
	if d.Hashed {
		j.Sum = fmt.Sprintf("%016x", d.Sum)
	}
	return j
}

// sidecarFile is the path of a sidecar file relative to the cache
// directory, as findings and tables name it.
func sidecarFile(n segment.SidecarName) string { return segment.SidecarDir + "/" + n.String() }

// describeSidecar prints a descriptor for a table:
// "sidecars/<name>, 300 bytes, xxhash64 0123456789abcdef".
func describeSidecar(d segment.Sidecar) string {
	sum := "not hashed (moved in: checked by size only)"
	if d.Hashed {
		sum = fmt.Sprintf("xxhash64 %016x", d.Sum)
	}
	return fmt.Sprintf("%s, %d bytes, %s", sidecarFile(d.Name), d.Size, sum)
}

// readRecord reads the record the index entry k points to from its segment
// file, and checks that it is k's: a put-sidecar record of k's key.
func readRecord(dir string, k engine.KeyInfo) (segment.Record, error) {
	f, err := os.OpenFile(filepath.Join(dir, segment.FileName(k.Segment)), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return segment.Record{}, err
	}
	defer f.Close()
	b := make([]byte, k.Size)
	if _, err := f.ReadAt(b, k.Offset); err != nil {
		return segment.Record{}, fmt.Errorf("read the record at offset %d of %s: %w", k.Offset, segment.FileName(k.Segment), err)
	}
	r, _, err := segment.DecodeRecord(b)
	switch {
	case err != nil:
		return r, err
	case r.Kind != segment.KindPutSidecar || !bytes.Equal(r.Key, k.Key):
		return r, fmt.Errorf("%w: the record at offset %d of %s is a %s record of key %s", segment.ErrCorrupt,
			k.Offset, segment.FileName(k.Segment), r.Kind, quoteKey(r.Key, dumpKeyMax))
	}
	return r, nil
}

var (
	// errMoved says a key's record is no longer where the index said.
	errMoved = errors.New("the key's record moved")
	// errDescriptor marks a put-sidecar record whose value does not decode.
	errDescriptor = errors.New("no valid sidecar descriptor")
)

// sidecarOf returns the descriptor of k's value, which the index says is in
// a sidecar file (k.Kind is put-sidecar). The engine does not hand
// descriptors out, so it is read from the segment file; if that file is gone
// (another process's compaction deleted it after copying the record), the
// key is looked up again, and errMoved returned if it has no sidecar value
// any more. A descriptor that does not decode is an error wrapping
// errDescriptor; a record that is not k's, one wrapping segment.ErrCorrupt.
func sidecarOf(c *engine.Cache, dir string, k engine.KeyInfo) (segment.Sidecar, engine.KeyInfo, error) {
	for range 3 {
		r, err := readRecord(dir, k)
		if errors.Is(err, fs.ErrNotExist) {
			now, err := c.Stat(k.Key)
			if err != nil || now.Kind != segment.KindPutSidecar.String() {
				return segment.Sidecar{}, k, errMoved
			}
			k = now
			continue
		}
		if err != nil {
			return segment.Sidecar{}, k, err
		}
		d, err := segment.DecodeSidecar(r.Value)
		if err != nil {
			err = fmt.Errorf("%w: %w", errDescriptor, err)
		}
		return d, k, err
	}
	return segment.Sidecar{}, k, errMoved
}

// sidecarDir is what the sidecar folder held when it was listed.
type sidecarDir struct {
	exists bool   // false: no folder yet (the first read-write open makes it)
	notDir string // what is there instead of a folder ("a symlink"), or ""
	err    error  // the folder could not be listed
	named  []sidecarEntry
	temps  []sidecarEntry // value.tmp-*: writes in flight, or a crash's leftovers
	others []sidecarEntry // not kennel's: the sweep leaves them alone
}

// sidecarEntry is one entry of the sidecar folder; size counts for regular
// files only.
type sidecarEntry struct {
	name string
	mode fs.FileMode // the type bits: 0 for a regular file
	size int64
}

// listSidecarDir lists dir's sidecar folder, never through a symlink in
// its place: the engine refuses one.
func listSidecarDir(dir string) sidecarDir {
	path := filepath.Join(dir, segment.SidecarDir)
	var s sidecarDir
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s
	case err != nil:
		s.exists, s.err = true, err
		return s
	case !fi.IsDir():
		s.exists, s.notDir = true, describeType(fi.Mode())
		return s
	}
	s.exists = true
	des, err := os.ReadDir(path)
	if err != nil {
		s.err = err
		return s
	}
	for _, de := range des {
		e := sidecarEntry{name: de.Name(), mode: de.Type()}
		if e.mode.IsRegular() {
			fi, err := de.Info()
			if err != nil {
				continue // gone since the listing: swept, or renamed
			}
			e.size = fi.Size()
		}
		_, isName := segment.ParseSidecarName(e.name)
		switch {
		case !e.mode.IsRegular():
			s.others = append(s.others, e)
		case isName:
			s.named = append(s.named, e)
		case strings.Contains(e.name, segment.TempInfix):
			s.temps = append(s.temps, e)
		default:
			s.others = append(s.others, e)
		}
	}
	return s
}

// bytesOf adds up the sizes of entries.
func bytesOf(entries []sidecarEntry) int64 {
	var n int64
	for _, e := range entries {
		n += e.size
	}
	return n
}

// describeType names a file type for a finding: "a symlink".
func describeType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}
