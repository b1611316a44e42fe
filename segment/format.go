package segment

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"
)

// Wire format constants. Changing any of them changes the on-disk format and
// requires a new FormatVersion.
const (
	// FormatVersion is the version of the segment and hint layout written by
	// this package. A file with a different version is refused, never rewritten.
	FormatVersion = 1

	// HeaderSize is the size of the segment file header.
	HeaderSize = 32

	// RecordHeaderSize is the size of the fixed part of a record.
	RecordHeaderSize = 36

	// Marker is the first byte of every record. It is non-zero so that a
	// zero-filled tail (a file extended but never written) never decodes.
	Marker = 0xB7

	// MaxKeyLen bounds key lengths read from disk before anything is allocated.
	MaxKeyLen = 1<<16 - 1

	// MaxValueLen bounds stored value lengths read from disk. Offsets in the
	// index are 32 bits wide, so a record must fit in 4 GiB with room to spare.
	MaxValueLen = 1 << 30
)

// segmentMagic opens every segment file.
var segmentMagic = [8]byte{'k', 'e', 'n', 'n', 'e', 'l', 'S', 'G'}

// Kind says what a record does to its key.
type Kind uint8

const (
	// KindPut stores the value inline in the record.
	KindPut Kind = 1
	// KindDelete is a tombstone: the key has no value from this record on.
	KindDelete Kind = 2
	// KindPutSidecar stores a descriptor of a sidecar file holding the value.
	KindPutSidecar Kind = 3
	// KindSeal ends a segment: it has no key, its value is the id of the
	// segment the log continues in, and nothing after it is a record. A
	// segment is sealed with one when it is rolled, so that bytes a dead
	// writer left past the last published record, or a segment it created
	// and never published, are never read as records.
	KindSeal Kind = 4
)

func (k Kind) valid() bool { return k >= KindPut && k <= KindSeal }

