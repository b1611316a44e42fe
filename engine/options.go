package engine

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/kennel-cache/kennel/internal/vfs"
	"github.com/kennel-cache/kennel/segment"
)

// SyncPolicy says when appended records are made durable with fdatasync.
type SyncPolicy int

const (
	// SyncInterval syncs in the background every Options.SyncInterval when
	// something was written: a power cut loses at most that interval's writes.
	SyncInterval SyncPolicy = iota
	// SyncAlways syncs before every write returns. Concurrent writers share
	// one sync (group commit), so its cost is per group, not per write.
	SyncAlways
	// SyncNever leaves syncing to the operating system (and to Sync and
	// Close): a power cut may lose any write since the last of those.
	// A process crash loses nothing: written records are in the page cache.
	SyncNever
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncInterval:
		return "interval"
	case SyncAlways:
		return "always"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// Compression selects how values are stored.
type Compression int

const (
	// CompressS2 compresses values with klauspost/compress/s2 (default).
	CompressS2 Compression = iota
	// CompressNone stores values as they are.
	CompressNone
)

// Options configure a cache. The zero value means defaults for every field.
type Options struct {
	// SegmentSize is the size at which the active segment is sealed and a
	// new one started. Default 64 MiB: large enough that rolls (one fsync
	// and one file create each) are rare, small enough that compaction
	// rewrites a segment in well under a second.
	SegmentSize int64

	// CacheSize is the budget for everything the directory holds: segments,
	// hints and the small files beside them. Default 1 GiB. Compaction
	// evicts when writes take the directory past it, and brings it back
	// under within about a segment's worth of bytes.
	CacheSize int64

	// CompactionInterval is how often compaction looks for expired records
	// to reclaim, besides the runs writes start when the budget fills.
	// Default 1 minute; negative disables the periodic runs.
	CompactionInterval time.Duration

	// ManualCompaction turns background compaction off: the directory is
	// compacted only when Compact is called (by this process or another),
	// and CacheSize is not enforced meanwhile. For tools and tests that
	// need the directory to change only when they say so.
	ManualCompaction bool

	// DefaultTTL applies to Set. Zero means values do not expire.
	DefaultTTL time.Duration

	// FreshTime is how long a value made by GetOrCreate stays fresh, unless
	// the call says otherwise (Fresh). Zero: fresh until it expires.
	FreshTime time.Duration

	// GraceTime is how long after its fresh time GetOrCreate still serves a
	// value while one caller regenerates it, unless the call says otherwise
	// (Grace). Zero: a value expires when it turns stale.
	GraceTime time.Duration

	// Sync is the durability policy; SyncInterval by default.
	Sync SyncPolicy

	// SyncInterval is the period of SyncInterval. Default 1 s.
	SyncInterval time.Duration

	// Compression says how values are stored: CompressS2 (the default)
	// compresses values of CompressMinSize bytes or more with S2 when that
	// saves at least an eighth; CompressNone stores every value as given.
	// S2 over zstd, measured on cache-like JSON (BenchmarkCodec): at 1 KiB
	// S2 decodes in 0.5 µs against zstd's 2.8 µs, encodes in 1.4 µs against
	// 6.8 µs, and stores 49% of the bytes against 38%. Every Get pays the
	// decode, so speed wins.
	Compression Compression

	// CompressMinSize is the smallest value that is compressed. Default
	// 1 KiB: below it the record header and the call cost more than the
	// few bytes saved.
	CompressMinSize int

	// MaxKeySize bounds key length. Default 4 KiB; at most 64 KiB.
	MaxKeySize int

	// MaxValueSize bounds the length of a value given as a byte slice.
	// Default 64 MiB; at most 1 GiB. Values streamed in with SetReader or
	// SetFile are bounded by CacheSize alone.
	MaxValueSize int

	// InlineLimit is the largest value stored inside a segment record;
	// larger ones get a sidecar file of their own, read back by Get as
	// if inline. Default 64 KiB (see README: below it a record is cheaper,
	// above it a file is). Negative: every value goes to a sidecar file.
	InlineLimit int

	// SidecarGrace is how long a sidecar file whose path was handed out
	// (Handle.Path) stays on disk after that, even if its value is gone
	// (overwritten, deleted, expired or evicted) meanwhile, so that a
	// program given the path can still open it by name. It is recorded in
	// the file, so every process sharing the directory keeps it. Its bytes
	// count against CacheSize meanwhile. Files whose path was never handed
	// out go with their value. Default 5 minutes; negative: no grace.
	SidecarGrace time.Duration

	// FileMode is the permission of files kennel creates. Default 0600;
	// the directory gets the same bits plus search (x) where read is set.
	FileMode os.FileMode

	// ReadOnly opens the cache without taking any lock and without writing
	// anything: writes return ErrReadOnly and nothing is recovered on disk
	// (a torn tail is skipped, not sealed). Reads still see what other
	// processes write, through the shared state file, as long as one has
	// the directory open read-write. Inspection tools use it on live
	// directories.
	ReadOnly bool

	// Exclusive opens the directory for this process alone: Open fails with
	// ErrLocked if another process has it open read-write, and others fail
	// to open it read-write while this one has it (ReadOnly opens still
	// work). The process holds the append lock for its lifetime, so writes
	// skip the lock and catch-up that sharing costs.
	Exclusive bool

	// AllowNetworkFS lets Open use a directory on NFS, CIFS or FUSE, whose
	// locks and mmap coherence kennel cannot rely on.
	AllowNetworkFS bool

	// Clock returns the current time; time.Now by default. Tests use it to
	// expire values without sleeping.
	Clock func() time.Time

	// Logger receives recovery and corruption reports. Default: discard.
	Logger *slog.Logger

	// fs is the filesystem the cache changes the directory through: the
	// real one, unless a test sets a crash or fault-injecting one
	// (export_test.go).
	fs vfs.FS
}

const (
	defaultSegmentSize        = 64 << 20
	defaultCacheSize          = 1 << 30
	defaultCompactionInterval = time.Minute
	defaultSyncInterval       = time.Second
	defaultMaxKeySize         = 4 << 10
	defaultCompressMin        = 1 << 10
	defaultMaxValueSize       = 64 << 20
	defaultInlineLimit        = 64 << 10
	defaultSidecarGrace       = 5 * time.Minute
	defaultFileMode           = 0o600

	// minSegmentSize keeps tests able to roll often while leaving room for
	// the header and a record.
	minSegmentSize = 4 << 10
	// maxSegmentSize keeps every offset within a segment in 32 bits with
	// room for one oversized record past the roll point.
	maxSegmentSize = 1 << 30
)

// withDefaults returns a copy of o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.SegmentSize == 0 {
		o.SegmentSize = defaultSegmentSize
	}
	if o.CacheSize == 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = defaultSyncInterval
	}
	if o.CompactionInterval == 0 {
		o.CompactionInterval = defaultCompactionInterval
	}
	if o.CompressMinSize == 0 {
		o.CompressMinSize = defaultCompressMin
	}
	if o.MaxKeySize == 0 {
		o.MaxKeySize = defaultMaxKeySize
	}
	if o.MaxValueSize == 0 {
		o.MaxValueSize = defaultMaxValueSize
	}
	if o.InlineLimit == 0 {
		o.InlineLimit = defaultInlineLimit
	}
	if o.SidecarGrace == 0 {
		o.SidecarGrace = defaultSidecarGrace
	}
	if o.FileMode == 0 {
		o.FileMode = defaultFileMode
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.fs == nil {
		o.fs = vfs.OS{}
	}
	return o
}

