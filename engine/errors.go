package engine

import (
	"errors"

	"github.com/kennel-cache/kennel/segment"
)

// Errors are grouped by the operation that returns them. Every error kennel
// returns wraps one of these with context; test with errors.Is.

// Returned by Open.
var (
	// ErrNotKennelDir is returned when Open is given a directory that holds
	// files but no kennel format file: kennel refuses to write into it.
	ErrNotKennelDir = errors.New("kennel: not a kennel directory")

	// ErrIncompatible is returned when the directory was written in a format
	// version this kennel does not read. The directory is left untouched.
	ErrIncompatible = errors.New("kennel: incompatible format version")

	// ErrLocked is returned when another process already has the directory
	// open and this build does not share directories between processes.
	ErrLocked = errors.New("kennel: directory in use by another process")

	// ErrNetworkFS is returned when the directory is on a network or FUSE
	// filesystem, whose byte-range locks cannot be trusted, and
	// Options.AllowNetworkFS is not set.
	ErrNetworkFS = errors.New("kennel: directory is on a network filesystem")

	// ErrInvalidOptions is returned when an Options field is out of range.
	ErrInvalidOptions = errors.New("kennel: invalid options")
)

// Returned by reads and writes.
var (
	// ErrNotFound is returned when a key has no value: never set, deleted,
	// expired or evicted.
	ErrNotFound = errors.New("kennel: not found")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("kennel: cache closed")

	// ErrEmptyKey is returned when a key has no bytes.
	ErrEmptyKey = errors.New("kennel: empty key")

	// ErrKeyTooLarge is returned when a key is longer than Options.MaxKeySize.
	ErrKeyTooLarge = errors.New("kennel: key too large")

	// ErrValueTooLarge is returned when a value is longer than
	// Options.MaxValueSize.
	ErrValueTooLarge = errors.New("kennel: value too large")

	// ErrReadOnly is returned by writes to a cache opened with
	// Options.ReadOnly.
	ErrReadOnly = errors.New("kennel: cache is read-only")

	// ErrInvalidTTL is returned when a TTL is negative.
	ErrInvalidTTL = errors.New("kennel: invalid ttl")

	// ErrCorrupt is returned when stored bytes fail their checks: a checksum
	// mismatch, a record that is not where the index says. kennel returns
	// this error rather than a value it cannot vouch for.
	ErrCorrupt = segment.ErrCorrupt
)
