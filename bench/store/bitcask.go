package store

import (
	"errors"

	"git.mills.io/prologic/bitcask"
)

const (
	// bitcaskMaxValue raises bitcask's 64 KiB default value limit so that
	// the large-value workload's 64 MiB values fit.
	bitcaskMaxValue = 128 << 20
	// bitcaskDatafileSize raises the 1 MiB default: bitcask rewrites its
	// whole index file each time a data file fills, which makes loading a
	// million keys into 1 MiB files quadratic.
	bitcaskDatafileSize = 256 << 20
)

func bitcaskEntry() Entry {
	return Entry{
		Name:   "bitcask",
		Module: "git.mills.io/prologic/bitcask",
		Config: "WithSync(false), WithMaxValueSize(128 MiB) (default 64 KiB), WithMaxDatafileSize(256 MiB) (default 1 MiB: it rewrites its index at each roll); compaction = Merge",
		New:    func() Store { return &bitcaskStore{} },
	}
}

type bitcaskStore struct {
	db *bitcask.Bitcask
}

func (s *bitcaskStore) Open(dir string) error {
	db, err := bitcask.Open(dir,
		bitcask.WithSync(false),
		bitcask.WithMaxValueSize(bitcaskMaxValue),
		bitcask.WithMaxDatafileSize(bitcaskDatafileSize),
	)
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

func (s *bitcaskStore) Set(key, value []byte) error { return s.db.Put(key, value) }

func (s *bitcaskStore) Get(key []byte) ([]byte, error) {
	v, err := s.db.Get(key)
	if errors.Is(err, bitcask.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	return v, err
}

func (s *bitcaskStore) MaxValueSize() int64 { return bitcaskMaxValue }

func (s *bitcaskStore) Close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

func (s *bitcaskStore) Compact() error { return s.db.Merge() }