func (k Kind) String() string {
	switch k {
	case KindPut:
		return "put"
	case KindDelete:
		return "delete"
	case KindPutSidecar:
		return "put-sidecar"
	case KindSeal:
		return "seal"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Codec says how a record's value bytes are encoded.
type Codec uint8

const (
	// CodecNone stores the value bytes as they are.
	CodecNone Codec = 0
	// CodecS2 stores the value compressed with klauspost/compress/s2.
	CodecS2 Codec = 1
)

func (c Codec) valid() bool { return c <= CodecS2 }

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecS2:
		return "s2"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Header is the fixed header at offset 0 of every segment file.
//
//	+---------+---------+---------+------------+----------+
//	| magic   | version | flags   | segment id | checksum |
//	| 8 bytes | u32 LE  | u32 LE  | u64 LE     | u64 LE   |
//	+---------+---------+---------+------------+----------+
//	0         8         12        16           24         32
//
// checksum is xxhash64 of bytes [0, 24).
type Header struct {
	Version uint32
	Flags   uint32
	ID      uint64
}

// Segment header flags.
const (
	// HeaderCompacted marks a segment written by compaction: it holds
	// records copied out of older segments (with their sequence numbers)
	// and the tombstones compaction keeps. It is not part of the log's seal
	// chain, and its records are never applied as new writes.
	HeaderCompacted = 1 << 0
)

// Compacted reports whether the segment was written by compaction.
func (h Header) Compacted() bool { return h.Flags&HeaderCompacted != 0 }

// AppendHeader encodes h (with this package's magic) after dst.
func AppendHeader(dst []byte, h Header) []byte {
	start := len(dst)
	dst = append(dst, segmentMagic[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, h.Version)
	dst = binary.LittleEndian.AppendUint32(dst, h.Flags)
	dst = binary.LittleEndian.AppendUint64(dst, h.ID)
	return binary.LittleEndian.AppendUint64(dst, xxhash.Sum64(dst[start:]))
}

// ReadHeader reads and decodes the header at the start of r (a segment
// file opened for reading).
func ReadHeader(r io.Reader) (Header, error) {
	b := make([]byte, HeaderSize)
	n, _ := io.ReadFull(r, b)
	return DecodeHeader(b[:n])
}

// DecodeHeader checks magic, then version, then checksum, each with its own
// error, and returns the header.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: segment header is %d bytes, want %d", ErrTruncated, len(b), HeaderSize)
	}
	if [8]byte(b[:8]) != segmentMagic {
		return Header{}, fmt.Errorf("%w: bad segment magic %q", ErrNotSegment, b[:8])
	}
	h := Header{
		Version: binary.LittleEndian.Uint32(b[8:]),
		Flags:   binary.LittleEndian.Uint32(b[12:]),
		ID:      binary.LittleEndian.Uint64(b[16:]),
	}
	// Another version is one written so, checksum and all; a version
	// field that fails the checksum is a damaged header, not a reason to
	// refuse the whole directory.
	sumOK := xxhash.Sum64(b[:24]) == binary.LittleEndian.Uint64(b[24:])
	switch {
	case h.Version != FormatVersion && sumOK:
		return Header{}, fmt.Errorf("%w: segment format version %d, this kennel reads %d", ErrVersion, h.Version, FormatVersion)
	case !sumOK:
		return Header{}, fmt.Errorf("%w: segment header checksum mismatch", ErrCorrupt)
	}
	return h, nil
}

// Record flags (the byte at offset 3 of a record).
const (
	// FlagFresh says an 8-byte fresh-until time follows the header.
	FlagFresh = 1 << 0

	knownFlags = FlagFresh
)

// freshLen is the size of the optional fresh-until field.
const freshLen = 8

// Record is one decoded log record. Key and Value alias the buffer they were
// decoded from.
type Record struct {
	Kind   Kind
	Codec  Codec
	Seq    uint64 // sequence number: on rebuild the highest wins
	Expiry int64  // unix nanoseconds; 0 means never
	// Fresh is when the value turns stale (unix nanoseconds; 0 means it stays
	// fresh until it expires). GetOrCreate stores it; a stale value is still
	// served while one caller regenerates it. It costs 8 bytes only in the
	// records that carry it.
	Fresh int64
	Key   []byte
	Value []byte // stored bytes (compressed if Codec says so)
}

// Size is the record's encoded length.
func (r *Record) Size() int {
	n := RecordHeaderSize + len(r.Key) + len(r.Value)
	if r.Fresh != 0 {
		n += freshLen
	}
	return n
}

// sealValueLen is the length of a seal's value: the next segment's id.
const sealValueLen = 8

// SealRecordSize is the encoded length of a seal record.
const SealRecordSize = RecordHeaderSize + sealValueLen

// SealRecord returns the record that ends a segment whose log continues in
// segment next.
func SealRecord(seq, next uint64) Record {
	return Record{Kind: KindSeal, Seq: seq, Value: binary.LittleEndian.AppendUint64(nil, next)}
}

// SealNext returns the id of the segment a seal record says the log
// continues in.
func (r *Record) SealNext() uint64 { return binary.LittleEndian.Uint64(r.Value) }

// Record layout (all integers little endian):
//
//	+--------+------+-------+-------+---------+---------+-----+--------+----------+---------+-----+-------+
//	| marker | kind | codec | flags | key len | val len | seq | expiry | checksum | [fresh] | key | value |
//	| 0xB7   | u8   | u8    | u8    | u32     | u32     | u64 | i64    | u64      | i64     |     |       |
//	+--------+------+-------+-------+---------+---------+-----+--------+----------+---------+-----+-------+
//	0        1      2       3       4         8         12    20       28         36
//
// fresh is present only when flags has FlagFresh. checksum is xxhash64 over
// bytes [0, 28) of the header, then everything after the header.
const (
	offKind     = 1
	offCodec    = 2
	offFlags    = 3
	offKeyLen   = 4
	offValLen   = 8
	offSeq      = 12
	offExpiry   = 20
	offChecksum = 28
)

// AppendRecord encodes r after dst and returns the extended slice.
func AppendRecord(dst []byte, r *Record) []byte {
	start := len(dst)
	var flags byte
	if r.Fresh != 0 {
		flags |= FlagFresh
	}
	dst = append(dst, Marker, byte(r.Kind), byte(r.Codec), flags)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Key)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Value)))
	dst = binary.LittleEndian.AppendUint64(dst, r.Seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Expiry))
	dst = append(dst, make([]byte, 8)...) // checksum, filled below
	if r.Fresh != 0 {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Fresh))
	}
	dst = append(dst, r.Key...)
	dst = append(dst, r.Value...)
	rec := dst[start:]
	binary.LittleEndian.PutUint64(rec[offChecksum:], recordChecksum(rec))
	return dst
}

