package segment

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// buildSegment returns a segment's bytes (header and records) and the file
// offset of each record.
func buildSegment(tb testing.TB, id uint64, recs []Record) ([]byte, []int) {
	tb.Helper()
	b := AppendHeader(nil, Header{Version: FormatVersion, ID: id})
	offs := make([]int, len(recs))
	for i := range recs {
		offs[i] = len(b)
		b = AppendRecord(b, &recs[i])
	}
	return b, offs
}

// numbered returns n put records with distinct keys and values of varied
// length, and a delete in the middle.
func numbered(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			Kind:   KindPut,
			Seq:    uint64(i + 1),
			Expiry: int64(i) * 1000,
			Key:    fmt.Appendf(nil, "key-%03d", i),
			Value:  bytes.Repeat([]byte{byte('a' + i%26)}, 10+i*7),
		}
	}
	if n > 2 {
		recs[n/2].Kind = KindDelete
		recs[n/2].Value = nil
	}
	return recs
}

type scanned struct {
	off  int
	size int
	rec  Record
}

func scanAll(data []byte) ([]scanned, int, error) {
	var out []scanned
	s := NewScanner(data, HeaderSize)
	for s.Next() {
		out = append(out, scanned{s.Offset(), s.Size(), s.Record()})
	}
	end, err := s.Stop()
	return out, end, err
}

func TestScannerClean(t *testing.T) {
	recs := numbered(10)
	data, offs := buildSegment(t, 3, recs)
	got, end, err := scanAll(data)
	if err != nil || end != len(data) {
		t.Fatalf("Stop() = %d, %v; want %d, nil", end, err, len(data))
	}
	if len(got) != len(recs) {
		t.Fatalf("scanned %d records, want %d", len(got), len(recs))
	}
	for i, g := range got {
		if g.off != offs[i] || g.size != recs[i].Size() {
			t.Fatalf("record %d at %d size %d, want %d size %d", i, g.off, g.size, offs[i], recs[i].Size())
		}
		sameRecord(t, g.rec, recs[i])
	}

	// A segment with no records ends cleanly at its header.
	empty, _ := buildSegment(t, 4, nil)
	got, end, err = scanAll(empty)
	if len(got) != 0 || end != HeaderSize || err != nil {
		t.Fatalf("empty segment: %d records, Stop() = %d, %v", len(got), end, err)
	}
	// Next after the end keeps returning false.
	s := NewScanner(data, HeaderSize)
	for s.Next() {
	}
	for range 2 {
		if s.Next() {
			t.Fatalf("Next after the end returned true")
		}
	}
}

