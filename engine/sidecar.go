package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"

	"github.com/kennel-cache/kennel/index"
	"github.com/kennel-cache/kennel/internal/vfs"
	"github.com/kennel-cache/kennel/lockf"
	"github.com/kennel-cache/kennel/segment"
)

// This file keeps large values in sidecar files: one file per value in the
// directory's sidecars folder, holding exactly the value's bytes, referred
// to by a put-sidecar record in the log (segment.Sidecar: name, size, and
// a checksum unless the file was moved in).
//
// A sidecar gets its name by rename(2) (RENAME_NOREPLACE) after its bytes
// are written and synced, and its record is appended once the folder is
// synced too, under every sync policy: the kernel may write a record back
// to disk at any time after it is appended, and a record that outlives its
// file in a power cut would stand in for the key's previous value, which
// was durable. So a record never names a file that a crash can lose.
//
// A file's bytes never change once it is named. When its value goes
// (overwritten, deleted, expired or evicted), compaction's sweep deletes
// the file; but a file whose path was handed out (Handle.Path) stays until
// Options.SidecarGrace after that, so a program given the path can still
// open it. The file's mtime says until when it is kept: the Unix epoch
// when it is made (never handed out), the hand-out time plus the grace
// when Path hands it out. The grace is thus that of the process that handed
// the path out, whichever process sweeps. A handle keeps its file open, so
// it reads on whatever happens to the name.

// SetOption adjusts one SetFile or SetReader call.
type SetOption func(*setOptions)

type setOptions struct {
	ttl     time.Duration
	movable bool
}

// WithTTL makes the value expire ttl from now (0: never) instead of after
// Options.DefaultTTL.
func WithTTL(ttl time.Duration) SetOption {
	return func(o *setOptions) { o.ttl = ttl }
}

// Movable lets SetFile move the file into the cache by rename instead of
// copying it (dogpile.cache's file_movable): the path is gone afterwards.
// The move happens only when the file is a regular file of this user with
// no other hard link, on the cache's filesystem; otherwise it is copied.
func Movable() SetOption { return func(o *setOptions) { o.movable = true } }

func (c *Cache) setOptions(opts []SetOption) (setOptions, error) {
	o := setOptions{ttl: c.opts.DefaultTTL}
	for _, opt := range opts {
		opt(&o)
	}
	if o.ttl < 0 {
		return o, fmt.Errorf("%w: %v", ErrInvalidTTL, o.ttl)
	}
	return o, nil
}

// SetFile stores the contents of the file at path under key, as a sidecar
// file: copied, or moved in by rename with Movable. The value can be as
// large as the budget (Options.CacheSize). A move costs the same whatever
// the size; its file is checked by size on every read, a copied one also by
// checksum.
func (c *Cache) SetFile(key []byte, path string, opts ...SetOption) error {
	o, err := c.checkSidecarWrite(key, opts)
	if err != nil {
		return err
	}
	if o.movable {
		done, err := c.moveFile(key, path, o)
		if done || err != nil {
			return c.counted(err)
		}
	}
	src, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("kennel: set %q from file: %w", key, err)
	}
	defer src.Close()
	return c.counted(c.copySidecar(key, src, c.expiry(o.ttl), 0))
}

// counted counts a successful write.
func (c *Cache) counted(err error) error {
	if err == nil {
		c.sets.Add(1)
	}
	return err
}

// SetReader stores what r yields, up to io.EOF, under key as a sidecar file.
// The bytes are streamed to disk through a fixed buffer, never held whole
// in memory. If r fails, nothing is stored and its error is returned.
func (c *Cache) SetReader(key []byte, r io.Reader, opts ...SetOption) error {
	o, err := c.checkSidecarWrite(key, opts)
	if err != nil {
		return err
	}
	return c.counted(c.copySidecar(key, r, c.expiry(o.ttl), 0))
}

func (c *Cache) checkSidecarWrite(key []byte, opts []SetOption) (setOptions, error) {
	if c.opts.ReadOnly {
		return setOptions{}, ErrReadOnly
	}
	if c.closed.Load() {
		return setOptions{}, ErrClosed
	}
	if err := c.checkKey(key); err != nil {
		return setOptions{}, err
	}
	return c.setOptions(opts)
}

// sidecarDir returns the path of the sidecar folder.
func (c *Cache) sidecarDir() string { return filepath.Join(c.dir, segment.SidecarDir) }

// sidecarPath returns the path of the sidecar file n.
func (c *Cache) sidecarPath(n segment.SidecarName) string {
	return filepath.Join(c.dir, segment.SidecarDir, n.String())
}

