package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

// checkSidecars checks the sidecar folder: the file of every live
// put-sidecar record, then the files no live record names.
//
// Only the records that are the live values of their keys (expired ones
// included: the engine keeps their files until compaction drops them) have
// their files checked. An older record's file is deleted by compaction's
// sweep at a time only the writers' grace period decides, so that a file
// missing for it is no damage, and no reader opens one that is there.
//
// Which records are live is the engine's index's to say, not verify's scan:
// the engine's rules (the highest sequence number wins, whatever segment
// holds it; damaged and orphan records are never read) decide what a reader
// gets. So verify opens the cache read-only, as stats does, after it listed
// the folder: a file listed whose record was published by then is seen
// named. A directory with no put-sidecar record in its segments and no file
// in its folder has nothing to check, and no index is built.
func (v *verifier) checkSidecars() error {
	sd := &v.sidecarDir
	switch {
	case sd.notDir != "":
		v.problem(segment.SidecarDir, -1, "%s, not a folder: the engine refuses to open the directory read-write, and reads no sidecar value", sd.notDir)
		return nil
	case sd.err != nil:
		v.problem(segment.SidecarDir, -1, "cannot list the sidecar folder: %v", sd.err)
		return nil
	case v.sidecarRecords == 0 && len(sd.named)+len(sd.temps)+len(sd.others) == 0:
		return nil
	}
	c, err := engine.Open(v.dir, engine.Options{ReadOnly: true})
	if err != nil {
		v.warn(segment.SidecarDir, -1, "sidecar files not checked: opening the cache read-only, to learn which records are live, failed: %v", err)
		return nil
	}
	defer c.Close()
	var live []engine.KeyInfo
	err = c.Keys(nil, func(k engine.KeyInfo) error {
		if k.Kind == segment.KindPutSidecar.String() {
			k.Key = bytes.Clone(k.Key)
			live = append(live, k)
		}
		return nil
	})
	if err != nil {
		v.warn(segment.SidecarDir, -1, "sidecar files not checked: listing the keys failed: %v", err)
		return nil
	}
	named := make(map[string]bool, len(live))
	for _, k := range live {
		if d, ok := v.checkSidecarValue(c, k); ok {
			named[d.Name.String()] = true
		}
	}
	v.checkUnnamed(named)
	return nil
}

// checkSidecarValue checks the file of k's value as a reader would: its
// record's descriptor decodes; the file is there, a regular file (the
// engine opens it with O_NOFOLLOW), of the size the descriptor gives and,
// if it is hashed, of its checksum. It returns the descriptor, and whether
// it decoded.
func (v *verifier) checkSidecarValue(c *engine.Cache, k engine.KeyInfo) (segment.Sidecar, bool) {
	d, k, err := sidecarOf(c, v.dir, k)
	switch {
	case errors.Is(err, errMoved):
		return d, false // written over, or deleted, since the index was read
	case errors.Is(err, errDescriptor):
		v.unreadable(k, segment.FileName(k.Segment), k.Offset, "the put-sidecar record of key %s holds %v", quoteKey(k.Key, dumpKeyMax), err)
		return d, false
	case err != nil:
		v.unreadable(k, segment.FileName(k.Segment), k.Offset, "cannot read the put-sidecar record of key %s: %v", quoteKey(k.Key, dumpKeyMax), err)
		return d, false
	}
	file := sidecarFile(d.Name)
	whose := fmt.Sprintf("the live record of key %s", quoteKey(k.Key, dumpKeyMax))
	path := filepath.Join(v.dir, segment.SidecarDir, d.Name.String())
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !stillNamed(c, v.dir, k.Key, d.Name) {
			return d, true // written over, and the old file swept, since the index was read
		}
		v.unreadable(k, file, -1, "missing, though %s (offset %d of %s) names it", whose, k.Offset, segment.FileName(k.Segment))
	case err != nil:
		v.unreadable(k, file, -1, "cannot stat (named by %s): %v", whose, err)
	case !fi.Mode().IsRegular():
		v.unreadable(k, file, -1, "%s, not a regular file (named by %s): the engine does not follow it", describeType(fi.Mode()), whose)
	case fi.Size() != d.Size:
		v.unreadable(k, file, -1, "%d bytes, but %s says %d", fi.Size(), whose, d.Size)
	default:
		v.report.Sidecars++
		v.report.Bytes += d.Size
		defer func() { v.progBase += d.Size; v.prog.set(v.progBase) }()
		if !d.Hashed {
			break // moved in: the engine checks its size only
		}
		switch sum, err := v.hashFile(path); {
		case errors.Is(err, fs.ErrNotExist) && !stillNamed(c, v.dir, k.Key, d.Name):
			// Written over, and the old file swept, between the Lstat
			// and the open.
		case err != nil:
			v.unreadable(k, file, -1, "cannot read (named by %s): %v", whose, err)
		case sum != d.Sum:
			v.unreadable(k, file, -1, "checksum mismatch: xxhash64 %016x, but %s says %016x", sum, whose, d.Sum)
		}
	}
	return d, true
}

