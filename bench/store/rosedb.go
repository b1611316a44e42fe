package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/rosedblabs/rosedb/v2"
)

func rosedbEntry() Entry {
	return Entry{
		Name:   "rosedb",
		Module: "github.com/rosedblabs/rosedb/v2",
		Config: "DefaultOptions (1 GiB WAL segments, no block cache) with Sync false; the adapter copies each key before Put (rosedb keeps the caller's key slice in its index); compaction = Merge(reopen=true)",
		New:    func() Store { return &rosedbStore{} },
	}
}

type rosedbStore struct {
	db *rosedb.DB
}

func (s *rosedbStore) Open(dir string) error {
	opts := rosedb.DefaultOptions
	opts.DirPath = dir
	opts.Sync = false
	db, err := rosedb.Open(opts)
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

// Set copies the key: rosedb keeps the caller's key slice in its in-memory
// index, so a caller that reuses its key buffer (as the workloads do)
// would corrupt it.
func (s *rosedbStore) Set(key, value []byte) error { return s.db.Put(bytes.Clone(key), value) }

func (s *rosedbStore) Get(key []byte) ([]byte, error) {
	v, err := s.db.Get(key)
	if errors.Is(err, rosedb.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	return v, err
}

func (s *rosedbStore) Close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

func (s *rosedbStore) Compact() error { return s.db.Merge(true) }

// rosedbTidy removes the empty temporary directory rosedb's DefaultOptions
// creates when the package is initialised, in every process that links it.
func rosedbTidy() {
	d := rosedb.DefaultOptions.DirPath
	if d != "" && strings.HasPrefix(filepath.Base(d), "rosedb-temp") {
		os.Remove(d) // removes it only if it is still empty
	}
}