// copyBufferSize is the buffer a streamed value goes through: large enough
// that the system calls cost little beside the copy.
const copyBufferSize = 1 << 20

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// copySidecar streams r into a new sidecar file and stores it under key.
func (c *Cache) copySidecar(key []byte, r io.Reader, expiry, fresh int64) error {
	c.waitForRoom()
	file, err := c.prepareSidecar(key, func(f io.Writer) (int64, uint64, error) {
		bp := copyBuffers.Get().(*[]byte)
		defer copyBuffers.Put(bp)
		buf := *bp
		h := xxhash.New()
		var n int64
		for {
			k, rerr := r.Read(buf)
			if k > 0 {
				if n += int64(k); n > c.opts.CacheSize {
					return n, 0, fmt.Errorf("%w: more than the budget of %d bytes", ErrValueTooLarge, c.opts.CacheSize)
				}
				h.Write(buf[:k])
				if _, err := f.Write(buf[:k]); err != nil {
					return n, 0, err
				}
			}
			if rerr == io.EOF {
				return n, h.Sum64(), nil
			}
			if rerr != nil {
				return n, 0, fmt.Errorf("kennel: reading the value: %w", rerr)
			}
		}
	})
	if err != nil {
		return err
	}
	return c.storeSidecars(sidecarRequest(key, file.desc, expiry, fresh), []sidecarFile{file})
}

// storeSidecar stores value, already in memory, as a sidecar file.
func (c *Cache) storeSidecar(key, value []byte, expiry, fresh int64) error {
	c.waitForRoom()
	file, err := c.prepareSidecar(key, fillFrom(value))
	if err != nil {
		return err
	}
	return c.storeSidecars(sidecarRequest(key, file.desc, expiry, fresh), []sidecarFile{file})
}

// fillFrom writes a value held in memory into a sidecar file.
func fillFrom(value []byte) func(io.Writer) (int64, uint64, error) {
	return func(f io.Writer) (int64, uint64, error) {
		_, err := f.Write(value)
		return int64(len(value)), xxhash.Sum64(value), err
	}
}

// sidecarRequest returns a request for one put-sidecar record.
func sidecarRequest(key []byte, desc segment.Sidecar, expiry, fresh int64) *request {
	r := &request{}
	r.one[0] = sidecarOp(key, desc, expiry, fresh)
	r.ops = r.one[:]
	return r
}

func sidecarOp(key []byte, desc segment.Sidecar, expiry, fresh int64) op {
	return op{kind: segment.KindPutSidecar, key: key, value: segment.AppendSidecar(nil, desc), expiry: expiry, fresh: fresh, side: desc.Size}
}

// sidecarFile is a sidecar file on its way in: written to tmp, to be
// renamed to its name; tmp is empty for a file moved in, already named.
type sidecarFile struct {
	tmp  string
	desc segment.Sidecar
	// For a file moved in: where it came from, and its mode and mtime
	// there, so that a write that fails gives it back as it was.
	movedFrom string
	moved     fs.FileInfo
}

// prepareSidecar writes a value into a temporary file with fill (which
// returns its size and checksum) and syncs it as the sync policy says.
// Callers wait for room first.
func (c *Cache) prepareSidecar(key []byte, fill func(io.Writer) (int64, uint64, error)) (sidecarFile, error) {
	f, err := c.fs.CreateTemp(c.sidecarDir(), "value"+segment.TempInfix+"*")
	if err != nil {
		return sidecarFile{}, fmt.Errorf("kennel: set %q: create sidecar: %w", key, err)
	}
	tmp := f.Name()
	size, sum, err := fill(f)
	if err == nil && c.opts.FileMode != 0o600 {
		err = f.Chmod(c.opts.FileMode) // CreateTemp makes 0600 files
	}
	if err == nil {
		err = c.markNeverHandedOut(tmp)
	}
	if err == nil {
		err = f.Datasync() // before it is named: see the top of this file
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.fs.Remove(tmp)
		return sidecarFile{}, fmt.Errorf("kennel: set %q: write sidecar: %w", key, err)
	}
	return sidecarFile{tmp: tmp, desc: segment.Sidecar{Name: segment.NewSidecarName(), Size: size, Sum: sum, Hashed: true}}, nil
}

