package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
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
//	entries, in the segment's record order, varints (encoding/binary):
//	+-----------+---------+-----+------+-----------+----------+-----+
//	| kind|flag | key len | gap | size | seq delta | [expiry] | key |
//	| u8        | uvarint | uv  | uv   | varint    | varint   |     |
//	+-----------+---------+-----+------+-----------+----------+-----+
//
//	trailer:
//	+-------------+----------------------------------------+
//	| entry count | xxhash64 of entries and the count      |
//	| u64         | u64                                    |
//	+-------------+----------------------------------------+
//
// An entry's record starts gap bytes after the end of the one before (after
// the segment header for the first): records are contiguous unless damage
// was skipped, so gap is nearly always 0. seq delta is the record's sequence
// number less the one before (0 before the first); the expiry follows only
// when bit 4 of the kind byte says so. A 16-byte key's entry takes about 22
// bytes where fixed-width fields took 45: a hint of small records is a
// seventh of its segment, not a third, and the directory's budget counts it.
// The header checksum covers bytes [0, 32). All integers are little endian.
const (
	hintHeaderSize  = 40
	hintTrailerSize = 16

	// hintVersion is the hint layout's version (the varint entries are
	// version 2; version 1 had fixed-width ones).
	hintVersion = 2
	// hintHasExpiry marks an entry followed by an expiry.
	hintHasExpiry = 1 << 4
	hintKindMask  = 0x0f
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
	buf     []byte
	count   uint64
	prevEnd uint64 // where the previous entry's record ended
	prevSeq uint64
}

// NewHintBuilder starts a hint file for segment id.
func NewHintBuilder(id uint64) *HintBuilder {
	b := make([]byte, hintHeaderSize, 4096)
	copy(b, hintMagic[:])
	binary.LittleEndian.PutUint32(b[8:], hintVersion)
	binary.LittleEndian.PutUint64(b[16:], id)
	return &HintBuilder{buf: b, prevEnd: HeaderSize}
}

// Add appends one entry. Entries come in record order: each record starts
// at or after the end of the one before.
func (h *HintBuilder) Add(e HintEntry) {
	kind := byte(e.Kind)
	if e.Expiry != 0 {
		kind |= hintHasExpiry
	}
	h.buf = append(h.buf, kind)
	h.buf = binary.AppendUvarint(h.buf, uint64(len(e.Key)))
	h.buf = binary.AppendUvarint(h.buf, uint64(e.Offset)-h.prevEnd)
	h.buf = binary.AppendUvarint(h.buf, uint64(e.Size))
	h.buf = binary.AppendVarint(h.buf, int64(e.Seq-h.prevSeq))
	if e.Expiry != 0 {
		h.buf = binary.AppendVarint(h.buf, e.Expiry)
	}
	h.buf = append(h.buf, e.Key...)
	h.prevEnd, h.prevSeq = uint64(e.Offset)+uint64(e.Size), e.Seq
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
	if v := binary.LittleEndian.Uint32(b[8:]); v != hintVersion {
		return HintHeader{}, fmt.Errorf("%w: hint format version %d, this kennel reads %d", ErrVersion, v, hintVersion)
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
	d := hintDecoder{body: body, prevEnd: HeaderSize}
	for len(d.body) > 0 {
		e, err := d.next(hdr.Length)
		if err != nil {
			return hdr, fmt.Errorf("%w: hint entry %d: %v", ErrCorrupt, count, err)
		}
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

// hintDecoder reads the entries of a hint file's body one by one.
type hintDecoder struct {
	body             []byte
	prevEnd, prevSeq uint64
}

var errHintEntry = errors.New("bad entry")

// uvarint and varint accept only the shortest encoding of a value, as the
// builder writes it, so that every hint decodes to one sequence of entries
// and back to the same bytes.
func (d *hintDecoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.body)
	if n <= 0 || n != uvarintLen(v) {
		return 0, errHintEntry
	}
	d.body = d.body[n:]
	return v, nil
}

func (d *hintDecoder) varint() (int64, error) {
	v, n := binary.Varint(d.body)
	if n <= 0 || n != uvarintLen(uint64(v)<<1^uint64(v>>63)) {
		return 0, errHintEntry
	}
	d.body = d.body[n:]
	return v, nil
}

// uvarintLen is the length of the shortest uvarint encoding of v.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// next decodes one entry, checking it lies within a segment of length
// bytes.
func (d *hintDecoder) next(length int64) (HintEntry, error) {
	kind := d.body[0]
	d.body = d.body[1:]
	e := HintEntry{Kind: Kind(kind & hintKindMask)}
	if !e.Kind.valid() || e.Kind == KindSeal || kind&^(hintKindMask|hintHasExpiry) != 0 {
		return e, fmt.Errorf("kind byte %#x", kind)
	}
	keyLen, err := d.uvarint()
	if err != nil {
		return e, err
	}
	gap, err := d.uvarint()
	if err != nil {
		return e, err
	}
	size, err := d.uvarint()
	if err != nil {
		return e, err
	}
	seqDelta, err := d.varint()
	if err != nil {
		return e, err
	}
	if kind&hintHasExpiry != 0 {
		if e.Expiry, err = d.varint(); err != nil || e.Expiry == 0 {
			return e, errHintEntry // no expiry is written as no field
		}
	}
	off := d.prevEnd + gap
	switch {
	case keyLen == 0 || keyLen > MaxKeyLen || keyLen > uint64(len(d.body)):
		return e, fmt.Errorf("key length %d", keyLen)
	case gap > uint64(length) || size > uint64(length) || off+size > uint64(length) || size < RecordHeaderSize+keyLen:
		return e, fmt.Errorf("kind %v at [%d, +%d) in a segment of %d bytes", e.Kind, off, size, length)
	}
	e.Offset, e.Size = uint32(off), uint32(size)
	e.Seq = d.prevSeq + uint64(seqDelta)
	e.Key = d.body[:keyLen]
	d.body = d.body[keyLen:]
	d.prevEnd, d.prevSeq = off+size, e.Seq
	return e, nil
}
