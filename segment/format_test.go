package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// testRecords covers every kind and codec, the extremes of seq and expiry,
// and key and value lengths from the smallest to the largest allowed key.
func testRecords() []Record {
	return []Record{
		{Kind: KindPut, Codec: CodecNone, Seq: 1, Expiry: 0, Key: []byte("k"), Value: []byte("v")},
		{Kind: KindPut, Codec: CodecS2, Seq: 2, Expiry: 1_700_000_000_000_000_000, Key: []byte("compressed"), Value: bytes.Repeat([]byte{0xAB}, 300)},
		{Kind: KindPut, Codec: CodecNone, Seq: 0, Expiry: -1, Key: []byte("empty value"), Value: []byte{}},
		{Kind: KindPut, Codec: CodecNone, Seq: math.MaxUint64, Expiry: math.MaxInt64, Key: []byte("nil value"), Value: nil},
		{Kind: KindDelete, Codec: CodecNone, Seq: 42, Expiry: math.MinInt64, Key: []byte("tombstone")},
		{Kind: KindPutSidecar, Codec: CodecNone, Seq: 7, Expiry: 99, Key: []byte("sidecar"), Value: []byte("descriptor: 0123456789abcdef")},
		{Kind: KindPut, Codec: CodecNone, Seq: 8, Key: bytes.Repeat([]byte{0xFF}, MaxKeyLen), Value: []byte("largest key")},
		{Kind: KindPut, Codec: CodecNone, Seq: 9, Key: []byte("\x00binary\x00key\xff"), Value: bytes.Repeat([]byte{0}, 1000)},
		{Kind: KindPut, Codec: CodecS2, Seq: 10, Expiry: 2_000, Fresh: 1_000, Key: []byte("fresh"), Value: []byte("stale after 1000")},
	}
}

// handEncode encodes r from the layout drawn above AppendRecord, without
// using the encoder, so that a change of the wire format fails this test.
func handEncode(r Record) []byte {
	var fresh []byte
	if r.Fresh != 0 {
		fresh = binary.LittleEndian.AppendUint64(nil, uint64(r.Fresh))
	}
	b := make([]byte, 36+len(fresh)+len(r.Key)+len(r.Value))
	b[0] = 0xB7
	b[1] = byte(r.Kind)
	b[2] = byte(r.Codec)
	if fresh != nil {
		b[3] = 1
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(r.Key)))
	binary.LittleEndian.PutUint32(b[8:], uint32(len(r.Value)))
	binary.LittleEndian.PutUint64(b[12:], r.Seq)
	binary.LittleEndian.PutUint64(b[20:], uint64(r.Expiry))
	copy(b[36:], fresh)
	copy(b[36+len(fresh):], r.Key)
	copy(b[36+len(fresh)+len(r.Key):], r.Value)
	sum := xxhash.Sum64(append(append([]byte(nil), b[:28]...), b[36:]...))
	binary.LittleEndian.PutUint64(b[28:], sum)
	return b
}

func sameRecord(t testing.TB, got, want Record) {
	t.Helper()
	if got.Kind != want.Kind || got.Codec != want.Codec || got.Seq != want.Seq || got.Expiry != want.Expiry || got.Fresh != want.Fresh ||
		!bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) {
		t.Fatalf("decoded %s/%s seq=%d expiry=%d key=%.20q (%d bytes) value %d bytes; want %s/%s seq=%d expiry=%d key=%.20q (%d bytes) value %d bytes",
			got.Kind, got.Codec, got.Seq, got.Expiry, got.Key, len(got.Key), len(got.Value),
			want.Kind, want.Codec, want.Seq, want.Expiry, want.Key, len(want.Key), len(want.Value))
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range testRecords() {
		t.Run(r.Kind.String()+"/"+r.Codec.String()+"/"+string(r.Key[:min(len(r.Key), 12)]), func(t *testing.T) {
			enc := AppendRecord(nil, &r)
			if want := handEncode(r); !bytes.Equal(enc, want) {
				t.Fatalf("encoding differs from the documented layout:\n got %x\nwant %x", enc[:min(len(enc), 64)], want[:min(len(want), 64)])
			}
			if len(enc) != r.Size() {
				t.Fatalf("encoded %d bytes, Size() = %d", len(enc), r.Size())
			}
			// Decode from a buffer holding more after the record, as in a segment.
			buf := append(append([]byte(nil), enc...), 0xB7, 1, 2, 3)
			got, n, err := DecodeRecord(buf)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if n != len(enc) {
				t.Fatalf("DecodeRecord length %d, want %d", n, len(enc))
			}
			sameRecord(t, got, r)
			if got.Size() != n {
				t.Fatalf("decoded Size() %d, want %d", got.Size(), n)
			}
		})
	}
}

