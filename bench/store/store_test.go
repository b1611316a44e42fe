package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Tidy()
	os.Exit(code)
}

// TestPinnedVersions checks that go.mod requires exactly the versions the
// benchmark results are published for: a `go get -u` must not move a peer
// silently.
func TestPinnedVersions(t *testing.T) {
	pins := map[string]string{
		"go.etcd.io/bbolt":                 "v1.5.0",
		"github.com/dgraph-io/badger/v4":   "v4.9.6",
		"github.com/akrylysov/pogreb":      "v0.10.2",
		"git.mills.io/prologic/bitcask":    "v1.0.2",
		"github.com/rosedblabs/rosedb/v2":  "v2.3.6",
		"github.com/nutsdb/nutsdb":         "v1.0.4",
		"github.com/cockroachdb/pebble/v2": "v2.1.7",
		"github.com/peterbourgon/diskv/v3": "v3.0.1",
	}
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && pins[f[0]] != "" {
			got[f[0]] = f[1]
		}
	}
	for _, e := range Registry() {
		if e.Module == "" || e.Module == "github.com/kennel-cache/kennel" {
			continue
		}
		if want := pins[e.Module]; want == "" {
			t.Errorf("%s: module %s has no pin in this test", e.Name, e.Module)
		} else if got[e.Module] != want {
			t.Errorf("%s: go.mod requires %s %q, want %s", e.Name, e.Module, got[e.Module], want)
		}
	}
}

// TestAdapters checks every built store against the adapter contract on a
// handful of keys: miss, set, get, overwrite, reopen, and the optional
// interfaces it claims.
func TestAdapters(t *testing.T) {
	for _, e := range Registry() {
		if e.New == nil {
			continue
		}
		t.Run(e.Name, func(t *testing.T) {
			dir := t.TempDir()
			s := e.New()
			if err := s.Open(dir); err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			k := []byte("0123456789abcdef")
			if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
				t.Fatalf("get of a missing key: %v, want ErrNotFound", err)
			}
			for _, v := range []string{"first", "second"} {
				if err := s.Set(k, []byte(v)); err != nil {
					t.Fatal(err)
				}
				if got, err := s.Get(k); err != nil || string(got) != v {
					t.Fatalf("get = %q, %v; want %q", got, err, v)
				}
			}
			// The harness reuses its key and value buffers: a store must not
			// keep them. Write through one buffer pair, read all back.
			kb, vb := make([]byte, 16), make([]byte, 64<<10)
			for i := 0; i < 8; i++ {
				copy(kb, fmt.Sprintf("reused-key-%05d", i))
				copy(vb, fmt.Sprintf("reused-value-%04d", i))
				if err := s.Set(kb, vb[:32<<10+i]); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 8; i++ {
				got, err := s.Get([]byte(fmt.Sprintf("reused-key-%05d", i)))
				if err != nil || len(got) != 32<<10+i || !bytes.HasPrefix(got, []byte(fmt.Sprintf("reused-value-%04d", i))) {
					t.Fatalf("reused buffers: record %d: %d bytes, %v", i, len(got), err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Open(dir); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(k); err != nil || string(got) != "second" {
				t.Fatalf("after reopen: get = %q, %v", got, err)
			}
			if c, ok := s.(Compacter); ok {
				if err := c.Compact(); err != nil && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("compact: %v", err)
				}
				if got, err := s.Get(k); err != nil || string(got) != "second" {
					t.Fatalf("after compact: get = %q, %v", got, err)
				}
			}
			if lv, ok := s.(LargeValues); ok {
				big := bytes.Repeat([]byte("large"), 1000)
				err := lv.SetLarge([]byte("big-key-big-key!"), bytes.NewReader(big), int64(len(big)))
				if !errors.Is(err, ErrUnsupported) {
					if err != nil {
						t.Fatal(err)
					}
					var buf bytes.Buffer
					n, err := lv.GetLarge([]byte("big-key-big-key!"), &buf)
					if err != nil || n != int64(len(big)) || !bytes.Equal(buf.Bytes(), big) {
						t.Fatalf("GetLarge: %d bytes, %v", n, err)
					}
					if _, err := lv.GetLarge([]byte("no-such-key-----"), io.Discard); !errors.Is(err, ErrNotFound) {
						t.Fatalf("GetLarge of a missing key: %v", err)
					}
				}
			}
		})
	}
}

func TestLookup(t *testing.T) {
	if _, err := Lookup("files"); err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup("nope"); err == nil {
		t.Fatal("Lookup of an unknown store succeeded")
	}
}
