package store

import (
	"io"
	"log"

	"github.com/akrylysov/pogreb"
)

func pogrebEntry() Entry {
	return Entry{
		Name:   "pogreb",
		Module: "github.com/akrylysov/pogreb",
		Config: "default Options: no background sync, no background compaction, memory-mapped files; compaction = DB.Compact (it only rewrites sealed segments, and segments roll at 4 GiB)",
		New:    func() Store { return &pogrebStore{} },
	}
}

type pogrebStore struct {
	db *pogreb.DB
}

func (s *pogrebStore) Open(dir string) error {
	// pogreb logs every recovery step to a package logger; the harness
	// wants its output quiet. Setting it is idempotent.
	pogreb.SetLogger(log.New(io.Discard, "", 0))
	db, err := pogreb.Open(dir, &pogreb.Options{})
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

func (s *pogrebStore) Set(key, value []byte) error { return s.db.Put(key, value) }

func (s *pogrebStore) Get(key []byte) ([]byte, error) {
	v, err := s.db.Get(key)
	if err == nil && v == nil {
		// pogreb reports a miss as a nil value; the workloads never store
		// empty values, so nil is unambiguous here.
		return nil, ErrNotFound
	}
	return v, err
}

func (s *pogrebStore) MaxValueSize() int64 { return pogreb.MaxValueLength }

func (s *pogrebStore) Close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

func (s *pogrebStore) Compact() error {
	_, err := s.db.Compact()
	return err
}
