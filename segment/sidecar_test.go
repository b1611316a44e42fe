package segment

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSidecarRoundTrip(t *testing.T) {
	for _, s := range []Sidecar{
		{Name: NewSidecarName(), Size: 0},
		{Name: NewSidecarName(), Size: 1 << 40, Sum: 0xdeadbeef, Hashed: true},
		{Name: NewSidecarName(), Size: MaxSidecarSize, Hashed: true},
	} {
		b := AppendSidecar(nil, s)
		if len(b) != SidecarLen {
			t.Fatalf("encoded %d bytes, want %d", len(b), SidecarLen)
		}
		got, err := DecodeSidecar(b)
		if err != nil || got != s {
			t.Fatalf("round trip of %+v: %+v, %v", s, got, err)
		}
	}
}

func TestDecodeSidecarRejects(t *testing.T) {
	good := AppendSidecar(nil, Sidecar{Name: NewSidecarName(), Size: 10, Sum: 3, Hashed: true})
	for name, b := range map[string][]byte{
		"short":          good[:SidecarLen-1],
		"long":           append(bytes.Clone(good), 0),
		"unknown flag":   append([]byte{0x81}, good[1:]...),
		"size too large": append(bytes.Clone(good[:17]), append([]byte{0, 0, 0, 0, 0, 0, 0, 0x40}, good[25:]...)...),
		"sum unhashed":   append([]byte{0}, good[1:]...),
	} {
		if _, err := DecodeSidecar(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestSidecarNames(t *testing.T) {
	n := NewSidecarName()
	if n == NewSidecarName() {
		t.Fatal("two fresh names are equal")
	}
	s := n.String()
	if got, ok := ParseSidecarName(s); !ok || got != n || len(s) != 32 {
		t.Fatalf("ParseSidecarName(%q) = %v, %v", s, got, ok)
	}
	for _, bad := range []string{"", s[:31], s + "0", strings.ToUpper(s), "value.tmp-1", strings.Repeat("g", 32)} {
		if _, ok := ParseSidecarName(bad); ok && bad != s {
			t.Errorf("ParseSidecarName(%q) accepted", bad)
		}
	}
}

// FuzzDecodeSidecar: any input either fails with ErrCorrupt or decodes to
// a descriptor that encodes back to the same bytes.
func FuzzDecodeSidecar(f *testing.F) {
	f.Add(AppendSidecar(nil, Sidecar{Name: NewSidecarName(), Size: 123, Sum: 9, Hashed: true}))
	f.Add(AppendSidecar(nil, Sidecar{Size: 0}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSidecar(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if s.Size < 0 || s.Size > MaxSidecarSize {
			t.Fatalf("size %d out of bounds", s.Size)
		}
		if again := AppendSidecar(nil, s); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gives %x", b, again)
		}
	})
}