func TestAppendRecordAppends(t *testing.T) {
	prefix := []byte("prefix")
	rs := testRecords()[:3]
	b := append([]byte(nil), prefix...)
	for i := range rs {
		b = AppendRecord(b, &rs[i])
	}
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("AppendRecord overwrote what dst held")
	}
	off := len(prefix)
	for i := range rs {
		got, n, err := DecodeRecord(b[off:])
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		sameRecord(t, got, rs[i])
		off += n
	}
	if off != len(b) {
		t.Fatalf("records end at %d, buffer at %d", off, len(b))
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Version: FormatVersion, ID: 1},
		{Version: FormatVersion, Flags: 0xdeadbeef, ID: math.MaxUint64},
	} {
		b := AppendHeader([]byte("x"), h)[1:]
		if len(b) != HeaderSize {
			t.Fatalf("header is %d bytes, want %d", len(b), HeaderSize)
		}
		// Layout drawn above Header.
		if string(b[:8]) != "kennelSG" ||
			binary.LittleEndian.Uint32(b[8:]) != h.Version ||
			binary.LittleEndian.Uint32(b[12:]) != h.Flags ||
			binary.LittleEndian.Uint64(b[16:]) != h.ID ||
			binary.LittleEndian.Uint64(b[24:]) != xxhash.Sum64(b[:24]) {
			t.Fatalf("header %x does not follow the documented layout", b)
		}
		got, err := DecodeHeader(b)
		if err != nil {
			t.Fatalf("DecodeHeader: %v", err)
		}
		if got != h {
			t.Fatalf("DecodeHeader = %+v, want %+v", got, h)
		}
	}
}

// TestHeaderErrors checks that magic, version and checksum are checked in
// that order, each with its own error.
func TestHeaderErrors(t *testing.T) {
	good := AppendHeader(nil, Header{Version: FormatVersion, ID: 9})
	mutate := func(fns ...func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		for _, fn := range fns {
			fn(b)
		}
		return b
	}
	badMagic := func(b []byte) { b[0] = 'K' }
	badVersion := func(b []byte) { binary.LittleEndian.PutUint32(b[8:], FormatVersion+1) }
	badSum := func(b []byte) { b[17] ^= 1 } // the id: covered by the checksum only
	badSumField := func(b []byte) { b[31] ^= 0x80 }
	resum := func(b []byte) { binary.LittleEndian.PutUint64(b[24:], xxhash.Sum64(b[:24])) } // as a writer of that header would
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short", good[:HeaderSize-1], ErrTruncated},
		{"magic", mutate(badMagic), ErrNotSegment},
		{"magic before version", mutate(badMagic, badVersion), ErrNotSegment},
		{"magic before checksum", mutate(badMagic, badSum), ErrNotSegment},
		{"hint magic", append([]byte("kennelHT"), good[8:]...), ErrNotSegment},
		{"version", mutate(badVersion, resum), ErrVersion},
		{"version zero", mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[8:], 0) }, resum), ErrVersion},
		{"version damaged", mutate(badVersion), ErrCorrupt},
		{"version and checksum damaged", mutate(badVersion, badSum), ErrCorrupt},
		{"checksum over id", mutate(badSum), ErrCorrupt},
		{"checksum over flags", mutate(func(b []byte) { b[12] = 1 }), ErrCorrupt},
		{"checksum field", mutate(badSumField), ErrCorrupt},
	}
	all := []error{ErrTruncated, ErrNotSegment, ErrVersion, ErrCorrupt}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeHeader(tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeHeader: %v, want %v", err, tt.want)
			}
			for _, other := range all {
				if other != tt.want && errors.Is(err, other) {
					t.Fatalf("DecodeHeader: %v is also %v", err, other)
				}
			}
			if !strings.HasPrefix(err.Error(), "kennel: ") {
				t.Fatalf("error %q lacks the kennel prefix", err)
			}
		})
	}
}