// stillNamed reports whether key's value is still the sidecar file name,
// as the directory is now.
func stillNamed(c *engine.Cache, dir string, key []byte, name segment.SidecarName) bool {
	k, err := c.Stat(key)
	if err != nil || k.Kind != segment.KindPutSidecar.String() {
		return false
	}
	d, _, err := sidecarOf(c, dir, k)
	return err == nil && d.Name == name
}

// unreadable reports a sidecar value that a reader cannot get: a problem,
// unless the value has expired anyway.
func (v *verifier) unreadable(k engine.KeyInfo, file string, off int64, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if k.Expired {
		v.warn(file, off, "%s; the value has expired, so nothing is lost", msg)
		return
	}
	v.problem(file, off, "%s: reads of the key fail", msg)
}

// hashFile returns the xxhash64 of the file at path, moving the progress
// bar along as it reads.
func (v *verifier) hashFile(path string) (uint64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := xxhash.New()
	buf := make([]byte, 1<<20)
	var done int64
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		done += int64(n)
		v.prog.set(v.progBase + done)
		if err == io.EOF {
			return h.Sum64(), nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// checkUnnamed reports the files of the folder that no live record names.
func (v *verifier) checkUnnamed(named map[string]bool) {
	sd := &v.sidecarDir
	for _, e := range sd.named {
		if named[e.name] {
			continue
		}
		v.progBase += e.size // never read, but counted in the bar's total
		v.prog.set(v.progBase)
		fi, err := os.Lstat(filepath.Join(v.dir, segment.SidecarDir, e.name))
		if err != nil {
			continue // swept since the listing
		}
		v.warn(segment.SidecarDir+"/"+e.name, -1, "named by no live record, %d bytes: an old value (written over, deleted, "+
			"expired or evicted), or a write in flight; %s", fi.Size(), describeHandOut(fi.ModTime()))
	}
	for _, e := range sd.temps {
		if _, err := os.Lstat(filepath.Join(v.dir, segment.SidecarDir, e.name)); err != nil {
			continue // a write in flight when verify began, since renamed
		}
		v.warn(segment.SidecarDir+"/"+e.name, -1, "temporary file: a sidecar write in flight, or left by a crash "+
			"(the next first opener of the directory removes it, and so does a sweep once it is an hour old)")
	}
	for _, e := range sd.others {
		if named[e.name] {
			continue // a live record's: reported as such
		}
		what := "not a kennel file"
		if !e.mode.IsRegular() {
			what = describeType(e.mode) + ", not a kennel file"
		}
		v.warn(segment.SidecarDir+"/"+e.name, -1, "%s (compaction's sweep leaves it alone)", what)
	}
}

// describeHandOut says when compaction's sweep deletes a sidecar file that
// no live record names, given its mtime: the engine sets it to the Unix
// epoch when it names the file, and when a reader hands its path out
// (Handle.Path) to the end of the grace period the file must stay for.
func describeHandOut(mtime time.Time) string {
	if !mtime.After(time.Unix(0, 0)) {
		return "its path was never handed out, so compaction's next sweep deletes it"
	}
	if left := time.Until(mtime); left > 0 {
		return fmt.Sprintf("its path was handed out, and it stays another %s (its grace period)", left.Round(time.Second))
	}
	return "its path was handed out and its grace period is over, so compaction's next sweep deletes it"
}
