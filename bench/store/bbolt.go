package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// boltCompactTxSize is how many bytes bbolt.Compact copies per transaction:
// large enough that a million small records take few commits, small enough
// that one transaction's dirty pages stay well under memory.
const boltCompactTxSize = 64 << 20

var boltBucket = []byte("kv")

func bboltEntry() Entry {
	return Entry{
		Name:   "bbolt",
		Module: "go.etcd.io/bbolt",
		Config: "one bucket; Options{NoSync, NoGrowSync, NoFreelistSync, FreelistType: map}; one Update transaction per Set, View per Get; compaction = bbolt.Compact into a new file, renamed over the old",
		New:    func() Store { return &boltStore{} },
	}
}

type boltStore struct {
	path string
	db   *bolt.DB
}

func boltOptions() *bolt.Options {
	return &bolt.Options{
		NoSync:         true,
		NoGrowSync:     true,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
}

func (s *boltStore) Open(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	s.path = filepath.Join(dir, "bolt.db")
	db, err := bolt.Open(s.path, 0o600, boltOptions())
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	})
	if err != nil {
		db.Close()
		return err
	}
	s.db = db
	return nil
}

func (s *boltStore) Set(key, value []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).Put(key, value)
	})
}

func (s *boltStore) Get(key []byte) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		got := tx.Bucket(boltBucket).Get(key)
		if got == nil {
			return ErrNotFound
		}
		v = bytes.Clone(got) // got is valid only inside the transaction
		return nil
	})
	return v, err
}

func (s *boltStore) MaxValueSize() int64 { return bolt.MaxValueSize }

func (s *boltStore) Close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// Compact copies the live pages into a new file with bbolt.Compact, the way
// `bbolt compact` does, and renames it over the old one: bbolt reuses freed
// pages but never shrinks its file otherwise.
func (s *boltStore) Compact() error {
	tmp := s.path + ".compact"
	os.Remove(tmp) // a leftover from an interrupted run; absence is fine
	dst, err := bolt.Open(tmp, 0o600, boltOptions())
	if err != nil {
		return err
	}
	err = bolt.Compact(dst, s.db, boltCompactTxSize)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	dir := filepath.Dir(s.path)
	if err := s.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return errors.Join(err, s.Open(dir))
	}
	return s.Open(dir)
}
