package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func decodeAll(b []byte) (HintHeader, []HintEntry, error) {
	var out []HintEntry
	hh, err := DecodeHint(b, func(e HintEntry) error {
		e.Key = bytes.Clone(e.Key)
		out = append(out, e)
		return nil
	})
	return hh, out, err
}

func TestHintRoundTrip(t *testing.T) {
	recs := numbered(9)
	recs[1].Kind = KindPutSidecar
	recs[3].Expiry = -5
	data, offs := buildSegment(t, 0x1234, recs)
	hint, err := BuildHint(0x1234, data)
	if err != nil {
		t.Fatalf("BuildHint: %v", err)
	}
	// Header layout drawn above HintHeader.
	if string(hint[:8]) != "kennelHT" || binary.LittleEndian.Uint32(hint[8:]) != hintVersion ||
		binary.LittleEndian.Uint64(hint[16:]) != 0x1234 || binary.LittleEndian.Uint64(hint[24:]) != uint64(len(data)) ||
		binary.LittleEndian.Uint64(hint[32:]) != xxhash.Sum64(hint[:32]) {
		t.Fatalf("hint header %x does not follow the documented layout", hint[:40])
	}
	if n := binary.LittleEndian.Uint64(hint[len(hint)-16:]); n != uint64(len(recs)) {
		t.Fatalf("trailer count %d, want %d", n, len(recs))
	}
	// The first entry, as drawn: a put of an 8-byte key right after the
	// segment header, no expiry.
	first := []byte{byte(recs[0].Kind), byte(len(recs[0].Key)), 0}
	first = binary.AppendUvarint(first, uint64(recs[0].Size()))
	first = binary.AppendVarint(first, int64(recs[0].Seq))
	first = append(first, recs[0].Key...)
	if !bytes.HasPrefix(hint[40:], first) {
		t.Fatalf("first entry % x, want % x", hint[40:40+len(first)], first)
	}

	hh, got, err := decodeAll(hint)
	if err != nil {
		t.Fatalf("DecodeHint: %v", err)
	}
	if hh.ID != 0x1234 || hh.Length != int64(len(data)) {
		t.Fatalf("hint header %+v, want id 0x1234 length %d", hh, len(data))
	}
	if len(got) != len(recs) {
		t.Fatalf("%d entries, want %d", len(got), len(recs))
	}
	for i, e := range got {
		r := recs[i]
		if e.Kind != r.Kind || !bytes.Equal(e.Key, r.Key) || e.Offset != uint32(offs[i]) ||
			e.Size != uint32(r.Size()) || e.Seq != r.Seq || e.Expiry != r.Expiry {
			t.Fatalf("entry %d = %+v, want kind %s key %q offset %d size %d seq %d expiry %d",
				i, e, r.Kind, r.Key, offs[i], r.Size(), r.Seq, r.Expiry)
		}
	}
}

func TestHintEmptySegment(t *testing.T) {
	data, _ := buildSegment(t, 5, nil)
	hint, err := BuildHint(5, data)
	if err != nil {
		t.Fatalf("BuildHint: %v", err)
	}
	hh, got, err := decodeAll(hint)
	if err != nil || len(got) != 0 || hh.ID != 5 || hh.Length != HeaderSize {
		t.Fatalf("DecodeHint = %+v, %d entries, %v", hh, len(got), err)
	}
}

// TestBuildHintDamagedSegment: a hint is only built from a segment that
// scans cleanly to its end; otherwise it would hide the damage.
func TestBuildHintDamagedSegment(t *testing.T) {
	data, offs := buildSegment(t, 1, numbered(4))
	for name, b := range map[string][]byte{
		"torn":    data[:len(data)-1],
		"zeroed":  append(bytes.Clone(data), make([]byte, 64)...),
		"damaged": func() []byte { b := bytes.Clone(data); b[offs[1]+RecordHeaderSize] ^= 1; return b }(),
	} {
		if _, err := BuildHint(1, b); err == nil {
			t.Errorf("%s: BuildHint succeeded", name)
		}
	}
}

