package inspect

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
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

// fixtureCompacted is a clean cache directory that a writer compacted and
// then wrote on: the compaction wrote segments 4 and 5 (flagged compacted)
// while the log was in segment 3, and the log then rolled from segment 3
// to 6, so that 4 and 5 lie between a sealed segment and the segment its
// seal names, yet they are no orphans. makeCompactedFixture says what each
// segment holds.
const fixtureCompacted = "compacted"

// fixtureSidecars is a clean cache directory whose larger values are in
// sidecar files; makeSidecarsFixture says what it holds.
const fixtureSidecars = "sidecars"

// TestMakeFixtures regenerates the committed fixtures when run with
// -update-fixtures. They are committed, not made at each run, so that they
// stay the bytes a format-4 kennel wrote: whatever the writer becomes, a
// kennel that reads format 4 must read, and verify, these.
//
// Git keeps no empty folder, so the empty sidecar folder of the fixtures
// without sidecar files is removed: the tests run on what a checkout holds.
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

	dir = filepath.Join("testdata", "fixtures", fixtureCompacted)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := makeCompactedFixture(dir); err != nil {
		t.Fatal(err)
	}

	dir = filepath.Join("testdata", "fixtures", fixtureSidecars)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := makeSidecarsFixture(dir); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{fixtureCorrupt, fixtureCompacted} {
		if err := os.Remove(filepath.Join("testdata", "fixtures", name, segment.SidecarDir)); err != nil {
			t.Fatal(err)
		}
	}
}

// Compacted fixture: fixtureCompactedTime is when its compaction ran, and
// when the keys written after it were.
var fixtureCompactedTime = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// makeCompactedFixture writes fixtureCompacted in dir, with 4 KiB segments
// and 144-byte records as fill writes them (27 to a segment and its seal):
//
//   - in 2001: key-0000 to key-0039, the first two with a TTL of an hour;
//     key-0002 to key-0009 again; key-0010 deleted; key-0040 to key-0049.
//     Segment 1 holds key-0000 to key-0026, segment 2 key-0027 to
//     key-0039, the new key-0002 to key-0009, key-0010's tombstone and
//     key-0040 to key-0045, segment 3 (the log's active one) the rest.
//   - in 2030: a compaction. It rewrites the sealed segments, which hold
//     dead records (the old key-0002 to key-0009, key-0010's value and
//     then its tombstone, which shadows nothing any more) and expired ones
//     (key-0000 and key-0001): segment 1's 16 live records into segment 4,
//     segment 2's 27 into segment 5 (a chunk that does not fit starts a new
//     segment); then it deletes segments 1 and 2. Segment 3 is left alone.
//   - key-0050 to key-0089: the log rolls from segment 3 (key-0046 to
//     key-0072, and a seal naming 6) into segment 6.
func makeCompactedFixture(dir string) error {
	now := fillPast
	c, err := engine.Open(dir, engine.Options{
		SegmentSize:      4096,
		Sync:             engine.SyncNever,
		ManualCompaction: true,
		Clock:            func() time.Time { return now }, // called by this goroutine only
	})
	if err != nil {
		return err
	}
	set := func(from, to, version int, ttl time.Duration) error {
		for i := from; i < to; i++ {
			if err := c.SetWithTTL(fillKey(i), fillValue(i+version, 100), ttl); err != nil {
				return err
			}
		}
		return nil
	}
	err = errors.Join(
		set(0, 2, 0, time.Hour),
		set(2, 40, 0, 0),
		set(2, 10, 1000, 0),
		c.Delete(fillKey(10)),
		set(40, 50, 0, 0),
	)
	if err == nil {
		now = fixtureCompactedTime
		err = c.Compact()
	}
	if err == nil {
		err = set(50, 90, 0, 0)
	}
	return errors.Join(err, c.Close())
}

// makeSidecarsFixture writes fixtureSidecars in dir with InlineLimit 64,
// so that values above 64 bytes go to sidecar files: one segment (the log's
// active one, 669 bytes) of 8 records, in this order (a record is 36 bytes
// of header, the 8-byte key and the value inline, or the 33-byte
// descriptor of a put-sidecar record):
//
//   - key-0000 to key-0002: inline values of 40 bytes (fillValue(i, 40));
//   - key-0003 and key-0004: values of 200 bytes, stored by Set in sidecar
//     files with a checksum (hashed);
//   - key-0005: 300 bytes from SetReader, hashed too;
//   - key-0006: a file of 150 bytes moved in by SetFile with Movable: not
//     hashed, checked by size only;
//   - then the path of key-0004's file is handed out (Handle.Path);
//   - key-0004 again: 250 bytes (fillValue(1004, 250)), in a new file.
//
// So sidecars/ holds 5 files: the 4 that live records name (900 bytes),
// and key-0004's first value (200 bytes), which no live record names: its
// path was handed out, so that it stays for the grace period (a century,
// and no compaction ran anyway). The file names are random: tests find
// them through the records. Git keeps no modification times: in a
// checkout, or a copy, every file's says it was handed out then, which
// only matters to the file no live record names.
func makeSidecarsFixture(dir string) error {
	c, err := engine.Open(dir, engine.Options{
		SegmentSize:      4096,
		Sync:             engine.SyncNever,
		ManualCompaction: true,
		InlineLimit:      64,
		SidecarGrace:     100 * 365 * 24 * time.Hour,
		Clock:            func() time.Time { return fillPast },
	})
	if err != nil {
		return err
	}
	set := func(i, version, size int) error { return c.Set(fillKey(i), fillValue(i+version, size)) }
	err = errors.Join(
		set(0, 0, 40),
		set(1, 0, 40),
		set(2, 0, 40),
		set(3, 0, 200),
		set(4, 0, 200),
		c.SetReader(fillKey(5), bytes.NewReader(fillValue(5, 300))),
		setMoved(c, fillKey(6), fillValue(6, 150), filepath.Dir(dir)),
		handOut(c, fillKey(4)),
		set(4, 1000, 250),
	)
	return errors.Join(err, c.Close())
}

// setMoved stores value under key by SetFile with Movable, from a file
// made in tmpDir, which must be on the cache's filesystem for the file to
// be moved rather than copied.
func setMoved(c *engine.Cache, key, value []byte, tmpDir string) error {
	f, err := os.CreateTemp(tmpDir, "moved-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // gone once moved; left if copied
	_, err = f.Write(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return c.SetFile(key, f.Name(), engine.Movable())
}

// handOut hands out the path of key's sidecar file, as a program that passes
// it to another would: the file then stays for Options.SidecarGrace, even
// once its value is gone.
func handOut(c *engine.Cache, key []byte) error {
	h, err := c.Open(key)
	if err != nil {
		return err
	}
	_, err = h.Path()
	return errors.Join(err, h.Close())
}
