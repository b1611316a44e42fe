package segment

import "errors"

// Scanner walks the records of a segment's bytes in order. It stops at the
// end of the data, after a seal record (Sealed), or at the first record that
// is short, zeroed or fails its checksum, and says where and why (Stop). Seal
// records are not yielded. Scanning allocates nothing: the
// records it yields alias the scanned bytes.
//
//	s := NewScanner(data, HeaderSize)
//	for s.Next() {
//		rec, off := s.Record(), s.Offset()
//		...
//	}
//	end, err := s.Stop() // err == nil: clean end at end
type Scanner struct {
	data   []byte
	off    int // offset of the current record
	next   int // offset just past it
	rec    Record
	err    error
	sealed bool
	contin uint64 // from the seal: the segment the log continues in
}

// NewScanner returns a scanner over data starting at offset start (usually
// HeaderSize; data is the whole file, so offsets are file offsets).
func NewScanner(data []byte, start int) *Scanner {
	return &Scanner{data: data, next: start}
}

// Next advances to the next record and reports whether there is one.
func (s *Scanner) Next() bool {
	if s.err != nil {
		return false
	}
	s.off = s.next
	if s.sealed || s.off >= len(s.data) {
		return false
	}
	rec, n, err := DecodeRecord(s.data[s.off:])
	if err != nil {
		s.err = err
		return false
	}
	s.rec, s.next = rec, s.off+n
	if rec.Kind == KindSeal {
		s.sealed, s.contin = true, rec.SealNext()
		s.off = s.next
		return false
	}
	return true
}

// Sealed reports whether scanning stopped at a seal record: the segment ends
// there (Stop's offset is just past the seal) and nothing after it was read.
func (s *Scanner) Sealed() bool { return s.sealed }

// ContinuesIn returns, after a seal, the id of the segment the log continues
// in; 0 when scanning did not stop at a seal.
func (s *Scanner) ContinuesIn() uint64 { return s.contin }

// Record returns the current record. Its slices alias the scanned data.
func (s *Scanner) Record() Record { return s.rec }

// Offset returns the file offset of the current record.
func (s *Scanner) Offset() int { return s.off }

// Size returns the encoded length of the current record.
func (s *Scanner) Size() int { return s.next - s.off }

// Stop reports where scanning stopped: the offset just past the last good
// record, and why. err is nil at a clean end of data; otherwise it wraps
// ErrTruncated or ErrZeroed (the data simply ends there: a torn tail) or
// ErrCorrupt (bytes that are not a record).
func (s *Scanner) Stop() (int, error) {
	if s.err != nil {
		return s.off, s.err
	}
	return s.next, nil
}

// Torn reports whether a stop error describes a torn tail rather than damage.
func Torn(err error) bool {
	return errors.Is(err, ErrTruncated) || errors.Is(err, ErrZeroed)
}

// Resync looks for the next valid record after a bad one, the way a reader
// recovers from a damaged stretch inside a sealed segment. It returns the
// offset of that record, or -1 when no valid record follows (everything after
// the damage is lost or the damage is a tail). Scanning then continues there.
func (s *Scanner) Resync() int {
	if s.err == nil {
		return -1
	}
	for off := s.off + 1; off+RecordHeaderSize <= len(s.data); off++ {
		if s.data[off] != Marker {
			continue
		}
		if _, _, err := DecodeRecord(s.data[off:]); err == nil {
			s.err, s.next = nil, off
			return off
		}
	}
	return -1
}