// moveFile moves the file at path into the cache and stores it under key.
// It reports done=false, with nothing changed, when the file must be
// copied instead: not a regular file of this user with one link, or on
// another filesystem.
func (c *Cache) moveFile(key []byte, path string, o setOptions) (done bool, err error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return false, fmt.Errorf("kennel: set %q from file: %w", key, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || !ok || st.Nlink != 1 || int(st.Uid) != os.Geteuid() {
		return false, nil
	}
	// The bound a copy checks as it streams (copySidecar).
	if fi.Size() > c.opts.CacheSize {
		return true, fmt.Errorf("kennel: set %q from file: %w: %d bytes, more than the budget of %d bytes",
			key, ErrValueTooLarge, fi.Size(), c.opts.CacheSize)
	}
	desc := segment.Sidecar{Name: segment.NewSidecarName(), Size: fi.Size()}
	c.waitForRoom()
	held, err := c.holdSidecars()
	if err != nil {
		return false, err
	}
	defer held.Unlock()
	final := c.sidecarPath(desc.Name)
	if err := c.fs.RenameNoReplace(path, final); errors.Is(err, unix.EXDEV) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("kennel: set %q: move %s in: %w", key, path, err)
	}
	file := sidecarFile{desc: desc, movedFrom: path, moved: fi}
	// The checks above were made on the path; check what was moved.
	f, err := c.fs.OpenRead(final)
	if err == nil {
		err = c.adoptMoved(f, &file.desc)
		f.Close()
	}
	if err != nil {
		c.removeSidecarFiles([]sidecarFile{file})
		return true, fmt.Errorf("kennel: set %q: move %s in: %w", key, path, err)
	}
	return true, c.publishSidecars(sidecarRequest(key, file.desc, c.expiry(o.ttl), 0), []sidecarFile{file})
}

// adoptMoved checks a file moved in, gives it the cache's file mode and
// syncs it.
func (c *Cache) adoptMoved(f vfs.File, desc *segment.Sidecar) error {
	fi, err := f.OS().Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.Name())
	}
	desc.Size = fi.Size()
	if err := f.Chmod(c.opts.FileMode); err != nil {
		return err
	}
	if err := c.markNeverHandedOut(f.Name()); err != nil {
		return err
	}
	return f.Datasync()
}

// neverHandedOut is the mtime of a sidecar file whose path was never
// handed out: the sweep deletes it as soon as its value is gone.
var neverHandedOut = time.Unix(0, 0)

func (c *Cache) markNeverHandedOut(path string) error {
	return c.fs.Chtimes(path, neverHandedOut, neverHandedOut)
}

// keptUntil returns until when a sidecar file must stay although its value
// is gone: its mtime (see the top of this file).
func keptUntil(fi fs.FileInfo) time.Time { return fi.ModTime() }

// storeSidecars names the files (renaming each from its temporary name)
// and writes r, whose ops refer to them, under the sidecar lock.
func (c *Cache) storeSidecars(r *request, files []sidecarFile) error {
	held, err := c.holdSidecars()
	if err != nil {
		c.removeSidecarFiles(files)
		return err
	}
	defer held.Unlock()
	reached("sidecar-written")
	for i, f := range files {
		if err := c.fs.RenameNoReplace(f.tmp, c.sidecarPath(f.desc.Name)); err != nil {
			c.removeSidecarFiles(files)
			return fmt.Errorf("kennel: name sidecar: %w", err)
		}
		files[i].tmp = ""
	}
	return c.publishSidecars(r, files)
}

// removeSidecarFiles deletes files that will not be stored: by name those
// named already, the others by their temporary name. A file moved in goes
// back where it came from, with its mode and mtime: it is the caller's.
func (c *Cache) removeSidecarFiles(files []sidecarFile) {
	for _, f := range files {
		if f.movedFrom != "" {
			c.giveBack(f)
		} else if f.tmp == "" {
			c.fs.Remove(c.sidecarPath(f.desc.Name))
		} else {
			c.fs.Remove(f.tmp)
		}
	}
}

// giveBack moves a file moved in back to its path, as it was.
func (c *Cache) giveBack(f sidecarFile) {
	name := c.sidecarPath(f.desc.Name)
	if g, err := c.fs.OpenRead(name); err == nil {
		g.Chmod(f.moved.Mode().Perm())
		g.Close()
	}
	c.fs.Chtimes(name, time.Time{}, f.moved.ModTime()) // zero: atime unchanged
	if err := c.fs.RenameNoReplace(name, f.movedFrom); err != nil {
		c.log.Error("cannot give back a file whose store failed; it stays in the sidecar folder until a sweep",
			"file", f.movedFrom, "sidecar", f.desc.Name.String(), "err", err)
	}
}

// holdSidecars takes the sidecar lock shared: the sweep does not judge
// which files are referenced while a file is named but its record not yet
// published.
func (c *Cache) holdSidecars() (*lockf.Held, error) {
	held, err := c.locks.Lock(context.Background(), lockf.SidecarRange(), lockf.Shared)
	if err != nil {
		return nil, c.closedOr(fmt.Errorf("kennel: take the sidecar lock: %w", err))
	}
	return held, nil
}

// publishSidecars makes the names of files durable, then writes r. If r
// is not written, the files go; if it is written but fails (its sync
// failed), they stay: readers find the record. Callers hold the sidecar
// lock.
func (c *Cache) publishSidecars(r *request, files []sidecarFile) error {
	reached("sidecar-named")
	err := c.syncSidecarDir()
	if err != nil {
		err = fmt.Errorf("kennel: sync sidecar folder: %w", err)
	}
	if err == nil {
		err = c.commit(r)
	}
	if err != nil && r.applied == 0 {
		c.removeSidecarFiles(files)
	}
	return err
}

