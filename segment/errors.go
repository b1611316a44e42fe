package segment

import "errors"

// Errors returned when decoding segment and hint files. ErrCorrupt is the
// class of damaged data; ErrTruncated and ErrZeroed describe a file that
// simply ends (a torn tail), which is recovery, not corruption, at the end of
// the active segment.
var (
	// ErrCorrupt is returned when bytes on disk are not what was written:
	// a checksum mismatch, an impossible length, an unknown kind.
	ErrCorrupt = errors.New("kennel: corrupt data")

	// ErrTruncated is returned when a file ends inside a header or record.
	ErrTruncated = errors.New("kennel: truncated data")

	// ErrZeroed is returned when a record position holds zero bytes: the
	// file was extended but the record never reached it.
	ErrZeroed = errors.New("kennel: zeroed data")

	// ErrNotSegment is returned when a file does not start with the magic of
	// the expected kennel file type.
	ErrNotSegment = errors.New("kennel: not a kennel file")

	// ErrVersion is returned when a file was written in a format version this
	// package does not read.
	ErrVersion = errors.New("kennel: unsupported format version")
)
