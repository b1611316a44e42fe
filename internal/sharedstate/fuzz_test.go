package sharedstate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzDecode feeds Decode arbitrary bytes. It must never panic; what it
// accepts must be a state file of this version whose fields are the words at
// their offsets, and decoding the same bytes again gives the same Header.
// Mutations of the valid seed past the header keep it valid, so the fuzzer
// explores the fields as well as the errors.
func FuzzDecode(f *testing.F) {
	valid := validBytes(f)
	f.Add(valid)
	f.Add(make([]byte, Size))
	f.Add(valid[:Size/2])
	f.Add(valid[:headerLen])
	f.Add([]byte("not a state file"))
	f.Add([]byte{})
	badSum := bytes.Clone(valid)
	badSum[16] ^= 1
	f.Add(badSum)

	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		h, err := Decode(b)
		if !bytes.Equal(in, b) {
			t.Fatal("Decode changed its input")
		}
		if err != nil {
			n := 0
			for _, e := range []error{ErrUninitialized, ErrCorrupt, ErrVersion} {
				if errors.Is(err, e) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v is %d of the package's errors, want exactly one", err, n)
			}
			if h != (Header{}) {
				t.Fatalf("Decode returned %+v with error %v", h, err)
			}
			return
		}
		le := binary.LittleEndian
		switch {
		case len(b) < Size:
			t.Fatalf("decoded a %d-byte file", len(b))
		case h.Version != Version:
			t.Fatalf("decoded version %d, want %d", h.Version, Version)
		case string(b[:8]) != "kennelSF" || le.Uint32(b[12:]) != Size:
			t.Fatalf("decoded a header % x", b[:headerLen])
		case uint64(h.Position) != le.Uint64(b[64:]) || h.Generation != le.Uint64(b[72:]) ||
			h.NextSeq != le.Uint64(b[128:]) || h.NextSegID != le.Uint64(b[136:]) ||
			h.Writing != (le.Uint64(b[144:]) != 0) || h.FailedSync != le.Uint64(b[152:]) ||
			h.Compacting != (le.Uint64(b[160:]) != 0):
			t.Fatalf("decoded fields %+v differ from the file's words", h)
		}
		h2, err := Decode(b)
		if err != nil || h2 != h {
			t.Fatalf("decoding again: %+v, %v; first %+v", h2, err, h)
		}
		// Bytes past Size are not part of the file's content.
		if h3, err := Decode(b[:Size]); err != nil || h3 != h {
			t.Fatalf("decoding the first Size bytes: %+v, %v; whole %+v", h3, err, h)
		}
	})
}