func TestHintFuncError(t *testing.T) {
	data, _ := buildSegment(t, 1, numbered(4))
	hint, err := BuildHint(1, data)
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	calls := 0
	_, err = DecodeHint(hint, func(HintEntry) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 2 {
		t.Fatalf("DecodeHint = %v after %d calls, want fn's error after 2", err, calls)
	}
}

// TestHintFlippedByte: every byte of a hint is covered by a checksum, so any
// flip is caught before a single entry reaches fn.
func TestHintFlippedByte(t *testing.T) {
	data, _ := buildSegment(t, 1, numbered(5))
	hint, err := BuildHint(1, data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range hint {
		for _, mask := range []byte{0x01, 0x80} {
			b := bytes.Clone(hint)
			b[i] ^= mask
			calls := 0
			_, err := DecodeHint(b, func(HintEntry) error { calls++; return nil })
			if err == nil {
				t.Fatalf("byte %d ^ %#x: DecodeHint succeeded", i, mask)
			}
			if calls != 0 {
				t.Fatalf("byte %d ^ %#x: fn called %d times before the damage was found", i, mask, calls)
			}
			want := ErrCorrupt
			switch {
			case i < 8:
				want = ErrNotSegment
			case i < 12:
				want = ErrVersion
			}
			if !errors.Is(err, want) {
				t.Fatalf("byte %d ^ %#x: %v, want %v", i, mask, err, want)
			}
		}
	}
}

func TestHintTruncated(t *testing.T) {
	data, _ := buildSegment(t, 1, numbered(5))
	hint, err := BuildHint(1, data)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(hint) {
		calls := 0
		_, err := DecodeHint(hint[:n], func(HintEntry) error { calls++; return nil })
		if err == nil || calls != 0 {
			t.Fatalf("hint cut to %d of %d bytes: %v after %d entries", n, len(hint), err, calls)
		}
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("hint cut to %d bytes: unclassified %v", n, err)
		}
	}
	// Bytes appended after the trailer are damage too.
	if _, _, err := decodeAll(append(bytes.Clone(hint), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("hint with a byte appended: %v, want ErrCorrupt", err)
	}
}

// TestHintEntryBounds builds hints whose checksums are right but whose
// entries could not describe a record of the segment.
func TestHintEntryBounds(t *testing.T) {
	const length = 1000
	ok := HintEntry{Kind: KindPut, Key: []byte("key"), Offset: HeaderSize, Size: RecordHeaderSize + 3 + 10, Seq: 1}
	tests := []struct {
		name   string
		e      HintEntry
		length int64
	}{
		{"entry past the segment", HintEntry{Kind: KindPut, Key: []byte("k"), Offset: length - 20, Size: 40, Seq: 1}, length},
		{"entry ending one byte past", HintEntry{Kind: KindPut, Key: []byte("k"), Offset: length - 40, Size: 41, Seq: 1}, length},
		{"offset inside the header", HintEntry{Kind: KindPut, Key: []byte("k"), Offset: HeaderSize - 1, Size: 40, Seq: 1}, length},
		{"offset near 4 GiB", HintEntry{Kind: KindPut, Key: []byte("k"), Offset: 0xFFFFFFF0, Size: 0x20, Seq: 1}, length},
		{"size smaller than its key", HintEntry{Kind: KindPut, Key: []byte("longkey"), Offset: HeaderSize, Size: RecordHeaderSize + 6, Seq: 1}, length},
		{"kind zero", HintEntry{Kind: 0, Key: []byte("k"), Offset: HeaderSize, Size: 40}, length},
		{"kind unknown", HintEntry{Kind: 4, Key: []byte("k"), Offset: HeaderSize, Size: 40}, length},
		{"empty key", HintEntry{Kind: KindPut, Offset: HeaderSize, Size: 40}, length},
		{"segment shorter than a header", ok, HeaderSize - 1},
		{"segment length absurd", ok, 1 << 40},
		{"segment length negative", ok, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hb := NewHintBuilder(1)
			hb.Add(ok)
			hb.Add(tt.e)
			_, got, err := decodeAll(hb.Finish(tt.length))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeHint: %v, want ErrCorrupt", err)
			}
			for _, e := range got {
				if int64(e.Offset) < HeaderSize || int64(e.Offset)+int64(e.Size) > tt.length {
					t.Fatalf("entry %+v outside a segment of %d bytes reached fn", e, tt.length)
				}
			}
		})
	}

	// The same entries in bounds decode.
	hb := NewHintBuilder(1)
	hb.Add(ok)
	hb.Add(HintEntry{Kind: KindDelete, Key: []byte("k"), Offset: length - 37, Size: 37, Seq: 2})
	if _, got, err := decodeAll(hb.Finish(length)); err != nil || len(got) != 2 {
		t.Fatalf("in-bounds hint: %d entries, %v", len(got), err)
	}
}

