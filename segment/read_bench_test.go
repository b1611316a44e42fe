package segment

import (
	"fmt"
	"github.com/kennel-cache/kennel/internal/vfs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkRead compares the two ways of reading a record by location that
// package doc weighs: through a shared mapping, and with pread into a new
// buffer. Both check the record and return a copy of its value.
func BenchmarkRead(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	w, err := Create(vfs.OS{}, dir, 1, 0, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	offs := make([]int64, n)
	value := make([]byte, 100)
	for i := range n {
		offs[i] = w.Append(&Record{Kind: KindPut, Seq: uint64(i), Key: fmt.Appendf(nil, "key-%012d", i), Value: value})
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	size := w.Size()
	w.Close()
	recSize := uint32(RecordHeaderSize + 16 + 100)
	f, err := os.Open(filepath.Join(dir, FileName(1)))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()

	b.Run("mmap", func(b *testing.B) {
		m, err := MapFile(f, 1, size)
		if err != nil {
			b.Fatal(err)
		}
		defer m.Release()
		b.ReportAllocs()
		for b.Loop() {
			rec, err := m.Record(uint32(offs[rand.IntN(n)]), recSize)
			if err != nil {
				b.Fatal(err)
			}
			_ = append([]byte(nil), rec.Value...)
		}
	})
	b.Run("pread", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf := make([]byte, recSize)
			if _, err := f.ReadAt(buf, offs[rand.IntN(n)]); err != nil {
				b.Fatal(err)
			}
			if _, _, err := DecodeRecord(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
