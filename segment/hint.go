package segment

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// HintSuffix is the file name suffix of hint files.
const HintSuffix = ".hint"

// HintFileName returns the name of the hint file of segment id.
func HintFileName(id uint64) string { return fmt.Sprintf("%016x%s", id, HintSuffix) }

// ParseHintFileName returns the segment id in a hint file name, and whether
// name is one.
func ParseHintFileName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, HintSuffix)
	if !ok {
		return 0, false
	}
	return ParseFileName(base + Suffix)
}

// hintMagic opens every hint file.
var hintMagic = [8]byte{'k', 'e', 'n', 'n', 'e', 'l', 'H', 'T'}

// A hint file lists the records of one sealed segment without their values,
// so that opening a cache reads keys and locations, not data. It also records
// the segment's sealed length: bytes past it (a torn tail sealed in place)
// are not records.
//
//	header:
//	+---------+---------+--------+------------+----------------+----------+
//	| magic   | version | flags  | segment id | segment length | checksum |
//	| 8 bytes | u32     | u32    | u64        | u64            | u64      |
//	+---------+---------+--------+------------+----------------+----------+
//	0         8         12       16           24               32         40
//
//	entries, in the segment's record order:
//	+------+---------+--------+------+-----+--------+-----+
//	| kind | key len | offset | size | seq | expiry | key |
//	| u8   | u32     | u32    | u32  | u64 | i64    |     |
//	+------+---------+--------+------+-----+--------+-----+
//	0      1         5        9      13    21       29
//
//	trailer:
//	+-------------+----------------------------------------+
//	| entry count | xxhash64 of entries and the count      |
//	| u64         | u64                                    |
//	+-------------+----------------------------------------+
//
// The header checksum covers bytes [0, 32). All integers are little endian.
const (
	hintHeaderSize  = 40
	hintEntryFixed  = 29
	hintTrailerSize = 16
)

// HintEntry is one record's metadata in a hint file. Key aliases the decoded
// buffer.
type HintEntry struct {
	Kind   Kind
	Key    []byte
	Offset uint32
	Size   uint32
	Seq    uint64
	Expiry int64
}

// HintHeader describes the segment a hint file belongs to.
type HintHeader struct {
	ID     uint64
	Length int64 // sealed length of the segment
}

// HintBuilder encodes a hint file in memory.
type HintBuilder struct {
	buf   []byte
	count uint64
}

// NewHintBuilder starts a hint file for segment id.
func NewHintBuilder(id uint64) *HintBuilder {
	b := make([]byte, hintHeaderSize, 4096)
	copy(b, hintMagic[:])
	binary.LittleEndian.PutUint32(b[8:], FormatVersion)
	binary.LittleEndian.PutUint64(b[16:], id)
	return &HintBuilder{buf: b}
}

// Add appends one entry.
func (h *HintBuilder) Add(e HintEntry) {
	h.buf = append(h.buf, byte(e.Kind))
	h.buf = binary.LittleEndian.AppendUint32(h.buf, uint32(len(e.Key)))
	h.buf = binary.LittleEndian.AppendUint32(h.buf, e.Offset)
	h.buf = binary.LittleEndian.AppendUint32(h.buf, e.Size)
	h.buf = binary.LittleEndian.AppendUint64(h.buf, e.Seq)
	h.buf = binary.LittleEndian.AppendUint64(h.buf, uint64(e.Expiry))
	h.buf = append(h.buf, e.Key...)
	h.count++
}

// Finish records the segment's sealed length, appends the trailer and
// returns the encoded file.
func (h *HintBuilder) Finish(length int64) []byte {
	binary.LittleEndian.PutUint64(h.buf[24:], uint64(length))
	binary.LittleEndian.PutUint64(h.buf[32:], xxhash.Sum64(h.buf[:32]))
	h.buf = binary.LittleEndian.AppendUint64(h.buf, h.count)
	h.buf = binary.LittleEndian.AppendUint64(h.buf, xxhash.Sum64(h.buf[hintHeaderSize:]))
	return h.buf
}

