package store

import (
	"errors"

	badger "github.com/dgraph-io/badger/v4"
)

// badgerGCDiscardRatio is the share of a value log file that must be garbage
// before RunValueLogGC rewrites it; 0.5 is what badger's documentation uses.
const badgerGCDiscardRatio = 0.5

func badgerEntry() Entry {
	return Entry{
		Name:   "badger",
		Module: "github.com/dgraph-io/badger/v4",
		Config: "DefaultOptions (64 MiB memtables, 256 MiB block cache, values < 1 MiB kept in the LSM) with SyncWrites false and no logger; one Update per Set, View + ValueCopy per Get; compaction = Flatten then RunValueLogGC(0.5) until nothing is left to rewrite",
		New:    func() Store { return &badgerStore{} },
	}
}

type badgerStore struct {
	db *badger.DB
}

func (s *badgerStore) Open(dir string) error {
	opts := badger.DefaultOptions(dir).WithSyncWrites(false).WithLogger(nil)
	db, err := badger.Open(opts)
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

func (s *badgerStore) Set(key, value []byte) error {
	return s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(key, value)
	})
}

func (s *badgerStore) Get(key []byte) ([]byte, error) {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	return v, err
}

func (s *badgerStore) Close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// Compact merges the LSM tree into one level, which drops overwritten
// versions, then garbage-collects the value log.
func (s *badgerStore) Compact() error {
	if err := s.db.Flatten(2); err != nil {
		return err
	}
	for {
		err := s.db.RunValueLogGC(badgerGCDiscardRatio)
		if errors.Is(err, badger.ErrNoRewrite) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