// validate checks options that already have their defaults.
func (o *Options) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
	switch {
	case o.SegmentSize < minSegmentSize || o.SegmentSize > maxSegmentSize:
		return bad("SegmentSize %d outside [%d, %d]", o.SegmentSize, minSegmentSize, maxSegmentSize)
	case o.CacheSize < 0:
		return bad("CacheSize %d is negative", o.CacheSize)
	case o.DefaultTTL < 0:
		return bad("DefaultTTL %v is negative", o.DefaultTTL)
	case o.FreshTime < 0 || o.GraceTime < 0:
		return bad("FreshTime %v or GraceTime %v is negative", o.FreshTime, o.GraceTime)
	case o.Sync < SyncInterval || o.Sync > SyncNever:
		return bad("unknown Sync policy %d", int(o.Sync))
	case o.SyncInterval < 0:
		return bad("SyncInterval %v is negative", o.SyncInterval)
	case o.Compression < CompressS2 || o.Compression > CompressNone:
		return bad("unknown Compression %d", int(o.Compression))
	case o.CompressMinSize < 0:
		return bad("CompressMinSize %d is negative", o.CompressMinSize)
	case o.MaxKeySize < 0 || o.MaxKeySize > segment.MaxKeyLen:
		return bad("MaxKeySize %d outside [1, %d]", o.MaxKeySize, segment.MaxKeyLen)
	case o.MaxValueSize < 0 || o.MaxValueSize > segment.MaxValueLen:
		return bad("MaxValueSize %d outside [1, %d]", o.MaxValueSize, segment.MaxValueLen)
	case o.ReadOnly && o.Exclusive:
		return bad("ReadOnly and Exclusive together")
	case o.FileMode&^os.ModePerm != 0:
		return bad("FileMode %v has non-permission bits", o.FileMode)
	}
	return nil
}

// dirMode derives the directory's mode from the file mode: whoever may read
// files may also search the directory.
func (o *Options) dirMode() os.FileMode {
	m := o.FileMode | 0o700
	if m&0o040 != 0 {
		m |= 0o010
	}
	if m&0o004 != 0 {
		m |= 0o001
	}
	return m
}
