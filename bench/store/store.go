// Package store adapts embedded key-value stores to one small interface, Store,
// so that the workloads in bench/workload drive every store the same way.
//
// An adapter is a value that is created closed, opened on a directory with
// Open, used, and closed with Close; it may be opened again afterwards on the
// same directory (the reopen workload does exactly that). Set and Get must be
// safe for concurrent use by several goroutines while the store is open.
//
// Features that only some stores have are optional interfaces, checked with a
// type assertion: LargeValues (streaming large values), ValueLimit,
// Compacter (the store's own compaction, merge or GC), SharedDir (several
// processes may open one directory at once) and GetOrCreater (a dogpile-safe
// read-through). A workload that needs one skips a store without it and says
// so in its note.
package store

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
)

// ErrNotFound is returned by Get when the key is not in the store. Adapters
// translate their store's own miss signal (an error, or a nil value) into it.
var ErrNotFound = errors.New("store: key not found")

// ErrUnsupported is returned by an optional method that this build of the
// store cannot serve (for example a kennel engine that does not have the
// method yet). Workloads skip the store with the error as their note.
var ErrUnsupported = errors.New("store: not supported")

// Unsupported returns an error that says why and matches ErrUnsupported.
func Unsupported(why string) error { return unsupportedError(why) }

type unsupportedError string

func (e unsupportedError) Error() string        { return string(e) }
func (e unsupportedError) Is(target error) bool { return target == ErrUnsupported }

// Store is the adapter every store implements.
type Store interface {
	// Open opens (creating if needed) the store kept in dir.
	Open(dir string) error
	// Set stores value under key. The store must not keep either slice.
	Set(key, value []byte) error
	// Get returns a copy of the value stored under key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Close closes the store; Open may be called again afterwards.
	Close() error
}

// LargeValues is implemented by stores with a streaming API for large values
// (kennel's sidecar files, diskv's streams). Stores without it get their large
// values through Set and Get as one slice.
type LargeValues interface {
	// SetLarge stores size bytes read from r under key.
	SetLarge(key []byte, r io.Reader, size int64) error
	// GetLarge writes the value stored under key to w and returns its length,
	// or ErrNotFound.
	GetLarge(key []byte, w io.Writer) (int64, error)
}

// ValueLimit is implemented by stores that refuse values over a size.
type ValueLimit interface {
	MaxValueSize() int64
}

// Compacter is implemented by stores that have their own way to reclaim the
// space of overwritten records: compaction, merge or garbage collection.
// Compact runs it to completion (as far as the store allows) before it returns.
type Compacter interface {
	Compact() error
}

// SharedDir is implemented by stores that several processes may open on the
// same directory at once, each reading and writing.
type SharedDir interface {
	SharesDir() bool
}

// GetOrCreater is implemented by stores with a read-through that calls create
// once for a missing key however many callers ask for it at the same time.
type GetOrCreater interface {
	// GetOrCreate returns the value stored under key; if there is none it
	// calls create, stores its result and returns it.
	GetOrCreate(key []byte, create func() ([]byte, error)) ([]byte, error)
}

// Entry describes one store the harness knows.
type Entry struct {
	// Name is the short name used on the command line and in reports.
	Name string
	// Module is the Go module that implements the store ("" for code in this
	// module).
	Module string
	// Config says, for a reader of the results, how the store is configured.
	Config string
	// New returns a fresh, closed adapter. It is nil when the store is not
	// built into this binary; Missing then says why.
	New func() Store
	// Missing says why the store cannot be run, when New is nil.
	Missing string
}

// Version returns the version of e.Module linked into this binary, as the
// build info records it: a tag for a pinned module, "(devel)" or a replace
// target for the kennel module, "" when it cannot be told.
func (e Entry) Version() string {
	if e.Module == "" {
		return "this module"
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if info.Main.Path == e.Module {
		return info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path != e.Module {
			continue
		}
		if d.Replace != nil {
			if d.Replace.Version != "" {
				return d.Replace.Version
			}
			return "replaced by " + d.Replace.Path
		}
		return d.Version
	}
	return ""
}

// Registry returns every store the harness knows, kennel first and the
// baseline file-per-key store last. Each call returns a new slice.
func Registry() []Entry {
	return []Entry{
		kennelEntry(),
		bboltEntry(),
		badgerEntry(),
		pebbleEntry(),
		pogrebEntry(),
		bitcaskEntry(),
		rosedbEntry(),
		nutsdbEntry(),
		diskvEntry(),
		fileEntry(),
	}
}

// Lookup returns the registry entry named name.
func Lookup(name string) (Entry, error) {
	var names []string
	for _, e := range Registry() {
		if e.Name == name {
			return e, nil
		}
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return Entry{}, fmt.Errorf("store: unknown store %q (known: %s)", name, strings.Join(names, ", "))
}

// Tidy removes what linked store packages leave behind in a process that
// never used them. rosedb creates an empty temporary directory when its
// package is initialised; the command calls Tidy before it exits.
func Tidy() {
	rosedbTidy()
}