// syncSidecarDir makes the names given in the sidecar folder durable.
func (c *Cache) syncSidecarDir() error { return c.fs.SyncDir(c.sidecarDir()) }

// sidecarAt decodes the descriptor in the put-sidecar record e points to.
// Callers hold mu. A record that does not decode reports ok=false: reads
// of it fail with ErrCorrupt, and its file is no longer protected.
func (c *Cache) sidecarAt(e *index.Entry) (segment.Sidecar, bool) {
	m := c.maps[e.Seg]
	if m == nil {
		return segment.Sidecar{}, false
	}
	rec, err := m.Record(e.Offset, e.Size)
	if err != nil || rec.Kind != segment.KindPutSidecar {
		return segment.Sidecar{}, false
	}
	desc, err := segment.DecodeSidecar(rec.Value)
	return desc, err == nil
}

// weight is recordWeight for the record e points to. Callers hold mu.
func (c *Cache) weight(e *index.Entry) int64 {
	if segment.Kind(e.Kind) == segment.KindPutSidecar {
		if m := c.maps[e.Seg]; m != nil {
			if rec, err := m.Record(e.Offset, e.Size); err == nil {
				return recordWeight(&rec, int64(e.Size))
			}
		}
	}
	return int64(e.Size)
}

// recordWeight is what a record of size bytes costs the budget: its bytes,
// and for a put-sidecar record its file's too. The eviction policy counts
// records by weight.
func recordWeight(r *segment.Record, size int64) int64 {
	if r.Kind == segment.KindPutSidecar {
		if desc, err := segment.DecodeSidecar(r.Value); err == nil {
			return size + desc.Size
		}
	}
	return size
}

// readSidecar reads and checks a whole sidecar value. A missing file
// gives an error wrapping fs.ErrNotExist.
func (c *Cache) readSidecar(desc *segment.Sidecar) ([]byte, error) {
	f, err := c.openSidecar(desc)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v := make([]byte, desc.Size)
	if _, err := io.ReadFull(f, v); err != nil {
		return nil, c.sidecarDamaged(desc, fmt.Sprintf("read: %v", err))
	}
	if desc.Hashed && xxhash.Sum64(v) != desc.Sum {
		return nil, c.sidecarDamaged(desc, "checksum mismatch")
	}
	return v, nil
}

// openSidecar opens a sidecar file and checks that it is a regular file of
// the size its record gives.
func (c *Cache) openSidecar(desc *segment.Sidecar) (*os.File, error) {
	f, err := os.OpenFile(c.sidecarPath(desc.Name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if errors.Is(err, fs.ErrPermission) {
			// Not damage: the file is whole, this user may not read it.
			return nil, fmt.Errorf("kennel: read sidecar %s: %w", desc.Name, err)
		}
		return nil, c.sidecarDamaged(desc, err.Error())
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = c.sidecarDamaged(desc, err.Error())
	case !fi.Mode().IsRegular():
		err = c.sidecarDamaged(desc, "not a regular file")
	case fi.Size() != desc.Size:
		err = c.sidecarDamaged(desc, fmt.Sprintf("%d bytes, its record says %d", fi.Size(), desc.Size))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (c *Cache) sidecarDamaged(desc *segment.Sidecar, why string) error {
	c.reportCorrupt("damaged sidecar file", "sidecar", desc.Name.String(), "why", why)
	return fmt.Errorf("%w: sidecar %s: %s", ErrCorrupt, desc.Name, why)
}

// errSuperseded says a sidecar file was found missing because key's value
// changed since the lookup, and the old file was swept meanwhile: the
// caller looks the key up again.
var errSuperseded = errors.New("kennel: value superseded while its sidecar was opened")

// sidecarGone turns a sidecar file found missing (err wraps
// fs.ErrNotExist) into errSuperseded if key's value is no longer the record
// e points to, else into ErrCorrupt: the file of a live value is gone.
// Other errors are returned as they are.
func (c *Cache) sidecarGone(key []byte, e *index.Entry, desc *segment.Sidecar, err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if c.rlockCurrent() == nil {
		cur, ok := c.idx.Get(key)
		c.mu.RUnlock()
		if !ok || cur.Seg != e.Seg || cur.Offset != e.Offset {
			return errSuperseded
		}
	}
	c.reportCorrupt("sidecar file missing", "key", key, "sidecar", desc.Name.String())
	return fmt.Errorf("%w: key %q: sidecar %s is missing", ErrCorrupt, key, desc.Name)
}
