package store

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// fileFanout is the number of subdirectories the file-per-key store spreads
// its files over, so that a million keys make directories of a few thousand
// entries each, which ext4 and xfs look up quickly.
const fileFanout = 256

func fileEntry() Entry {
	return Entry{
		Name:   "files",
		Config: "one file per key (hex of the key) in 256 subdirectories; written to a temp file and renamed into place, never fsynced; read with os.ReadFile",
		New:    func() Store { return &FileStore{} },
	}
}

// FileStore is the baseline: a plain file-per-key cache, the way many
// programs cache to disk without a storage engine. A value is written to a
// temporary file in its final directory and renamed over the key's file, so a
// reader sees either the old or the new value, never a torn one, and several
// processes may share the directory. Nothing is fsynced.
type FileStore struct {
	subdirs []string // the fileFanout directories, indexed by key hash
}

var (
	_ Store       = (*FileStore)(nil)
	_ LargeValues = (*FileStore)(nil)
	_ SharedDir   = (*FileStore)(nil)
)

// Open creates the directory tree if it does not exist.
func (s *FileStore) Open(dir string) error {
	subdirs := make([]string, fileFanout)
	for i := range subdirs {
		subdirs[i] = filepath.Join(dir, fmt.Sprintf("%02x", i))
		if err := os.MkdirAll(subdirs[i], 0o700); err != nil {
			return err
		}
	}
	s.subdirs = subdirs
	return nil
}

// path returns the file that holds key's value.
func (s *FileStore) path(key []byte) string {
	h := fnv.New32a()
	h.Write(key)
	return filepath.Join(s.subdirs[h.Sum32()%fileFanout], hex.EncodeToString(key))
}

// Set writes value to a temporary file and renames it over key's file.
func (s *FileStore) Set(key, value []byte) error {
	return s.write(key, func(f *os.File) error {
		_, err := f.Write(value)
		return err
	})
}

// SetLarge streams size bytes from r into key's file.
func (s *FileStore) SetLarge(key []byte, r io.Reader, size int64) error {
	return s.write(key, func(f *os.File) error {
		n, err := io.Copy(f, r)
		if err == nil && n != size {
			err = fmt.Errorf("files: wrote %d bytes, want %d", n, size)
		}
		return err
	})
}

func (s *FileStore) write(key []byte, fill func(*os.File) error) error {
	p := s.path(key)
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	err = fill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name()) // best effort: the error above is the one to report
	}
	return err
}

// Get reads key's file.
func (s *FileStore) Get(key []byte) ([]byte, error) {
	v, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return v, err
}

// GetLarge copies key's file to w.
func (s *FileStore) GetLarge(key []byte, w io.Writer) (int64, error) {
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(w, f)
}

// Close has nothing to release.
func (s *FileStore) Close() error { return nil }

// SharesDir reports that several processes may use one directory: every
// write is a rename, which is atomic between processes too.
func (s *FileStore) SharesDir() bool { return true }
