package engine_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
)

func ttlOptions(clock *testClock) engine.Options {
	opts := smallOptions()
	opts.Clock = clock.Now
	return opts
}

// scanKeys returns the keys Scan yields for prefix.
func scanKeys(tb testing.TB, c *engine.Cache, prefix string) []string {
	tb.Helper()
	var keys []string
	if err := c.Scan([]byte(prefix), func(k, v []byte) error {
		keys = append(keys, string(k))
		return nil
	}); err != nil {
		tb.Fatalf("Scan(%q): %v", prefix, err)
	}
	return keys
}

func TestTTLExpiry(t *testing.T) {
	clock := newTestClock()
	c := openCache(t, t.TempDir(), ttlOptions(clock))
	if err := c.SetWithTTL([]byte("short"), []byte("s"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWithTTL([]byte("long"), []byte("l"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWithTTL([]byte("never"), []byte("n"), 0); err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "plain", "p")

	clock.Advance(10*time.Second - time.Nanosecond)
	wantValue(t, c, "short", "s") // one nanosecond before its expiry
	if n := c.Len(); n != 4 {
		t.Fatalf("Len = %d before expiry, want 4", n)
	}

	clock.Advance(time.Nanosecond) // exactly at its expiry
	wantMissing(t, c, "short")
	wantValue(t, c, "long", "l")
	if n := c.Len(); n != 3 {
		t.Fatalf("Len = %d after one expiry, want 3", n)
	}
	if got := scanKeys(t, c, ""); fmt.Sprint(got) != "[long never plain]" {
		t.Fatalf("Scan after one expiry = %q", got)
	}

	clock.Advance(100 * 365 * 24 * time.Hour) // a century later
	wantMissing(t, c, "long")
	wantValue(t, c, "never", "n")
	wantValue(t, c, "plain", "p")
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d after a century, want 2", n)
	}

	// An expired key can be set again; its new value has its own TTL.
	if err := c.SetWithTTL([]byte("short"), []byte("s2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	wantValue(t, c, "short", "s2")
	// Overwriting a TTL value with a plain one removes the expiry.
	mustSet(t, c, "short", "s3")
	clock.Advance(time.Hour)
	wantValue(t, c, "short", "s3")
	// And the other way round.
	if err := c.SetWithTTL([]byte("plain"), []byte("p2"), time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	wantMissing(t, c, "plain")
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2 (never, short)", n)
	}
}

func TestDefaultTTL(t *testing.T) {
	clock := newTestClock()
	opts := ttlOptions(clock)
	opts.DefaultTTL = time.Minute
	c := openCache(t, t.TempDir(), opts)
	mustSet(t, c, "default", "d")
	if err := c.SetWithTTL([]byte("zero"), []byte("z"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWithTTL([]byte("explicit"), []byte("e"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute - 1)
	wantValue(t, c, "default", "d")
	clock.Advance(1)
	wantMissing(t, c, "default")
	wantValue(t, c, "zero", "z") // ttl 0 never expires, DefaultTTL or not
	wantValue(t, c, "explicit", "e")
	clock.Advance(time.Hour)
	wantMissing(t, c, "explicit")
	wantValue(t, c, "zero", "z")
	if n := c.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
}

func TestNegativeTTL(t *testing.T) {
	c := openCache(t, t.TempDir(), smallOptions())
	mustSet(t, c, "k", "v")
	for _, ttl := range []time.Duration{-1, -time.Hour, -1 << 63} {
		if err := c.SetWithTTL([]byte("k"), []byte("bad"), ttl); !errors.Is(err, engine.ErrInvalidTTL) {
			t.Fatalf("SetWithTTL(%v): %v, want ErrInvalidTTL", ttl, err)
		}
		if err := c.SetWithTTL([]byte("new"), []byte("bad"), ttl); !errors.Is(err, engine.ErrInvalidTTL) {
			t.Fatalf("SetWithTTL(%v) of a new key: %v, want ErrInvalidTTL", ttl, err)
		}
	}
	checkModel(t, c, map[string]string{"k": "v"})
}

// TestTTLSurvivesReopen: expiries are stored in the records and come back
// through hints and through scans alike.
func TestTTLSurvivesReopen(t *testing.T) {
	for _, hints := range []bool{true, false} {
		t.Run(fmt.Sprintf("hints=%v", hints), func(t *testing.T) {
			clock := newTestClock()
			dir := t.TempDir()
			c := openCache(t, dir, ttlOptions(clock))
			for i := range 120 { // several segments
				k := fmt.Sprintf("k%03d", i)
				var err error
				switch i % 3 {
				case 0:
					err = c.SetWithTTL([]byte(k), []byte(value(k, i, 40)), time.Minute)
				case 1:
					err = c.SetWithTTL([]byte(k), []byte(value(k, i, 40)), time.Hour)
				default:
					err = c.Set([]byte(k), []byte(value(k, i, 40)))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			mustClose(t, c)
			if !hints {
				removeHints(t, dir)
			}
			clock.Advance(time.Minute)
			c = openCache(t, dir, ttlOptions(clock))
			if n := c.Len(); n != 80 {
				t.Fatalf("Len = %d a minute later, want 80", n)
			}
			for i := range 120 {
				k := fmt.Sprintf("k%03d", i)
				if i%3 == 0 {
					wantMissing(t, c, k)
				} else {
					wantValue(t, c, k, value(k, i, 40))
				}
			}
			clock.Advance(time.Hour)
			if n := c.Len(); n != 40 {
				t.Fatalf("Len = %d an hour later, want 40", n)
			}
			if keys := scanKeys(t, c, "k"); len(keys) != 40 {
				t.Fatalf("Scan yields %d keys an hour later, want 40", len(keys))
			}
		})
	}
}

// TestLen counts keys with and without TTLs through overwrites, deletes and
// reopen: the count of keys with a TTL must follow every change of a key.
func TestLen(t *testing.T) {
	clock := newTestClock()
	dir := t.TempDir()
	c := openCache(t, dir, ttlOptions(clock))
	wantLen := func(want int) {
		t.Helper()
		if n := c.Len(); n != want {
			t.Fatalf("Len = %d, want %d", n, want)
		}
	}
	wantLen(0)
	for i := range 10 {
		mustSet(t, c, fmt.Sprintf("plain%d", i), "v")
	}
	wantLen(10)
	for i := range 5 {
		if err := c.SetWithTTL(fmt.Appendf(nil, "ttl%d", i), []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	wantLen(15)
	mustSet(t, c, "ttl0", "now plain")                                               // TTL → none
	mustDelete(t, c, "ttl1")                                                         // a TTL key deleted
	if err := c.SetWithTTL([]byte("plain0"), []byte("v"), time.Minute); err != nil { // none → TTL
		t.Fatal(err)
	}
	mustDelete(t, c, "plain1")
	wantLen(13)
	clock.Advance(time.Minute)
	wantLen(13 - 4) // ttl2, ttl3, ttl4, plain0 expired
	// With every TTL gone from the index, Len is exact again.
	mustSet(t, c, "ttl2", "v")
	mustDelete(t, c, "ttl3")
	mustDelete(t, c, "ttl4")
	mustDelete(t, c, "plain0")
	wantLen(10)
	mustClose(t, c)
	c = openCache(t, dir, ttlOptions(clock))
	wantLen(10)
	if err := c.SetWithTTL([]byte("late"), []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	wantLen(11)
	clock.Advance(time.Second)
	wantLen(10)
}
