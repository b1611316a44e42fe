package inspect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

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
// accounts for every byte: records and bad stretches follow each other from
// the header to the end of the file, damaged or not.
func TestDumpCoversEveryByte(t *testing.T) {
	dir := testDir(t, fillOptions{n: 100, valueSize: 70, expired: 4, overwritten: 9, deleted: 6})
	seg1, seg2 := filepath.Join(dir, segment.FileName(1)), filepath.Join(dir, segment.FileName(2))
	clean := dumpJSON(t, seg1)
	for _, off := range []int64{40, 700, 1500} {
		if err := flipByte(seg1, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := tearTail(seg2, 30); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{seg1, seg2} {
		d := dumpJSON(t, path)
		off, good, bad := segment.HeaderSize, 0, 0
		for _, r := range d.Records {
			if r.Offset != off {
				t.Fatalf("%s: a record at %d, the previous one ended at %d", path, r.Offset, off)
			}
			if r.OK {
				good++
			} else {
				bad++
			}
			off += r.Size
		}
		if off != d.Size || d.End.Good != good || d.End.Bad != bad || !d.Header.OK {
			t.Errorf("%s: records end at %d of %d bytes; end %+v, counted %d good and %d bad", path, off, d.Size, d.End, good, bad)
		}
	}
	d := dumpJSON(t, seg1)
	if d.End.State != "clean" || d.End.Bad != 3 || d.End.Good != len(clean.Records)-3 {
		t.Errorf("three flipped records: end %+v, %d records before", d.End, len(clean.Records))
	}
	if d := dumpJSON(t, seg2); d.End.State != "torn" || d.End.Offset != d.Size-30 {
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
