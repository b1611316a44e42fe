package workload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kennel-cache/kennel/bench/store"
)

// largeKeyBase offsets the record indexes of large values, so that their
// keys can never equal a small record's.
const largeKeyBase = 1 << 40

// LargeConfig writes Total bytes as values of Size bytes each (at least one)
// into a fresh store in Dir, then reads them all back, checking each. It
// reports MB/s both ways. The store comes from New, opened on Dir, and is
// closed and removed at the end. Values go through the store's streaming API
// if it has one (store.LargeValues), else through Set and Get. The reads come
// right after the writes, so they are mostly served from the page cache.
type LargeConfig struct {
	Dir   string
	New   func() store.Store
	Size  int
	Total int64
}

// Name is "large-1MiB", "large-64MiB", ….
func (c LargeConfig) Name() string {
	if c.Size >= 1<<20 && c.Size%(1<<20) == 0 {
		return fmt.Sprintf("large-%dMiB", c.Size>>20)
	}
	return fmt.Sprintf("large-%dKiB", c.Size>>10)
}

// Run writes and reads the values.
func (c LargeConfig) Run() Result {
	name := c.Name()
	s := c.New()
	if lim, ok := s.(store.ValueLimit); ok && int64(c.Size) > lim.MaxValueSize() {
		return skipped(name, fmt.Sprintf("store refuses values over %d bytes", lim.MaxValueSize()))
	}
	r := newResult(name)
	if err := s.Open(c.Dir); err != nil {
		return r.fail(fmt.Errorf("open: %w", err))
	}
	defer os.RemoveAll(c.Dir)
	err := c.run(s, &r)
	if cerr := s.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return r.fail(err)
	}
	return r
}

func (c LargeConfig) run(s store.Store, r *Result) error {
	count := max(1, int(c.Total/int64(c.Size)))
	bytesTotal := float64(count) * float64(c.Size)
	buf := make([]byte, c.Size)
	x := mix64(uint64(c.Size))
	for p := 0; p+8 <= len(buf); p += 8 {
		binary.LittleEndian.PutUint64(buf[p:], x)
		x = mix64(x)
	}
	stream, _ := s.(store.LargeValues)
	key := make([]byte, KeySize)

	t := time.Now()
	for k := 0; k < count; k++ {
		i := uint64(largeKeyBase + k)
		binary.BigEndian.PutUint64(buf[0:8], i) // each value starts with its index
		var err error
		if stream != nil {
			err = stream.SetLarge(Key(key, i), bytes.NewReader(buf), int64(len(buf)))
			if k == 0 && errors.Is(err, store.ErrUnsupported) {
				stream = nil // this build cannot stream: use Set and Get
				r.Note = err.Error() + "; used Set and Get"
			}
		}
		if stream == nil {
			err = s.Set(Key(key, i), buf)
		}
		if err != nil {
			return fmt.Errorf("set value %d: %w", k, err)
		}
	}
	r.Metrics[WriteMBps] = bytesTotal / time.Since(t).Seconds() / 1e6
	if stream != nil {
		r.Note = "through the store's streaming API"
	}

	t = time.Now()
	for k := 0; k < count; k++ {
		i := uint64(largeKeyBase + k)
		var (
			head []byte
			n    int64
			tail byte
		)
		if stream != nil {
			w := &headWriter{}
			var err error
			if n, err = stream.GetLarge(Key(key, i), w); err != nil {
				return fmt.Errorf("get value %d: %w", k, err)
			}
			head, tail = w.head, w.last
		} else {
			v, err := s.Get(Key(key, i))
			if err != nil {
				return fmt.Errorf("get value %d: %w", k, err)
			}
			n = int64(len(v))
			if len(v) > 0 {
				head, tail = v[:min(8, len(v))], v[len(v)-1]
			}
		}
		if n != int64(c.Size) || len(head) < 8 || binary.BigEndian.Uint64(head) != i || tail != buf[len(buf)-1] {
			return fmt.Errorf("value %d read back wrong: %d bytes", k, n)
		}
	}
	r.Metrics[ReadMBps] = bytesTotal / time.Since(t).Seconds() / 1e6
	return nil
}

// headWriter discards what is written to it but keeps its first 8 bytes and
// its last byte, enough to check a streamed value.
type headWriter struct {
	head []byte
	last byte
}

func (w *headWriter) Write(p []byte) (int, error) {
	if len(w.head) < 8 {
		w.head = append(w.head, p[:min(8-len(w.head), len(p))]...)
	}
	if len(p) > 0 {
		w.last = p[len(p)-1]
	}
	return len(p), nil
}

var _ io.Writer = (*headWriter)(nil)
