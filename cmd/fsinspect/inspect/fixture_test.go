package inspect

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/kennel-cache/kennel/segment"
)

var updateFixtures = flag.Bool("update-fixtures", false, "regenerate testdata/fixtures")

// fixtureCorrupt is a tiny cache directory (40 keys in two segments) with a
// flipped byte in the fourth record of its first segment (sealed, with a
// seal naming segment 2, and a hint), and a torn tail at the end of its
// last segment. Records are 144 bytes, 27 to the first segment:
// 32 + 27*144 = 3920, then the 44-byte seal, 3964 bytes. The second holds
// the other 13 keys and the tombstone of the deleted one (44 bytes):
// 32 + 13*144 + 44 = 1948, then the 20 torn bytes.
const fixtureCorrupt = "corrupt"

// TestMakeFixtures regenerates the committed fixtures when run with
// -update-fixtures. They are committed, not made at each run, so that they
// stay the bytes a format-2 kennel wrote: whatever the writer becomes, a
// kennel that reads format 2 must read, and verify, these.
func TestMakeFixtures(t *testing.T) {
	if !*updateFixtures {
		t.Skip("run with -update-fixtures to regenerate testdata/fixtures")
	}
	dir := filepath.Join("testdata", "fixtures", fixtureCorrupt)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := fill(dir, fillOptions{n: 40, segmentSize: 4096, valueSize: 100, expired: 2, future: 2, deleted: 1}); err != nil {
		t.Fatal(err)
	}
	// 500 is inside the value of the fourth record, at 32 + 3*144 = 464.
	if err := flipByte(filepath.Join(dir, segment.FileName(1)), 500); err != nil {
		t.Fatal(err)
	}
	if err := tearTail(filepath.Join(dir, segment.FileName(2)), 20); err != nil {
		t.Fatal(err)
	}
}