// BuildHint scans the records of a sealed segment's bytes up to its sealed
// length and encodes its hint file.
func BuildHint(id uint64, data []byte) ([]byte, error) {
	h := NewHintBuilder(id)
	s := NewScanner(data, HeaderSize)
	for s.Next() {
		r := s.Record()
		h.Add(HintEntry{Kind: r.Kind, Key: r.Key, Offset: uint32(s.Offset()), Size: uint32(s.Size()), Seq: r.Seq, Expiry: r.Expiry})
	}
	end, err := s.Stop()
	if err != nil {
		return nil, fmt.Errorf("segment %d offset %d: %w", id, end, err)
	}
	return h.Finish(int64(end)), nil
}

// DecodeHint checks a whole hint file (magic, version, header checksum, then
// the trailer checksum over every entry) before calling fn for each entry in
// order. Every length is bounded by the file's size before it is used. A
// hint whose entries point outside [HeaderSize, Length) is corrupt.
func DecodeHint(b []byte, fn func(HintEntry) error) (HintHeader, error) {
	if len(b) < hintHeaderSize+hintTrailerSize {
		return HintHeader{}, fmt.Errorf("%w: hint file is %d bytes", ErrTruncated, len(b))
	}
	if [8]byte(b[:8]) != hintMagic {
		return HintHeader{}, fmt.Errorf("%w: bad hint magic %q", ErrNotSegment, b[:8])
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != FormatVersion {
		return HintHeader{}, fmt.Errorf("%w: hint format version %d, this kennel reads %d", ErrVersion, v, FormatVersion)
	}
	if xxhash.Sum64(b[:32]) != binary.LittleEndian.Uint64(b[32:]) {
		return HintHeader{}, fmt.Errorf("%w: hint header checksum mismatch", ErrCorrupt)
	}
	hdr := HintHeader{ID: binary.LittleEndian.Uint64(b[16:]), Length: int64(binary.LittleEndian.Uint64(b[24:]))}
	if hdr.Length < HeaderSize || hdr.Length > 4*MaxValueLen {
		return HintHeader{}, fmt.Errorf("%w: hint says segment length %d", ErrCorrupt, hdr.Length)
	}
	body := b[hintHeaderSize : len(b)-hintTrailerSize]
	trailer := b[len(b)-hintTrailerSize:]
	if xxhash.Sum64(b[hintHeaderSize:len(b)-8]) != binary.LittleEndian.Uint64(trailer[8:]) {
		return HintHeader{}, fmt.Errorf("%w: hint checksum mismatch", ErrCorrupt)
	}
	want := binary.LittleEndian.Uint64(trailer)
	var count uint64
	for len(body) > 0 {
		if len(body) < hintEntryFixed {
			return hdr, fmt.Errorf("%w: hint entry %d is short", ErrCorrupt, count)
		}
		e := HintEntry{
			Kind:   Kind(body[0]),
			Offset: binary.LittleEndian.Uint32(body[5:]),
			Size:   binary.LittleEndian.Uint32(body[9:]),
			Seq:    binary.LittleEndian.Uint64(body[13:]),
			Expiry: int64(binary.LittleEndian.Uint64(body[21:])),
		}
		keyLen := binary.LittleEndian.Uint32(body[1:])
		if keyLen == 0 || keyLen > MaxKeyLen || int(keyLen) > len(body)-hintEntryFixed {
			return hdr, fmt.Errorf("%w: hint entry %d: key length %d", ErrCorrupt, count, keyLen)
		}
		if !e.Kind.valid() || e.Kind == KindSeal || e.Offset < HeaderSize || int64(e.Offset)+int64(e.Size) > hdr.Length ||
			e.Size < RecordHeaderSize+keyLen {
			return hdr, fmt.Errorf("%w: hint entry %d: kind %d at [%d, +%d) in a segment of %d bytes",
				ErrCorrupt, count, e.Kind, e.Offset, e.Size, hdr.Length)
		}
		e.Key = body[hintEntryFixed : hintEntryFixed+keyLen]
		body = body[hintEntryFixed+keyLen:]
		if err := fn(e); err != nil {
			return hdr, err
		}
		count++
	}
	if count != want {
		return hdr, fmt.Errorf("%w: hint holds %d entries, trailer says %d", ErrCorrupt, count, want)
	}
	return hdr, nil
}
