//go:build linux

package lockf_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/kennel-cache/kennel/lockf"
)

// BenchmarkLockUnlock measures an uncontended Lock and Unlock of a key
// range: two fcntl calls plus the in-process table.
func BenchmarkLockUnlock(b *testing.B) {
	for _, mode := range []lockf.Mode{lockf.Shared, lockf.Exclusive} {
		b.Run("mode="+mode.String(), func(b *testing.B) {
			f, _ := openLockFile(b)
			r := lockf.KeyRange([]byte("bench"))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				h, err := f.Lock(ctx, r, mode)
				if err != nil {
					b.Fatal(err)
				}
				if err := h.Unlock(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTryLock measures TryLock and Unlock, free and busy (held through
// another File, so the kernel refuses).
func BenchmarkTryLock(b *testing.B) {
	b.Run("free", func(b *testing.B) {
		f, _ := openLockFile(b)
		r := lockf.KeyRange([]byte("bench"))
		b.ReportAllocs()
		for b.Loop() {
			h, ok, err := f.TryLock(r, lockf.Exclusive)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
			if err := h.Unlock(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("busy", func(b *testing.B) {
		f, path := openLockFile(b)
		other := openPath(b, path)
		r := lockf.KeyRange([]byte("bench"))
		h := mustLock(b, other, r, lockf.Exclusive)
		defer h.Unlock()
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := f.TryLock(r, lockf.Exclusive); err != nil || ok {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkSharedJoin measures a shared Lock and Unlock while another
// goroutine of the process holds the range shared: no system call at all.
func BenchmarkSharedJoin(b *testing.B) {
	f, _ := openLockFile(b)
	r := lockf.KeyRange([]byte("bench"))
	h := mustLock(b, f, r, lockf.Shared)
	defer h.Unlock()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		h, err := f.Lock(ctx, r, lockf.Shared)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.Unlock(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLockUnlockParallel locks distinct keys from all Ps at once, to
// show the cost of sharing one table and one descriptor.
func BenchmarkLockUnlockParallel(b *testing.B) {
	f, _ := openLockFile(b)
	ctx := context.Background()
	b.ReportAllocs()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		r := lockf.KeyRange([]byte("bench" + strconv.FormatInt(next.Add(1), 10)))
		for pb.Next() {
			h, err := f.Lock(ctx, r, lockf.Exclusive)
			if err != nil {
				b.Fatal(err)
			}
			if err := h.Unlock(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkKeyRange(b *testing.B) {
	for _, size := range []int{16, 256} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			key := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				lockf.KeyRange(key)
			}
		})
	}
}
