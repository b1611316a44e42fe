package engine

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/kennel-cache/kennel/internal/vfs"
)

// Handle is an open value: the sidecar file that holds it, opened
// read-only, or the bytes of an inline value. It reads the value as it was
// when it was opened, whatever happens to the key afterwards: an
// overwrite, Delete or eviction only drops the file's name, and the open
// file stays readable until Close. A Handle is an io.ReadSeekCloser and an
// io.ReaderAt; it is not safe for concurrent use, except ReadAt.
type Handle struct {
	r     *io.SectionReader
	f     *os.File // nil for an inline value
	path  string
	size  int64
	grace time.Duration // Options.SidecarGrace
	fs    vfs.FS        // the cache's, to set the file's mtime

	// Reads from the start to the end in order are checked against the
	// sidecar's checksum: the Read that reaches the end fails with
	// ErrCorrupt if they did not match. Nil when there is nothing to check
	// or once the handle was read out of order.
	sum     hash.Hash64
	want    uint64
	summed  int64
	checked bool
}

// Open returns a handle on key's value, or ErrNotFound. For a value in a
// sidecar file, the file is opened and its size checked against its
// record; File and Path give access to it. Close the handle when done.
func (c *Cache) Open(key []byte) (*Handle, error) {
	if err := c.checkKey(key); err != nil {
		return nil, err
	}
	for {
		e, st, err := c.lookup(key)
		if err != nil {
			return nil, err
		}
		if st.side == nil {
			c.hits.Add(1)
			return &Handle{r: io.NewSectionReader(bytes.NewReader(st.value), 0, int64(len(st.value))), size: int64(len(st.value))}, nil
		}
		f, err := c.openSidecar(st.side)
		if err = c.sidecarGone(key, &e, st.side, err); errors.Is(err, errSuperseded) {
			continue
		}
		if err != nil {
			return nil, err
		}
		path := c.sidecarPath(st.side.Name)
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		h := &Handle{r: io.NewSectionReader(f, 0, st.side.Size), f: f, path: path, size: st.side.Size, grace: max(c.opts.SidecarGrace, 0), fs: c.fs}
		if st.side.Hashed {
			h.sum, h.want = xxhash.New(), st.side.Sum
		}
		c.hits.Add(1)
		return h, nil
	}
}

// Size returns the value's length in bytes.
func (h *Handle) Size() int64 { return h.size }

// File returns the open sidecar file, or nil for a value stored inline.
// It is for passing to code that uses the file itself, such as
// http.ServeContent (which then sends it with sendfile); reads through it
// are not checked against the checksum. It is closed by Close.
func (h *Handle) File() *os.File { return h.f }

// Path returns the absolute path of the sidecar file, for handing to
// another program: the file holds exactly the value's bytes, and kennel
// never changes them. The name stays valid at least Options.SidecarGrace
// from this call, even if the value is overwritten, deleted or evicted
// meanwhile: Path sets the file's mtime to the end of that grace, which
// every process's sweep honours. For a value stored inline it returns ""
// and no error.
func (h *Handle) Path() (string, error) {
	if h.f == nil {
		return "", nil
	}
	fi, err := h.f.Stat()
	if err != nil {
		return "", fmt.Errorf("kennel: hand out sidecar path: %w", err)
	}
	// A longer grace another hand-out gave the file stands.
	if keep := time.Now().Add(h.grace); keep.After(keptUntil(fi)) {
		if err := h.fs.Chtimes(h.path, keep, keep); err != nil {
			return "", fmt.Errorf("kennel: hand out sidecar path: %w", err)
		}
	}
	return h.path, nil
}

// Read reads the value in order, like an io.Reader.
func (h *Handle) Read(p []byte) (int, error) {
	if h.r == nil {
		return 0, os.ErrClosed
	}
	off, _ := h.r.Seek(0, io.SeekCurrent)
	n, err := h.r.Read(p)
	if h.sum != nil && off == h.summed {
		h.sum.Write(p[:n])
		h.summed += int64(n)
		if h.summed == h.size && !h.checked {
			h.checked = true
			if h.sum.Sum64() != h.want {
				return n, fmt.Errorf("%w: sidecar %s: checksum mismatch", ErrCorrupt, h.path)
			}
		}
	}
	return n, err
}

// ReadAt reads len(p) bytes at off, like an io.ReaderAt.
func (h *Handle) ReadAt(p []byte, off int64) (int, error) {
	if h.r == nil {
		return 0, os.ErrClosed
	}
	return h.r.ReadAt(p, off)
}

// Seek sets where the next Read starts, like an io.Seeker.
func (h *Handle) Seek(offset int64, whence int) (int64, error) {
	if h.r == nil {
		return 0, os.ErrClosed
	}
	return h.r.Seek(offset, whence)
}

// Close closes the file. Reads afterwards fail.
func (h *Handle) Close() error {
	if h.r == nil {
		return os.ErrClosed
	}
	h.r = nil
	if h.f != nil {
		return h.f.Close()
	}
	return nil
}

// The handle is what net/http and io expect.
var (
	_ io.ReadSeekCloser = (*Handle)(nil)
	_ io.ReaderAt       = (*Handle)(nil)
)
