package engine_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
)

// benchSizes are the value sizes of the large-value benchmarks.
var benchSizes = []struct {
	name string
	size int
}{{"4KiB", 4 << 10}, {"16KiB", 16 << 10}, {"64KiB", 64 << 10}, {"256KiB", 256 << 10}, {"1MiB", 1 << 20}}

// BenchmarkInlineLimit compares a value kept inline with the same value in
// a sidecar file, by size: Set overwrites 64 keys in turn (so compaction
// and sweeps run as they would), Get reads them. Values are random bytes,
// as most large values are compressed already. Where sidecar overtakes
// inline is where Options.InlineLimit's default belongs.
func BenchmarkInlineLimit(b *testing.B) {
	for _, where := range []string{"inline", "sidecar"} {
		for _, sz := range benchSizes {
			opts := benchOptions()
			opts.InlineLimit = 1 << 30
			if where == "sidecar" {
				opts.InlineLimit = -1
			}
			value := randomBytes(1, sz.size)
			const keys = 64
			b.Run(fmt.Sprintf("%s/%s/set", where, sz.name), func(b *testing.B) {
				c := openCache(b, b.TempDir(), opts)
				b.SetBytes(int64(sz.size))
				b.ResetTimer()
				for i := range b.N {
					if err := c.Set(benchKey(i%keys), value); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%s/get", where, sz.name), func(b *testing.B) {
				c := openCache(b, b.TempDir(), opts)
				for i := range keys {
					if err := c.Set(benchKey(i), value); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(sz.size))
				b.ResetTimer()
				for i := range b.N {
					if _, err := c.Get(benchKey(i % keys)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// largeSizes are the sizes of BenchmarkLargeValue and BenchmarkDiskDD.
var largeSizes = []struct {
	name string
	size int
}{{"1MiB", 1 << 20}, {"16MiB", 16 << 20}, {"256MiB", 256 << 20}}

// BenchmarkLargeValue writes and reads large values in MB/s, to compare
// with BenchmarkDiskDD on the same disk. "write" is Set with SyncNever
// (like dd without a sync), "write-synced" Set with SyncInterval, which
// syncs each sidecar file before naming it (like dd conv=fdatasync);
// "read" is Get, "stream" reads through a Handle with io.Copy.
func BenchmarkLargeValue(b *testing.B) {
	for _, sz := range largeSizes {
		value := randomBytes(2, sz.size)
		for _, mode := range []struct {
			name string
			sync engine.SyncPolicy
		}{{"write", engine.SyncNever}, {"write-synced", engine.SyncInterval}} {
			b.Run(sz.name+"/"+mode.name, func(b *testing.B) {
				opts := engine.Options{Sync: mode.sync, CacheSize: 4 << 30, MaxValueSize: 1 << 30}
				c := openCache(b, b.TempDir(), opts)
				b.SetBytes(int64(sz.size))
				b.ResetTimer()
				for i := range b.N {
					if err := c.Set(benchKey(i%4), value); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		for _, read := range []struct {
			name string
			read func(c *engine.Cache) error
		}{
			{"read", func(c *engine.Cache) error { _, err := c.Get(benchKey(0)); return err }},
			{"stream", func(c *engine.Cache) error {
				h, err := c.Open(benchKey(0))
				if err != nil {
					return err
				}
				defer h.Close()
				_, err = io.Copy(io.Discard, h)
				return err
			}},
		} {
			b.Run(sz.name+"/"+read.name, func(b *testing.B) {
				c := largeValueCache(b, value)
				b.SetBytes(int64(sz.size))
				b.ResetTimer()
				for range b.N {
					if err := read.read(c); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func largeValueCache(b *testing.B, value []byte) *engine.Cache {
	c := openCache(b, b.TempDir(), engine.Options{Sync: engine.SyncNever, CacheSize: 4 << 30, MaxValueSize: 1 << 30})
	if err := c.Set(benchKey(0), value); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkSetFileMove moves a file into the cache: its cost does not
// depend on the file's size. Each file is written and synced outside the
// timer, and the disk given a moment to settle: right after an fsync of a
// large file the kernel is still busy with it, and a rename then waits for
// it in proportion to the size (an effect of the benchmark's own write).
// SyncNever: the other policies add an fdatasync of the file.
func BenchmarkSetFileMove(b *testing.B) {
	for _, sz := range largeSizes {
		b.Run(sz.name, func(b *testing.B) {
			dir := b.TempDir()
			c := openCache(b, filepath.Join(dir, "cache"), engine.Options{CacheSize: 64 << 30, Sync: engine.SyncNever})
			value := randomBytes(3, sz.size)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				src := filepath.Join(dir, "src-"+strconv.Itoa(i))
				if err := writeSynced(src, value); err != nil {
					b.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
				b.StartTimer()
				if err := c.SetFile(benchKey(i), src, engine.Movable()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// BenchmarkDiskDD is the disk's limit beside BenchmarkLargeValue: dd
// writing a file of each size from /dev/zero in 1 MiB blocks, plain (into
// the page cache) and with conv=fdatasync. Like the cache, it writes a new
// file each time and deletes the one from four writes before.
func BenchmarkDiskDD(b *testing.B) {
	if _, err := exec.LookPath("dd"); err != nil {
		b.Skip("no dd")
	}
	for _, sz := range largeSizes {
		for _, mode := range []struct{ name, conv string }{{"write", ""}, {"write-synced", "conv=fdatasync"}} {
			b.Run(sz.name+"/"+mode.name, func(b *testing.B) {
				dir := b.TempDir()
				b.SetBytes(int64(sz.size))
				for i := range b.N {
					os.Remove(filepath.Join(dir, "dd-"+strconv.Itoa(i-4)))
					args := []string{"if=/dev/zero", "of=" + filepath.Join(dir, "dd-"+strconv.Itoa(i)), "bs=1M", "count=" + strconv.Itoa(sz.size>>20), "status=none"}
					if mode.conv != "" {
						args = append(args, mode.conv)
					}
					if out, err := exec.Command("dd", args...).CombinedOutput(); err != nil {
						b.Fatalf("dd: %v\n%s", err, out)
					}
				}
			})
		}
	}
}