// withLens returns a valid record's bytes with its length fields replaced,
// checksum recomputed, so that only the bounds checks can reject it.
func withLens(keyLen, valLen uint32, tail int) []byte {
	r := Record{Kind: KindPut, Seq: 1, Key: []byte("key"), Value: []byte("value")}
	b := AppendRecord(nil, &r)
	b = append(b, make([]byte, tail)...)
	for i := len(b) - tail; i < len(b); i++ {
		b[i] = byte(i) | 1
	}
	binary.LittleEndian.PutUint32(b[offKeyLen:], keyLen)
	binary.LittleEndian.PutUint32(b[offValLen:], valLen)
	return b
}

func TestDecodeRecordBounds(t *testing.T) {
	valid := AppendRecord(nil, &Record{Kind: KindPut, Seq: 5, Key: []byte("key"), Value: []byte("value")})
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrZeroed},
		{"one zero byte", []byte{0}, ErrZeroed},
		{"short zeros", make([]byte, RecordHeaderSize-1), ErrZeroed},
		{"zero header", make([]byte, RecordHeaderSize), ErrZeroed},
		{"zeros after header", make([]byte, 4096), ErrZeroed},
		{"zero marker, rest valid", append([]byte{0}, valid[1:]...), ErrZeroed},
		{"one marker byte", []byte{Marker}, ErrTruncated},
		{"short header", valid[:RecordHeaderSize-1], ErrTruncated},
		{"header only", valid[:RecordHeaderSize], ErrTruncated},
		{"half key", valid[:RecordHeaderSize+1], ErrTruncated},
		{"half value", valid[:len(valid)-2], ErrTruncated},
		{"last byte missing", valid[:len(valid)-1], ErrTruncated},
		{"key length zero", withLens(0, 8, 0), ErrCorrupt},
		{"key length over MaxKeyLen", withLens(MaxKeyLen+1, 0, 0), ErrCorrupt},
		{"key length max uint32", withLens(math.MaxUint32, 0, 0), ErrCorrupt},
		{"value length over MaxValueLen", withLens(3, MaxValueLen+1, 0), ErrCorrupt},
		{"value length max uint32", withLens(3, math.MaxUint32, 0), ErrCorrupt},
		{"key length past buffer", withLens(MaxKeyLen, 0, 100), ErrTruncated},
		{"value length past buffer", withLens(3, MaxValueLen, 100), ErrTruncated},
		{"lengths fit buffer, checksum fails", withLens(4, 4, 100), ErrCorrupt},
		{"bad marker", append([]byte{0xB6}, valid[1:]...), ErrCorrupt},
		{"kind zero", func() []byte { b := bytes.Clone(valid); b[offKind] = 0; return b }(), ErrCorrupt},
		{"kind unknown", func() []byte { b := bytes.Clone(valid); b[offKind] = 5; return b }(), ErrCorrupt},
		{"codec unknown", func() []byte { b := bytes.Clone(valid); b[offCodec] = 2; return b }(), ErrCorrupt},
		{"unknown flag", func() []byte { b := bytes.Clone(valid); b[offFlags] = 2; return b }(), ErrCorrupt},
		{"seal with a key", func() []byte { b := bytes.Clone(valid); b[offKind] = byte(KindSeal); return b }(), ErrCorrupt},
		{"seal without a next id", func() []byte {
			seal := SealRecord(1, 2)
			seal.Value = nil
			return AppendRecord(nil, &seal)
		}(), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, n, err := DecodeRecord(tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeRecord: %v, want %v", err, tt.want)
			}
			if n != 0 {
				t.Fatalf("DecodeRecord failed but returned length %d", n)
			}
			if tt.want != ErrCorrupt && errors.Is(err, ErrCorrupt) {
				t.Fatalf("a torn tail (%v) must not be classified as corruption", err)
			}
			if tt.want == ErrCorrupt && Torn(err) {
				t.Fatalf("damage (%v) must not be classified as a torn tail", err)
			}
		})
	}
}