// TestScannerTornTail is the table of partial records a crash can leave at
// the end of the active segment (pogreb recovery_test style). Every record
// before the tear is yielded, the scan stops at the torn record's offset,
// and the error says why, classified as torn or as damage.
func TestScannerTornTail(t *testing.T) {
	recs := numbered(5)
	data, offs := buildSegment(t, 1, recs)
	last := offs[len(offs)-1]
	lastRec := data[last:]
	keyLen := len(recs[len(recs)-1].Key)
	good := data[:last] // the first four records, whole

	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	garbage := make([]byte, 512)
	for i := range garbage {
		garbage[i] = byte(i*131+7) | 1 // never zero; starts 0x07, not a marker
	}
	// A plausible header whose lengths run past the data: indistinguishable
	// from a record cut short.
	markerGarbage := cat([]byte{Marker, byte(KindPut), 0, 0, 0xFF, 0xFF, 0, 0, 0x10, 0, 0, 0}, garbage[:40])

	tests := []struct {
		name    string
		data    []byte
		records int   // records yielded before the stop
		stop    int   // Stop offset
		want    error // nil: clean end
		torn    bool
	}{
		{"whole", data, 5, len(data), nil, false},
		{"cut at record boundary", good, 4, last, nil, false},
		{"one byte of header", cat(good, lastRec[:1]), 4, last, ErrTruncated, true},
		{"half header", cat(good, lastRec[:RecordHeaderSize/2]), 4, last, ErrTruncated, true},
		{"header only", cat(good, lastRec[:RecordHeaderSize]), 4, last, ErrTruncated, true},
		{"half key", cat(good, lastRec[:RecordHeaderSize+keyLen/2]), 4, last, ErrTruncated, true},
		{"key only", cat(good, lastRec[:RecordHeaderSize+keyLen]), 4, last, ErrTruncated, true},
		{"half value", cat(good, lastRec[:RecordHeaderSize+keyLen+(len(lastRec)-RecordHeaderSize-keyLen)/2]), 4, last, ErrTruncated, true},
		{"last byte missing", cat(good, lastRec[:len(lastRec)-1]), 4, last, ErrTruncated, true},
		{"zeroed tail", cat(data, make([]byte, 4096)), 5, len(data), ErrZeroed, true},
		{"short zeroed tail", cat(data, make([]byte, 3)), 5, len(data), ErrZeroed, true},
		{"zeroed record", cat(good, make([]byte, len(lastRec))), 4, last, ErrZeroed, true},
		{"half record then zeros", cat(good, lastRec[:len(lastRec)/2], make([]byte, 4096)), 4, last, ErrCorrupt, false},
		{"garbage tail", cat(data, garbage), 5, len(data), ErrCorrupt, false},
		{"marker then garbage lengths", cat(data, markerGarbage), 5, len(data), ErrTruncated, true},
		{"garbage instead of record", cat(good, garbage[:len(lastRec)]), 4, last, ErrCorrupt, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, end, err := scanAll(tt.data)
			if len(got) != tt.records {
				t.Fatalf("yielded %d records, want %d", len(got), tt.records)
			}
			for i, g := range got {
				if g.off != offs[i] {
					t.Fatalf("record %d at offset %d, want %d", i, g.off, offs[i])
				}
				sameRecord(t, g.rec, recs[i])
			}
			if end != tt.stop {
				t.Fatalf("stopped at %d, want %d", end, tt.stop)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Stop error %v, want a clean end", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Stop error %v, want %v", err, tt.want)
			}
			if Torn(err) != tt.torn {
				t.Fatalf("Torn(%v) = %v, want %v", err, Torn(err), tt.torn)
			}
		})
	}
}

func TestScannerStartOffset(t *testing.T) {
	recs := numbered(4)
	data, offs := buildSegment(t, 1, recs)
	s := NewScanner(data, offs[2])
	var n int
	for s.Next() {
		if s.Offset() != offs[2+n] {
			t.Fatalf("record at %d, want %d", s.Offset(), offs[2+n])
		}
		n++
	}
	if end, err := s.Stop(); n != 2 || end != len(data) || err != nil {
		t.Fatalf("from offset %d: %d records, Stop() = %d, %v", offs[2], n, end, err)
	}
	// Starting at or past the end yields nothing and ends cleanly there.
	s = NewScanner(data, len(data))
	if s.Next() {
		t.Fatalf("Next at the end of data returned true")
	}
	if end, err := s.Stop(); end != len(data) || err != nil {
		t.Fatalf("Stop() = %d, %v", end, err)
	}
}

