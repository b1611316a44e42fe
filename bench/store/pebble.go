package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// pebbleBloomBits is the bloom filter size per key: 10 bits give about a 1%
// false-positive rate, the value pebble's documentation uses.
const pebbleBloomBits = 10

func pebbleEntry() Entry {
	return Entry{
		Name:   "pebble",
		Module: "github.com/cockroachdb/pebble/v2",
		Config: "default Options (8 MiB block cache, 4 MiB memtable, WAL on) plus 10-bit bloom filters on every level, with every Set made with pebble.NoSync and info logging off; compaction = Flush then Compact over the whole key space",
		New:    func() Store { return &pebbleStore{} },
	}
}

// pebbleLogger drops pebble's informational messages, which report every
// flush and compaction, and keeps its errors.
type pebbleLogger struct{}

func (pebbleLogger) Infof(string, ...interface{}) {}
func (pebbleLogger) Errorf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (pebbleLogger) Fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}

type pebbleStore struct {
	db *pebble.DB
}

func (s *pebbleStore) Open(dir string) error {
	opts := &pebble.Options{Logger: pebbleLogger{}}
	// Bloom filters, which pebble's documentation recommends for point
	// lookups; every level inherits L0's policy.
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(pebbleBloomBits)
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

func (s *pebbleStore) Set(key, value []byte) error {
	return s.db.Set(key, value, pebble.NoSync)
}

func (s *pebbleStore) Get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v) // v is valid only until closer is closed
	return out, closer.Close()
}

func (s *pebbleStore) Close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// Compact flushes the memtable and compacts every key: all keys the
// workloads write are 16 bytes, so [nil, 0xff×17) covers them.
func (s *pebbleStore) Compact() error {
	if err := s.db.Flush(); err != nil {
		return err
	}
	return s.db.Compact(context.Background(), nil, bytes.Repeat([]byte{0xff}, 17), true)
}