// TestDecodeRecordFlippedByte flips every byte of encoded records in several
// ways. Decoding must never succeed and never panic. When the record is
// followed by enough bytes that its lengths still fit, the error is
// ErrCorrupt unless the marker became zero; only a length field flipped to
// point past the buffer may read as a truncation.
func TestDecodeRecordFlippedByte(t *testing.T) {
	for ri, r := range testRecords() {
		if len(r.Key) > 1000 {
			continue // the largest key costs time, not coverage
		}
		enc := AppendRecord(nil, &r)
		for _, extra := range []int{0, 64} {
			buf := append(bytes.Clone(enc), bytes.Repeat([]byte{0x5A}, extra)...)
			for i := range enc {
				// the last mask zeroes the byte
				for _, mask := range []byte{0x01, 0x10, 0x80, 0xFF, buf[i]} {
					if mask == 0 {
						continue
					}
					b := bytes.Clone(buf)
					b[i] ^= mask
					_, _, err := DecodeRecord(b)
					if err == nil {
						t.Fatalf("record %d (+%d bytes): byte %d ^ %#x decoded without error", ri, extra, i, mask)
					}
					want := ErrCorrupt
					switch {
					case i == 0 && b[0] == 0:
						want = ErrZeroed
					case i == offFlags || (i >= offKeyLen && i < offSeq):
						// the flags byte also sets the length (FlagFresh)
						kl := binary.LittleEndian.Uint32(b[offKeyLen:])
						vl := binary.LittleEndian.Uint32(b[offValLen:])
						n := RecordHeaderSize + int(kl) + int(vl)
						if b[offFlags]&FlagFresh != 0 {
							n += freshLen
						}
						if b[offFlags]&^knownFlags == 0 && kl != 0 && kl <= MaxKeyLen && vl <= MaxValueLen && n > len(b) {
							want = ErrTruncated
						}
					}
					if !errors.Is(err, want) {
						t.Fatalf("record %d (+%d bytes): byte %d ^ %#x: %v, want %v", ri, extra, i, mask, err, want)
					}
				}
			}
		}
	}
}

// TestSealEndsScan: a scan stops after a seal record, whatever follows it,
// and says so; the seal itself is not yielded.
func TestSealEndsScan(t *testing.T) {
	data := AppendHeader(nil, Header{Version: FormatVersion, ID: 1})
	data = AppendRecord(data, &Record{Kind: KindPut, Seq: 1, Key: []byte("a"), Value: []byte("1")})
	seal := SealRecord(2, 7)
	data = AppendRecord(data, &seal)
	wantEnd := len(data)
	// A whole record after the seal, as a dead writer may leave.
	data = AppendRecord(data, &Record{Kind: KindPut, Seq: 3, Key: []byte("b"), Value: []byte("2")})
	s := NewScanner(data, HeaderSize)
	var keys []string
	for s.Next() {
		keys = append(keys, string(s.Record().Key))
	}
	end, err := s.Stop()
	if err != nil || end != wantEnd || !s.Sealed() || s.ContinuesIn() != 7 || len(keys) != 1 || keys[0] != "a" {
		t.Fatalf("scan: keys %q, end %d, err %v, sealed %v, next %d; want [a], %d, nil, true, 7", keys, end, err, s.Sealed(), s.ContinuesIn(), wantEnd)
	}
	hint, err := BuildHint(1, data)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	hh, err := DecodeHint(hint, func(HintEntry) error { n++; return nil })
	if err != nil || hh.Length != int64(wantEnd) || n != 1 {
		t.Fatalf("hint: length %d, %d entries, err %v; want %d, 1, nil", hh.Length, n, err, wantEnd)
	}
}

func TestKindAndCodecStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{KindPut.String(), "put"},
		{KindDelete.String(), "delete"},
		{KindPutSidecar.String(), "put-sidecar"},
		{Kind(9).String(), "kind(9)"},
		{CodecNone.String(), "none"},
		{CodecS2.String(), "s2"},
		{Codec(7).String(), "codec(7)"},
	} {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}

// FuzzDecodeRecord: decoding arbitrary bytes never panics, reports a known
// class of error, and whatever decodes re-encodes to the very same bytes
// (nothing in a record is ignored by the checksum or the decoder).
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range testRecords() {
		if len(r.Key) > 1000 {
			continue
		}
		enc := AppendRecord(nil, &r)
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		f.Add(enc[:RecordHeaderSize])
	}
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add(withLens(MaxKeyLen, MaxValueLen, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRecord(t, data)
		// Repair the checksum of the record the header announces, so that
		// the fuzzer's headers and lengths reach the decoder's other checks.
		if len(data) >= RecordHeaderSize {
			n := uint64(RecordHeaderSize) + uint64(binary.LittleEndian.Uint32(data[offKeyLen:])) +
				uint64(binary.LittleEndian.Uint32(data[offValLen:]))
			if n <= uint64(len(data)) {
				data = bytes.Clone(data)
				binary.LittleEndian.PutUint64(data[offChecksum:], recordChecksum(data[:n]))
				checkRecord(t, data)
			}
		}
	})
}

func checkRecord(t *testing.T, data []byte) {
	rec, n, err := DecodeRecord(data)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrZeroed) {
			t.Fatalf("unclassified error %v", err)
		}
		if n != 0 {
			t.Fatalf("error with length %d", n)
		}
		return
	}
	if n < RecordHeaderSize || n > len(data) || n != rec.Size() {
		t.Fatalf("length %d for a buffer of %d bytes, record Size %d", n, len(data), rec.Size())
	}
	valid := rec.Kind.valid() && rec.Codec.valid() && len(rec.Key) >= 1 && len(rec.Key) <= MaxKeyLen
	if rec.Kind == KindSeal {
		valid = rec.Codec == CodecNone && rec.Fresh == 0 && len(rec.Key) == 0 && len(rec.Value) == sealValueLen
	}
	if !valid {
		t.Fatalf("decoded an invalid record: kind %d codec %d key %d bytes value %d bytes", rec.Kind, rec.Codec, len(rec.Key), len(rec.Value))
	}
	if re := AppendRecord(nil, &rec); !bytes.Equal(re, data[:n]) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", re, data[:n])
	}
}

// FuzzDecodeHeader: never panics; a header that decodes re-encodes to the
// same bytes; every error is one of the header's four.
func FuzzDecodeHeader(f *testing.F) {
	good := AppendHeader(nil, Header{Version: FormatVersion, Flags: 3, ID: 77})
	f.Add(good)
	f.Add(good[:20])
	f.Add(append(bytes.Clone(good), 1, 2, 3))
	f.Add([]byte("kennelHT0000000000000000000000000000000000000000"))
	f.Add(make([]byte, HeaderSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := DecodeHeader(data)
		if err != nil {
			n := 0
			for _, class := range []error{ErrTruncated, ErrNotSegment, ErrVersion, ErrCorrupt} {
				if errors.Is(err, class) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v is in %d classes, want exactly 1", err, n)
			}
			return
		}
		if h.Version != FormatVersion {
			t.Fatalf("accepted version %d", h.Version)
		}
		if re := AppendHeader(nil, h); !bytes.Equal(re, data[:HeaderSize]) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", re, data[:HeaderSize])
		}
	})
}