// recordChecksum hashes the header up to the checksum field, then the rest.
func recordChecksum(rec []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	d.Write(rec[:offChecksum])
	d.Write(rec[RecordHeaderSize:])
	return d.Sum64()
}

// recordLen reads the total length a record header announces, bounding every
// length before it is used. It needs RecordHeaderSize bytes.
func recordLen(h []byte) (int, error) {
	if h[0] != Marker {
		if h[0] == 0 {
			return 0, ErrZeroed
		}
		return 0, fmt.Errorf("%w: bad record marker 0x%02x", ErrCorrupt, h[0])
	}
	if k := Kind(h[offKind]); !k.valid() {
		return 0, fmt.Errorf("%w: unknown record kind %d", ErrCorrupt, h[offKind])
	}
	if c := Codec(h[offCodec]); !c.valid() {
		return 0, fmt.Errorf("%w: unknown codec %d", ErrCorrupt, h[offCodec])
	}
	flags := h[offFlags]
	if flags&^knownFlags != 0 {
		return 0, fmt.Errorf("%w: unknown record flags %#02x", ErrCorrupt, flags)
	}
	keyLen := binary.LittleEndian.Uint32(h[offKeyLen:])
	valLen := binary.LittleEndian.Uint32(h[offValLen:])
	if Kind(h[offKind]) == KindSeal {
		if keyLen != 0 || valLen != sealValueLen || flags != 0 || h[offCodec] != 0 {
			return 0, fmt.Errorf("%w: seal record with a key, flags or a value that is not a segment id", ErrCorrupt)
		}
		return RecordHeaderSize + sealValueLen, nil
	}
	if keyLen == 0 || keyLen > MaxKeyLen {
		return 0, fmt.Errorf("%w: key length %d out of range", ErrCorrupt, keyLen)
	}
	if valLen > MaxValueLen {
		return 0, fmt.Errorf("%w: value length %d out of range", ErrCorrupt, valLen)
	}
	n := RecordHeaderSize + int(keyLen) + int(valLen)
	if flags&FlagFresh != 0 {
		n += freshLen
	}
	return n, nil
}

// DecodeRecord decodes the record at the start of b and returns it with its
// encoded length. The returned Key and Value alias b. Errors: ErrTruncated
// when b ends inside the record, ErrZeroed when b starts with a zero byte,
// ErrCorrupt for anything else that is not a valid record.
func DecodeRecord(b []byte) (Record, int, error) {
	if len(b) < RecordHeaderSize {
		if allZero(b) {
			return Record{}, 0, ErrZeroed
		}
		return Record{}, 0, fmt.Errorf("%w: %d bytes left, a record header needs %d", ErrTruncated, len(b), RecordHeaderSize)
	}
	n, err := recordLen(b)
	if err != nil {
		return Record{}, 0, err
	}
	if n > len(b) {
		return Record{}, 0, fmt.Errorf("%w: record of %d bytes, %d left", ErrTruncated, n, len(b))
	}
	rec := b[:n]
	if recordChecksum(rec) != binary.LittleEndian.Uint64(rec[offChecksum:]) {
		return Record{}, 0, fmt.Errorf("%w: record checksum mismatch", ErrCorrupt)
	}
	r := Record{
		Kind:   Kind(rec[offKind]),
		Codec:  Codec(rec[offCodec]),
		Seq:    binary.LittleEndian.Uint64(rec[offSeq:]),
		Expiry: int64(binary.LittleEndian.Uint64(rec[offExpiry:])),
	}
	body := rec[RecordHeaderSize:]
	if rec[offFlags]&FlagFresh != 0 {
		r.Fresh = int64(binary.LittleEndian.Uint64(body))
		body = body[freshLen:]
	}
	keyLen := int(binary.LittleEndian.Uint32(rec[offKeyLen:]))
	r.Key, r.Value = body[:keyLen:keyLen], body[keyLen:]
	return r, n, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
