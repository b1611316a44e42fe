package store

import (
	"bytes"
	"errors"

	"github.com/nutsdb/nutsdb"
)

const nutsBucket = "kv"

func nutsdbEntry() Entry {
	return Entry{
		Name:   "nutsdb",
		Module: "github.com/nutsdb/nutsdb",
		Config: "DefaultOptions (256 MiB segments, FileIO) with SyncEnable false and EntryIdxMode HintKeyAndRAMIdxMode (keys in RAM, values on disk; the default keeps values in RAM too); one BTree bucket; the adapter copies each key before Put (nutsdb keeps the caller's key slice in its index); compaction = Merge",
		New:    func() Store { return &nutsStore{} },
	}
}

type nutsStore struct {
	db *nutsdb.DB
}

func (s *nutsStore) Open(dir string) error {
	db, err := nutsdb.Open(nutsdb.DefaultOptions,
		nutsdb.WithDir(dir),
		nutsdb.WithSyncEnable(false),
		nutsdb.WithEntryIdxMode(nutsdb.HintKeyAndRAMIdxMode),
	)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *nutsdb.Tx) error {
		if tx.ExistBucket(nutsdb.DataStructureBTree, nutsBucket) {
			return nil
		}
		return tx.NewBucket(nutsdb.DataStructureBTree, nutsBucket)
	})
	if err != nil {
		db.Close()
		return err
	}
	s.db = db
	return nil
}

// Set copies the key: nutsdb keeps the caller's key slice in its in-memory
// index, so a caller that reuses its key buffer (as the workloads do)
// would corrupt it.
func (s *nutsStore) Set(key, value []byte) error {
	key = bytes.Clone(key)
	return s.db.Update(func(tx *nutsdb.Tx) error {
		return tx.Put(nutsBucket, key, value, nutsdb.Persistent)
	})
}

func (s *nutsStore) Get(key []byte) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *nutsdb.Tx) error {
		got, err := tx.Get(nutsBucket, key)
		v = bytes.Clone(got) // the value may be shared with nutsdb's index
		return err
	})
	if errors.Is(err, nutsdb.ErrKeyNotFound) || errors.Is(err, nutsdb.ErrNotFoundKey) {
		return nil, ErrNotFound
	}
	return v, err
}

func (s *nutsStore) Close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// Compact runs nutsdb's merge. nutsdb refuses to merge fewer than two data
// files; there is then nothing to reclaim, so that is not an error here.
func (s *nutsStore) Compact() error {
	err := s.db.Merge()
	if errors.Is(err, nutsdb.ErrDontNeedMerge) {
		return nil
	}
	return err
}
