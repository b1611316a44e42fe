package engine

import (
	"errors"
	"testing"
	"time"
)

func TestBatch(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set([]byte("gone"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	var b Batch
	b.Set([]byte("a"), []byte("1"))
	b.SetWithTTL([]byte("b"), []byte("2"), time.Hour)
	b.Delete([]byte("gone"))
	b.Set([]byte("a"), []byte("3")) // later writes in a batch win
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "3", "b": "2"}
	for k, v := range want {
		got, err := c.Get([]byte(k))
		if err != nil || string(got) != v {
			t.Fatalf("Get(%s) = %q, %v; want %q", k, got, err, v)
		}
	}
	if _, err := c.Get([]byte("gone")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}

	// An invalid write anywhere in a batch writes nothing.
	b.Reset()
	b.Set([]byte("c"), []byte("4"))
	b.Set(nil, []byte("5"))
	if err := c.Write(&b); !errors.Is(err, ErrEmptyKey) {
		t.Fatalf("batch with an empty key: %v", err)
	}
	if _, err := c.Get([]byte("c")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused batch wrote c: %v", err)
	}
	b.Reset()
	b.SetWithTTL([]byte("c"), nil, -time.Second)
	if err := c.Write(&b); !errors.Is(err, ErrInvalidTTL) {
		t.Fatalf("negative ttl: %v", err)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	b.Set([]byte("d"), nil)
	if err := c.Write(&b); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	c, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for k, v := range want {
		if got, err := c.Get([]byte(k)); err != nil || string(got) != v {
			t.Fatalf("after reopen Get(%s) = %q, %v; want %q", k, got, err, v)
		}
	}
}
