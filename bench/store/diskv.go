package store

import (
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/peterbourgon/diskv/v3"
)

func diskvEntry() Entry {
	return Entry{
		Name:   "diskv",
		Module: "github.com/peterbourgon/diskv/v3",
		Config: "one file per key (hex of the key), 2-level directory fan-out by key prefix; TempDir set, so writes are atomic (temp + rename), never fsynced; in-memory cache off (CacheSizeMax 0); large values through WriteStream/ReadStream",
		New:    func() Store { return &diskvStore{} },
	}
}

type diskvStore struct {
	d *diskv.Diskv
}

// diskvTransform spreads keys over two directory levels named by the first
// four hex digits of the key, as diskv's README suggests for many keys.
func diskvTransform(key string) []string {
	if len(key) < 4 {
		return nil
	}
	return []string{key[0:2], key[2:4]}
}

func (s *diskvStore) Open(dir string) error {
	base := filepath.Join(dir, "data")
	tmp := filepath.Join(dir, "tmp")
	for _, d := range []string{base, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	s.d = diskv.New(diskv.Options{
		BasePath:  base,
		TempDir:   tmp,
		Transform: diskvTransform,
		PathPerm:  0o700,
		FilePerm:  0o600,
	})
	return nil
}

func (s *diskvStore) Set(key, value []byte) error {
	return s.d.Write(hex.EncodeToString(key), value)
}

func (s *diskvStore) Get(key []byte) ([]byte, error) {
	v, err := s.d.Read(hex.EncodeToString(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return v, err
}

func (s *diskvStore) SetLarge(key []byte, r io.Reader, size int64) error {
	return s.d.WriteStream(hex.EncodeToString(key), io.LimitReader(r, size), false)
}

func (s *diskvStore) GetLarge(key []byte, w io.Writer) (int64, error) {
	rc, err := s.d.ReadStream(hex.EncodeToString(key), true)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(w, rc)
}

func (s *diskvStore) Close() error {
	s.d = nil
	return nil
}

// SharesDir reports that several processes may use one directory: with
// TempDir set every write is a rename.
func (s *diskvStore) SharesDir() bool { return true }
