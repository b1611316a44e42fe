package inspect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/segment"
)

// TestDump runs testdata/script/dump.txtar.
func TestDump(t *testing.T) { runScript(t, "dump") }

type dumpDoc struct {
	Size    int          `json:"size"`
	Header  dumpHeader   `json:"header"`
	Records []dumpRecord `json:"records"`
	End     dumpEnd      `json:"end"`
}

// TestDumpCoversEveryByte checks, segment by segment, that dump --json
// accounts for every byte: records, seals, bad stretches and the bytes after
// a seal follow each other from the header to the end of the file, damaged
// or not.
func TestDumpCoversEveryByte(t *testing.T) {
	dir := testDir(t, fillOptions{n: 100, valueSize: 70, expired: 4, overwritten: 9, deleted: 6})
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(segs) < 3 {
		t.Fatalf("segments %v, %v; the test wants three or more", segs, err)
	}
	seg1, seg2, last := segs[0], segs[1], segs[len(segs)-1]
	clean := dumpJSON(t, seg1)
	if n := len(clean.Records); n < 2 || clean.End.State != "sealed" || clean.Records[n-1].Kind != "seal" || clean.End.Offset != clean.Size {
		t.Fatalf("a segment rolled by a writer: end %+v, %d records", clean.End, n)
	} else if seal := clean.Records[n-1]; seal.Size != segment.SealRecordSize || seal.ContinuesIn == nil || *seal.ContinuesIn != 2 {
		t.Fatalf("the seal of segment 1: %+v; want %d bytes, continuing in segment 2", seal, segment.SealRecordSize)
	}
	if d := dumpJSON(t, last); d.End.State != "clean" || d.End.Offset != d.Size {
		t.Fatalf("the active segment: end %+v", d.End)
	}
	for _, off := range []int64{40, 700, 1500} {
		if err := flipByte(seg1, off); err != nil {
			t.Fatal(err)
		}
	}
	// Bytes after the seal, as a writer that died mid-append leaves them,
	// and a torn tail at the end of the active segment.
	if err := tearTail(seg2, 30); err != nil {
		t.Fatal(err)
	}
	if err := tearTail(last, 30); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{seg1, seg2, last} {
		d := dumpJSON(t, path)
		off, good, bad, past := segment.HeaderSize, 0, 0, 0
		for _, r := range d.Records {
			if r.Offset != off {
				t.Fatalf("%s: a record at %d, the previous one ended at %d", path, r.Offset, off)
			}
			switch {
			case r.PastSeal:
				past += r.Size
			case r.OK:
				good++
			default:
				bad++
			}
			off += r.Size
		}
		if off != d.Size || d.End.Good != good || d.End.Bad != bad || d.End.PastSeal != past || !d.Header.OK {
			t.Errorf("%s: records end at %d of %d bytes; end %+v, counted %d good, %d bad, %d past the seal", path, off, d.Size, d.End, good, bad, past)
		}
	}
	d := dumpJSON(t, seg1)
	if d.End.State != "sealed" || d.End.Bad != 3 || d.End.Good != len(clean.Records)-3 {
		t.Errorf("three flipped records: end %+v, %d records before", d.End, len(clean.Records))
	}
	d = dumpJSON(t, seg2)
	if n := len(d.Records); d.End.State != "sealed" || d.End.Offset != d.Size-30 || d.End.PastSeal != 30 || d.End.Bad != 0 ||
		d.Records[n-2].Kind != "seal" || !d.Records[n-1].PastSeal || d.Records[n-1].OK {
		t.Errorf("bytes after the seal: end %+v of %d bytes, last records %+v", d.End, d.Size, d.Records[n-2:])
	}
	if d := dumpJSON(t, last); d.End.State != "torn" || d.End.Offset != d.Size-30 || d.End.Bad != 1 {
		t.Errorf("torn tail: end %+v of %d bytes", d.End, d.Size)
	}

	// Any file name, and the hint's JSON too, make valid JSON.
	odd := filepath.Join(t.TempDir(), "odd\x01\t\"é")
	copyFile(t, filepath.Join(dir, segment.HintFileName(1)), odd)
	var h struct {
		File    string `json:"file"`
		Entries []any  `json:"entries"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "dump", "--json", odd).stdout), &h); err != nil || h.File != odd || len(h.Entries) == 0 {
		t.Errorf("dump --json of a hint named %q: file %q, %d entries, %v", odd, h.File, len(h.Entries), err)
	}
}

// TestDumpFresh checks that dump shows the fresh-until time of the records
// that have one (GetOrCreate stores it), in a FRESH column that only appears
// when a record has one, and in JSON.
func TestDumpFresh(t *testing.T) {
	past := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	future := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	b := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, ID: 5})
	for _, r := range []segment.Record{
		{Kind: segment.KindPut, Seq: 1, Key: []byte("plain"), Value: []byte("v")},
		{Kind: segment.KindPut, Seq: 2, Key: []byte("stale"), Value: []byte("v"), Fresh: past.UnixNano(), Expiry: future.UnixNano()},
		{Kind: segment.KindPut, Seq: 3, Key: []byte("fresh"), Value: []byte("v"), Fresh: future.UnixNano()},
	} {
		b = segment.AppendRecord(b, &r)
	}
	seal := segment.SealRecord(4, 6)
	b = segment.AppendRecord(b, &seal)
	path := filepath.Join(t.TempDir(), segment.FileName(5))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	out := mustRun(t, exitOK, "dump", path).stdout
	for _, want := range []string{
		"OFFSET  SIZE  CHECK  KIND  CODEC  SEQ  EXPIRY                FRESH                         VALLEN  KEY\n",
		"32      42    ok     put   none   1    never                 -                             1       \"plain\"\n",
		"74      50    ok     put   none   2    2099-01-01T00:00:00Z  2001-02-03T04:05:06Z (stale)  1       \"stale\"\n",
		"124     50    ok     put   none   3    never                 2099-01-01T00:00:00Z          1       \"fresh\"\n",
		"174     44    ok     seal  -      4    -                     -                             -       → segment 6\n",
		"end     offset 218: sealed; 4 good records, 0 bad stretches\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
	d := dumpJSON(t, path)
	if len(d.Records) != 4 || d.Records[0].Fresh != "" || d.Records[1].Fresh != "2001-02-03T04:05:06Z" ||
		d.Records[2].Fresh != "2099-01-01T00:00:00Z" || d.Records[3].Kind != "seal" || d.Records[3].Seq != 4 ||
		d.Records[3].Size != segment.SealRecordSize || d.Records[3].ContinuesIn == nil || *d.Records[3].ContinuesIn != 6 || d.Records[3].ValueLen != nil {
		t.Errorf("dump --json: %+v", d.Records)
	}

	// Without a record that has one, no FRESH column.
	plain := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, ID: 6})
	plain = segment.AppendRecord(plain, &segment.Record{Kind: segment.KindPut, Seq: 1, Key: []byte("plain"), Value: []byte("v")})
	path = filepath.Join(t.TempDir(), segment.FileName(6))
	if err := os.WriteFile(path, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, exitOK, "dump", path).stdout; strings.Contains(out, "FRESH") || !strings.Contains(out, "EXPIRY  VALLEN  KEY\n") {
		t.Errorf("dump of records without fresh times:\n%s", out)
	}
}

func dumpJSON(t *testing.T, path string) dumpDoc {
	t.Helper()
	var d dumpDoc
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "dump", "--json", path).stdout), &d); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(d.Size) != fi.Size() {
		t.Fatalf("%s: dump says %d bytes, the file has %d", path, d.Size, fi.Size())
	}
	return d
}

// TestDumpSidecarDescriptor checks that dump decodes the descriptor a
// put-sidecar record holds, and shows why one does not decode.
func TestDumpSidecarDescriptor(t *testing.T) {
	good := segment.Sidecar{Name: segment.NewSidecarName(), Size: 12345, Sum: 0xfeedface, Hashed: true}
	bad := segment.AppendSidecar(nil, segment.Sidecar{Name: good.Name, Size: 7})
	bad[0] = 0x82
	b := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, ID: 1})
	for _, r := range []segment.Record{
		{Kind: segment.KindPutSidecar, Seq: 1, Key: []byte("good"), Value: segment.AppendSidecar(nil, good)},
		{Kind: segment.KindPutSidecar, Seq: 2, Key: []byte("bad"), Value: bad},
		{Kind: segment.KindPutSidecar, Seq: 3, Key: []byte("short"), Value: []byte("x")},
	} {
		b = segment.AppendRecord(b, &r)
	}
	path := filepath.Join(t.TempDir(), segment.FileName(1))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	out := mustRun(t, exitOK, "dump", path).stdout
	for _, want := range []string{
		`  "good" → sidecars/` + good.Name.String() + ", 12345 bytes, xxhash64 00000000feedface\n",
		`  "bad" → bad sidecar descriptor: kennel: corrupt data: sidecar descriptor flags 0x82` + "\n",
		`  "short" → bad sidecar descriptor: kennel: corrupt data: sidecar descriptor of 1 bytes, want 33` + "\n",
		"end     offset 219: clean end; 3 good records, 0 bad stretches\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
	d := dumpJSON(t, path)
	if len(d.Records) != 3 {
		t.Fatalf("dump --json: %+v", d.Records)
	}
	want := sidecarJSON{Name: good.Name.String(), File: "sidecars/" + good.Name.String(), Size: 12345, Hashed: true, Sum: "00000000feedface"}
	if s := d.Records[0].Sidecar; s == nil || *s != want || d.Records[0].SidecarError != "" {
		t.Errorf("dump --json of a descriptor: %+v", s)
	}
	if r := d.Records[1]; r.Sidecar != nil || r.SidecarError != "kennel: corrupt data: sidecar descriptor flags 0x82" || !r.OK {
		t.Errorf("dump --json of a bad descriptor: %+v", r)
	}
}