// TestHintCountMismatch: a trailer whose count disagrees with the entries
// (checksums recomputed) is corrupt, whatever fn saw.
func TestHintCountMismatch(t *testing.T) {
	data, _ := buildSegment(t, 1, numbered(3))
	hint, err := BuildHint(1, data)
	if err != nil {
		t.Fatal(err)
	}
	tr := len(hint) - 16
	binary.LittleEndian.PutUint64(hint[tr:], 4)
	binary.LittleEndian.PutUint64(hint[tr+8:], xxhash.Sum64(hint[40:tr+8]))
	if _, _, err := decodeAll(hint); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("DecodeHint with a wrong count: %v, want ErrCorrupt", err)
	}
}

func TestHintFileName(t *testing.T) {
	if got := HintFileName(0xab); got != "00000000000000ab.hint" {
		t.Fatalf("HintFileName = %q", got)
	}
}

// FuzzDecodeHint: arbitrary bytes never panic, and every entry that reaches
// fn lies within the segment the header describes. A hint that decodes with
// no flags set is rebuilt byte for byte by HintBuilder.
func FuzzDecodeHint(f *testing.F) {
	data, _ := buildSegment(f, 1, numbered(4))
	hint, err := BuildHint(1, data)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(hint)
	f.Add(hint[:len(hint)-1])
	empty, _ := buildSegment(f, 2, nil)
	h2, _ := BuildHint(2, empty)
	f.Add(h2)
	hb := NewHintBuilder(3)
	hb.Add(HintEntry{Kind: KindPut, Key: []byte("k"), Offset: 900, Size: 200, Seq: 1})
	f.Add(hb.Finish(1000))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkHint(t, b)
		// Repair both checksums so that the fuzzer's entries reach the
		// bounds checks rather than stopping at a checksum.
		if len(b) >= hintHeaderSize+hintTrailerSize {
			b = bytes.Clone(b)
			binary.LittleEndian.PutUint64(b[32:], xxhash.Sum64(b[:32]))
			binary.LittleEndian.PutUint64(b[len(b)-8:], xxhash.Sum64(b[hintHeaderSize:len(b)-8]))
			checkHint(t, b)
		}
	})
}

// checkHint decodes b and checks every entry that reaches fn against the
// header's segment length, then that a clean decode rebuilds b exactly.
func checkHint(t *testing.T, b []byte) {
	var entries []HintEntry
	hh, err := DecodeHint(b, func(e HintEntry) error {
		if e.Offset < HeaderSize || int64(e.Offset)+int64(e.Size) > hh0(b) {
			t.Fatalf("entry [%d, +%d) outside the segment of %d bytes", e.Offset, e.Size, hh0(b))
		}
		if len(e.Key) == 0 || len(e.Key) > MaxKeyLen || e.Size < RecordHeaderSize+uint32(len(e.Key)) || !e.Kind.valid() {
			t.Fatalf("impossible entry %+v", e)
		}
		e.Key = bytes.Clone(e.Key)
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotSegment) && !errors.Is(err, ErrVersion) {
			t.Fatalf("unclassified error %v", err)
		}
		return
	}
	if hh.Length < HeaderSize {
		t.Fatalf("accepted segment length %d", hh.Length)
	}
	if binary.LittleEndian.Uint32(b[12:]) != 0 {
		return
	}
	rb := NewHintBuilder(hh.ID)
	for _, e := range entries {
		rb.Add(e)
	}
	if re := rb.Finish(hh.Length); !bytes.Equal(re, b) {
		t.Fatalf("rebuilt hint differs:\n got %x\nwant %x", re, b)
	}
}

// hh0 reads the segment length a hint's header claims (DecodeHint checks the
// header before calling fn, so this is the length fn's entries must fit).
func hh0(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b[24:])) }
