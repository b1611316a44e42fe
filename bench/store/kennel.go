//go:build !nokennel

package store

import (
	"context"
	"errors"
	"io"

	"github.com/kennel-cache/kennel/engine"
)

const (
	// kennelCacheSize is far above what any workload writes, so that the
	// size budget never evicts a record: the workloads check every read and
	// count a miss of a loaded key as an error.
	kennelCacheSize = 64 << 30
	// kennelMaxValue is the engine's default limit, set explicitly because
	// the large-value workload writes values of exactly 64 MiB.
	kennelMaxValue = 64 << 20
)

func kennelEntry() Entry {
	cfg := "engine.Options{Sync: SyncNever, CacheSize: 64 GiB (nothing is evicted: the workloads check every read), MaxValueSize: 64 MiB}, other fields default (64 MiB segments, values over 64 KiB in sidecar files); churn ends with Compact; large values stream through SetReader and Open"
	return Entry{
		Name:   "kennel",
		Module: "github.com/kennel-cache/kennel",
		Config: cfg,
		New:    func() Store { return &kennelStore{} },
	}
}

type kennelStore struct {
	c *engine.Cache
}

func (s *kennelStore) Open(dir string) error {
	c, err := engine.Open(dir, engine.Options{
		Sync:         engine.SyncNever,
		CacheSize:    kennelCacheSize,
		MaxValueSize: kennelMaxValue,
	})
	if err != nil {
		return err
	}
	s.c = c
	return nil
}

func (s *kennelStore) Set(key, value []byte) error { return s.c.Set(key, value) }

func (s *kennelStore) Get(key []byte) ([]byte, error) {
	v, err := s.c.Get(key)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, ErrNotFound
	}
	return v, err
}

func (s *kennelStore) Close() error {
	if s.c == nil {
		return nil
	}
	err := s.c.Close()
	s.c = nil
	return err
}

func (s *kennelStore) MaxValueSize() int64 { return kennelMaxValue }

// SharesDir reports that several processes may open one kennel directory.
func (s *kennelStore) SharesDir() bool { return true }

func (s *kennelStore) Compact() error { return s.c.Compact() }

func (s *kennelStore) GetOrCreate(key []byte, create func() ([]byte, error)) ([]byte, error) {
	v, err := s.c.GetOrCreate(context.Background(), key, func(context.Context) ([]byte, error) { return create() })
	if errors.Is(err, engine.ErrNotFound) {
		return nil, ErrNotFound
	}
	return v, err
}

func (s *kennelStore) SetLarge(key []byte, r io.Reader, size int64) error {
	return s.c.SetReader(key, r)
}

func (s *kennelStore) GetLarge(key []byte, w io.Writer) (int64, error) {
	h, err := s.c.Open(key)
	if errors.Is(err, engine.ErrNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	defer h.Close()
	return io.Copy(w, h)
}
