package engine_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// cacheLikeValue makes a value shaped like what caches hold: JSON records
// with repeated field names and varied numbers and words.
func cacheLikeValue(size int) []byte {
	var b bytes.Buffer
	words := []string{"alpha", "kennel", "segment", "value", "user", "profile", "region", "expires"}
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"%s-%d","score":%d.%02d,"tags":["%s","%s"]},`,
			i*7919%100003, words[i%len(words)], i*31%977, i*13%1000, i%100, words[(i*3)%len(words)], words[(i*5)%len(words)])
	}
	return b.Bytes()[:size]
}

// BenchmarkCodec weighs the two codecs of klauspost/compress on cache-like
// values: the engine compresses on Set and decompresses on every Get, so
// speed counts as much as ratio. It reports the stored fraction (ratio).
func BenchmarkCodec(b *testing.B) {
	zenc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	zdec, _ := zstd.NewReader(nil)
	for _, size := range []int{1 << 10, 16 << 10} {
		v := cacheLikeValue(size)
		sEnc := s2.Encode(nil, v)
		zEnc := zenc.EncodeAll(v, nil)
		b.Run(fmt.Sprintf("s2/encode/size=%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				s2.Encode(nil, v)
			}
			b.ReportMetric(float64(len(sEnc))/float64(size), "ratio")
		})
		b.Run(fmt.Sprintf("s2/decode/size=%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := s2.Decode(nil, sEnc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("zstd/encode/size=%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				zenc.EncodeAll(v, nil)
			}
			b.ReportMetric(float64(len(zEnc))/float64(size), "ratio")
		})
		b.Run(fmt.Sprintf("zstd/decode/size=%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := zdec.DecodeAll(zEnc, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