// TestScannerResync damages one record inside a segment: the scan stops at
// it as corruption, Resync finds the record after it, and the scan goes on
// to the clean end. Damage to the last record leaves nothing to resync to.
func TestScannerResync(t *testing.T) {
	recs := numbered(6)
	data, offs := buildSegment(t, 1, recs)

	damages := []struct {
		name string
		at   func(rec int) int // byte to damage
		set  byte
	}{
		{"value byte", func(r int) int { return offs[r] + recs[r].Size() - 1 }, 0xEE},
		{"key byte", func(r int) int { return offs[r] + RecordHeaderSize }, 'X'},
		{"marker", func(r int) int { return offs[r] }, 0x42},
		{"marker zeroed", func(r int) int { return offs[r] }, 0},
		{"key length huge", func(r int) int { return offs[r] + offKeyLen + 1 }, 0x7F},
		{"value length huge", func(r int) int { return offs[r] + offValLen + 3 }, 0x30},
		{"seq", func(r int) int { return offs[r] + offSeq }, 0x99},
		{"checksum", func(r int) int { return offs[r] + offChecksum + 4 }, 0x99},
	}
	for _, d := range damages {
		for _, victim := range []int{0, 2, len(recs) - 1} {
			t.Run(fmt.Sprintf("%s/record %d", d.name, victim), func(t *testing.T) {
				b := bytes.Clone(data)
				pos := d.at(victim)
				if b[pos] == d.set {
					t.Fatalf("damage leaves byte %d unchanged", pos)
				}
				b[pos] = d.set
				s := NewScanner(b, HeaderSize)
				var got []int
				for s.Next() {
					got = append(got, s.Offset())
				}
				end, err := s.Stop()
				if err == nil || end != offs[victim] || len(got) != victim {
					t.Fatalf("scan stopped at %d after %d records (%v); want a stop at %d after %d", end, len(got), err, offs[victim], victim)
				}
				next := s.Resync()
				if victim == len(recs)-1 {
					if next != -1 {
						t.Fatalf("Resync after the last record = %d, want -1", next)
					}
					if s.Next() {
						t.Fatalf("Next after a failed Resync returned true")
					}
					return
				}
				if next != offs[victim+1] {
					t.Fatalf("Resync = %d, want %d", next, offs[victim+1])
				}
				for s.Next() {
					got = append(got, s.Offset())
				}
				if end, err := s.Stop(); end != len(b) || err != nil {
					t.Fatalf("after Resync: Stop() = %d, %v", end, err)
				}
				if len(got) != len(recs)-1 {
					t.Fatalf("yielded %d records with one damaged, want %d", len(got), len(recs)-1)
				}
				for i, off := range got {
					w := offs[i]
					if i >= victim {
						w = offs[i+1]
					}
					if off != w {
						t.Fatalf("record %d at %d, want %d", i, off, w)
					}
				}
			})
		}
	}

	// Resync without an error is a no-op.
	s := NewScanner(data, HeaderSize)
	s.Next()
	if got := s.Resync(); got != -1 {
		t.Fatalf("Resync with no error = %d, want -1", got)
	}
	if !s.Next() || s.Offset() != offs[1] {
		t.Fatalf("Resync with no error moved the scanner")
	}
}

// FuzzScanner: scanning arbitrary bytes, resynchronising after every stop,
// never panics; offsets strictly increase and every record lies within the
// data and decodes again, identically, where the scanner found it.
func FuzzScanner(f *testing.F) {
	data, offs := buildSegment(f, 1, numbered(6))
	f.Add(data)
	f.Add(data[:len(data)-3])
	damaged := bytes.Clone(data)
	damaged[offs[2]+RecordHeaderSize] ^= 0xFF
	f.Add(damaged)
	f.Add(append(bytes.Clone(data), make([]byte, 100)...))
	f.Add(data[:HeaderSize])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewScanner(data, HeaderSize)
		prevEnd := HeaderSize
		stops := 0
		for {
			for s.Next() {
				off, size := s.Offset(), s.Size()
				if off < prevEnd {
					t.Fatalf("record at %d overlaps the previous one, which ended at %d", off, prevEnd)
				}
				if size < RecordHeaderSize || off+size > len(data) {
					t.Fatalf("record [%d, +%d) outside data of %d bytes", off, size, len(data))
				}
				rec, n, err := DecodeRecord(data[off:])
				if err != nil || n != size {
					t.Fatalf("record at %d does not decode again: %d, %v", off, n, err)
				}
				sameRecord(t, rec, s.Record())
				prevEnd = off + size
			}
			end, err := s.Stop()
			if end < HeaderSize || (end > len(data) && end != HeaderSize) {
				t.Fatalf("Stop offset %d outside data of %d bytes", end, len(data))
			}
			if err == nil {
				if end != max(prevEnd, HeaderSize) {
					t.Fatalf("clean stop at %d, last record ended at %d", end, prevEnd)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) && !Torn(err) {
				t.Fatalf("unclassified stop error %v", err)
			}
			stops++
			next := s.Resync()
			if next == -1 {
				return
			}
			if next <= end || next >= len(data) {
				t.Fatalf("Resync to %d after a stop at %d in %d bytes", next, end, len(data))
			}
			if stops > len(data) {
				t.Fatalf("scanner does not advance")
			}
		}
	})
}
