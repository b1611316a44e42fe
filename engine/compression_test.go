package engine_test

import (
	"bytes"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

// TestCompression: compressible values of CompressMinSize or more are
// stored with S2 (the codec byte of their record says so) and read back
// whole, also after reopen and through Scan; small and incompressible
// values, and every value under CompressNone, are stored raw.
func TestCompression(t *testing.T) {
	compressible := bytes.Repeat([]byte("kennel caches values on disk; "), 200) // 6000 bytes
	incompressible := make([]byte, 6000)
	rand.Read(incompressible)
	small := bytes.Repeat([]byte("ab"), 100) // compressible but below 1 KiB
	// Large values: the first is tried on a sample and found incompressible.
	largeCompressible := bytes.Repeat(compressible, 50)
	largeIncompressible := make([]byte, 300_000)
	rand.Read(largeIncompressible)

	for _, tc := range []struct {
		name      string
		opts      engine.Options
		wantCodec map[string]segment.Codec
	}{
		{"default", engine.Options{}, map[string]segment.Codec{"c": segment.CodecS2, "i": segment.CodecNone, "s": segment.CodecNone, "C": segment.CodecS2, "I": segment.CodecNone}},
		{"none", engine.Options{Compression: engine.CompressNone}, map[string]segment.Codec{"c": segment.CodecNone, "i": segment.CodecNone, "s": segment.CodecNone, "C": segment.CodecNone, "I": segment.CodecNone}},
		{"min 100", engine.Options{CompressMinSize: 100}, map[string]segment.Codec{"c": segment.CodecS2, "i": segment.CodecNone, "s": segment.CodecS2, "C": segment.CodecS2, "I": segment.CodecNone}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.InlineLimit = 16 << 20 // every value inline: compression is for records
			dir := t.TempDir()
			values := map[string][]byte{"c": compressible, "i": incompressible, "s": small, "C": largeCompressible, "I": largeIncompressible}
			c := openCache(t, dir, tc.opts)
			for _, k := range []string{"c", "i", "C", "I"} {
				if err := c.Set([]byte(k), values[k]); err != nil {
					t.Fatal(err)
				}
			}
			var b engine.Batch
			b.Set([]byte("s"), small)
			if err := c.Write(&b); err != nil {
				t.Fatal(err)
			}
			check := func(c *engine.Cache) {
				t.Helper()
				for k, want := range values {
					got, err := c.Get([]byte(k))
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("Get(%s): %d bytes, %v; want %d bytes", k, len(got), err, len(want))
					}
				}
				n := 0
				if err := c.Scan(nil, func(k, v []byte) error {
					n++
					if !bytes.Equal(v, values[string(k)]) {
						t.Fatalf("Scan gave %d bytes for %s", len(v), k)
					}
					return nil
				}); err != nil || n != len(values) {
					t.Fatalf("Scan: %d keys, %v", n, err)
				}
			}
			check(c)
			mustClose(t, c)

			seg := filepath.Join(dir, segment.FileName(1))
			for _, r := range scanFile(t, seg) {
				if want := tc.wantCodec[r.key]; r.codec != want {
					t.Errorf("record of %s has codec %v, want %v", r.key, r.codec, want)
				}
				raw := len(values[r.key])
				if r.codec == segment.CodecS2 && len(r.value) >= raw-raw/8 {
					t.Errorf("compressed record of %s holds %d bytes for %d", r.key, len(r.value), raw)
				}
			}
			c = openCache(t, dir, tc.opts)
			check(c)
		})
	}
}
