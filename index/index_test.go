package index

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/internal/testseed"
)

// entry makes an entry for key in segment seg, with a location derived from
// the key so that a mix-up of entries shows.
func entry(key string, seg uint32) Entry {
	e := NewEntry([]byte(key))
	e.Seg, e.Offset, e.Size, e.Kind = seg, uint32(len(key))*40, 36+uint32(len(key)), 1
	return e
}

// same compares entries field by field, key by its bytes.
func same(a, b Entry) bool {
	return bytes.Equal(a.Key(), b.Key()) && a.KeyLen() == b.KeyLen() && a.Expiry == b.Expiry &&
		a.Seg == b.Seg && a.Offset == b.Offset && a.Size == b.Size && a.Kind == b.Kind && a.Older == b.Older && a.Slot == b.Slot
}

func show(e Entry) string {
	return fmt.Sprintf("{key %q expiry %d seg %d off %d size %d kind %d slot %d older %d}", e.Key(), e.Expiry, e.Seg, e.Offset, e.Size, e.Kind, e.Slot, e.Older)
}

func TestNewEntryKey(t *testing.T) {
	for _, n := range []int{0, 1, 19, 20, 21, 23, 24, 25, 100, MaxKeyLen} {
		key := make([]byte, n)
		for i := range key {
			key[i] = byte(i*7 + 1)
		}
		e := NewEntry(key)
		if e.KeyLen() != n || !bytes.Equal(e.Key(), key) {
			t.Fatalf("%d-byte key: KeyLen %d, Key %x", n, e.KeyLen(), e.Key())
		}
		if got := e.AppendKey([]byte("pre")); !bytes.Equal(got, append([]byte("pre"), key...)) {
			t.Fatalf("%d-byte key: AppendKey = %x", n, got)
		}
		// The entry owns its bytes: changing the caller's slice changes nothing.
		for i := range key {
			key[i] = 0xEE
		}
		if n > 0 && bytes.Equal(e.Key(), key) {
			t.Fatalf("%d-byte key: the entry aliases the caller's slice", n)
		}
		// Key returns a copy: changing it changes nothing either.
		k := e.Key()
		if n > 0 {
			k[n-1] ^= 0xFF
			if bytes.Equal(e.Key(), k) {
				t.Fatalf("%d-byte key: Key() aliases the entry", n)
			}
		}
	}
}

func TestPutGetDelete(t *testing.T) {
	x := New()
	if x.Len() != 0 {
		t.Fatalf("new index has %d entries", x.Len())
	}
	if _, ok := x.Get([]byte("a")); ok {
		t.Fatalf("Get on an empty index found an entry")
	}
	if _, ok := x.Delete([]byte("a")); ok {
		t.Fatalf("Delete on an empty index found an entry")
	}

	a := NewEntry([]byte("a"))
	a.Expiry, a.Seg, a.Offset, a.Size, a.Kind, a.Slot, a.Older = 17, 1, 32, 40, 1, 9, 3
	if old, ok := x.Put(a); ok {
		t.Fatalf("Put of a new key replaced %s", show(old))
	}
	x.Put(entry("b", 1))
	x.Put(entry("ab", 1))
	if x.Len() != 3 {
		t.Fatalf("Len = %d, want 3", x.Len())
	}
	if got, ok := x.Get([]byte("a")); !ok || !same(got, a) {
		t.Fatalf("Get(a) = %s, %v; want %s", show(got), ok, show(a))
	}

	// Replace returns the old entry and keeps the count.
	a2 := NewEntry([]byte("a"))
	a2.Seg, a2.Offset, a2.Size, a2.Kind = 2, 64, 41, 1
	old, ok := x.Put(a2)
	if !ok || !same(old, a) {
		t.Fatalf("Put replaced %s, %v; want %s", show(old), ok, show(a))
	}
	if got, _ := x.Get([]byte("a")); !same(got, a2) || x.Len() != 3 {
		t.Fatalf("after replace: Get = %s, Len = %d", show(got), x.Len())
	}

	// Delete returns the entry it removed.
	old, ok = x.Delete([]byte("a"))
	if !ok || !same(old, a2) {
		t.Fatalf("Delete = %s, %v; want %s", show(old), ok, show(a2))
	}
	if _, ok := x.Get([]byte("a")); ok || x.Len() != 2 {
		t.Fatalf("after Delete: found %v, Len = %d", ok, x.Len())
	}
	if _, ok := x.Delete([]byte("a")); ok {
		t.Fatalf("second Delete found an entry")
	}
	// Neighbours are untouched.
	for _, k := range []string{"ab", "b"} {
		if got, ok := x.Get([]byte(k)); !ok || !same(got, entry(k, 1)) {
			t.Fatalf("Get(%q) = %s, %v", k, show(got), ok)
		}
	}
}

// TestKeysDoNotAliasCallers: lookups alias the caller's slice only for the
// call; the stored key is the index's own string.
func TestKeysDoNotAliasCallers(t *testing.T) {
	x := New()
	long := "key-1 with a tail past the inline head"
	buf := []byte(long)
	x.Put(NewEntry(buf))
	if _, ok := x.Get(buf); !ok {
		t.Fatalf("Get with a byte slice missed")
	}
	copy(buf, "XXXXX")
	copy(buf[30:], "YYYY")
	if _, ok := x.Get([]byte(long)); !ok {
		t.Fatalf("changing the caller's slice changed the stored key")
	}
	if _, ok := x.Get(buf); ok {
		t.Fatalf("Get found a key that was never stored")
	}
	if _, ok := x.Delete(buf); ok || x.Len() != 1 {
		t.Fatalf("Delete of an absent key removed something")
	}
}

func TestExpired(t *testing.T) {
	e := Entry{Expiry: 100}
	for now, want := range map[int64]bool{0: false, 99: false, 100: true, 101: true} {
		if e.Expired(now) != want {
			t.Errorf("Expired(%d) with expiry 100 = %v", now, !want)
		}
	}
	never := Entry{}
	if never.Expired(1<<62) || never.Expired(-1) {
		t.Errorf("an entry with expiry 0 expired")
	}
}

func collect(x *Index, prefix []byte) []string {
	var keys []string
	x.AscendPrefix(prefix, func(e Entry) bool {
		keys = append(keys, string(e.Key()))
		return true
	})
	return keys
}

func TestAscendPrefix(t *testing.T) {
	keys := []string{
		"", // never stored by the engine, but the index must not trip on it
		"a", "a\x00", "a\xff", "ab", "abc", "abd", "ac", "b",
		"user:1", "user:10", "user:2", "user;", "users",
		"\xff", "\xff\xff", "\xff\xff\xff", "\xff\xff\x00", "\xff\xfe",
	}
	x := New()
	for _, k := range keys {
		x.Put(entry(k, 1))
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", sorted},
		{"a", []string{"a", "a\x00", "ab", "abc", "abd", "ac", "a\xff"}},
		{"ab", []string{"ab", "abc", "abd"}},
		{"abc", []string{"abc"}},
		{"abcd", nil},
		{"user:", []string{"user:1", "user:10", "user:2"}},
		{"user:1", []string{"user:1", "user:10"}},
		{"user", []string{"user:1", "user:10", "user:2", "user;", "users"}},
		{"a\xff", []string{"a\xff"}},
		// Keys starting with 0xff: everything at the end of the keyspace.
		{"\xff", []string{"\xff", "\xff\xfe", "\xff\xff", "\xff\xff\x00", "\xff\xff\xff"}},
		{"\xff\xff", []string{"\xff\xff", "\xff\xff\x00", "\xff\xff\xff"}},
		{"\xff\xff\xff", []string{"\xff\xff\xff"}},
		{"\xff\xff\xff\xff", nil},
		{"0", nil},
		{"c", nil},
		{"\x00", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
			got := collect(x, []byte(tt.prefix))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("AscendPrefix(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}

	// fn returning false stops the walk at once.
	var n int
	x.AscendPrefix([]byte("a"), func(Entry) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("walk went on for %d calls after fn returned false at 3", n)
	}
	// Ascend visits everything in order and stops likewise.
	var all []string
	x.Ascend(func(e Entry) bool { all = append(all, string(e.Key())); return true })
	if !slices.Equal(all, sorted) {
		t.Fatalf("Ascend = %q, want %q", all, sorted)
	}
	n = 0
	x.Ascend(func(Entry) bool { n++; return false })
	if n != 1 {
		t.Fatalf("Ascend went on after fn returned false")
	}
}

// TestAscendPrefixRandom compares Get, Delete and AscendPrefix with a sorted
// slice, over random binary keys rich in 0x00 and 0xff whose lengths
// straddle the entry's inline head, many sharing all of it, and random
// prefixes as long.
func TestAscendPrefixRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 1))
	alphabet := []byte{0x00, 0x01, 'a', 0x7f, 0x80, 0xff}
	bases := make([][]byte, 3)
	for i := range bases {
		bases[i] = make([]byte, 30)
		for j := range bases[i] {
			bases[i][j] = alphabet[rng.IntN(len(alphabet))]
		}
	}
	randKey := func() []byte {
		base := bases[rng.IntN(len(bases))]
		k := slices.Clone(base[:rng.IntN(len(base)+1)])
		for range rng.IntN(4) {
			k = append(k, alphabet[rng.IntN(len(alphabet))])
		}
		return k
	}
	x := New()
	set := map[string]bool{}
	for range 4000 {
		k := randKey()
		if len(k) == 0 {
			continue
		}
		x.Put(entry(string(k), 1))
		set[string(k)] = true
		if rng.IntN(4) == 0 {
			d := randKey()
			_, found := x.Delete(d)
			if found != set[string(d)] {
				t.Fatalf("Delete(%x) found %v, want %v", d, found, set[string(d)])
			}
			delete(set, string(d))
		}
	}
	all := make([]string, 0, len(set))
	for k := range set {
		all = append(all, k)
	}
	slices.Sort(all)
	if x.Len() != len(all) {
		t.Fatalf("Len = %d, want %d", x.Len(), len(all))
	}
	var walked []string
	x.Ascend(func(e Entry) bool { walked = append(walked, string(e.Key())); return true })
	if !slices.Equal(walked, all) {
		t.Fatalf("Ascend order differs from sorted keys")
	}
	for _, k := range all {
		if e, ok := x.Get([]byte(k)); !ok || string(e.Key()) != k {
			t.Fatalf("Get(%x) = %x, %v", k, e.Key(), ok)
		}
	}
	for range 1000 {
		p := randKey()
		var want []string
		for _, k := range all {
			if strings.HasPrefix(k, string(p)) {
				want = append(want, k)
			}
		}
		if got := collect(x, p); !slices.Equal(got, want) {
			t.Fatalf("AscendPrefix(%x): %d keys, want %d", p, len(got), len(want))
		}
		if _, ok := x.Get(p); ok != set[string(p)] {
			t.Fatalf("Get(%x) found %v, want %v", p, ok, set[string(p)])
		}
	}
}

// TestClone: a clone and its original are independent from the moment of
// cloning, both ways, through puts, replaces and deletes.
func TestClone(t *testing.T) {
	x := New()
	for i := range 1000 {
		x.Put(entry(fmt.Sprintf("k%04d", i), 1))
	}
	c := x.Clone()

	// Writes to the original do not show in the clone.
	x.Put(entry("k0001", 2))      // replace
	x.Delete([]byte("k0002"))     // delete
	x.Put(entry("k0002x", 2))     // insert
	for i := 500; i < 1000; i++ { // many deletes: node merges
		x.Delete(fmt.Appendf(nil, "k%04d", i))
	}
	// Writes to the clone do not show in the original.
	c.Put(entry("k0003", 3))
	c.Delete([]byte("k0004"))
	c.Put(entry("c-only", 3))
	for i := range 300 { // many inserts: node splits
		c.Put(entry(fmt.Sprintf("z%04d", i), 3))
	}

	check := func(name string, idx *Index, key string, wantSeg uint32) {
		t.Helper()
		e, ok := idx.Get([]byte(key))
		if wantSeg == 0 {
			if ok {
				t.Fatalf("%s: %q present (segment %d), want absent", name, key, e.Seg)
			}
			return
		}
		if !ok || e.Seg != wantSeg {
			t.Fatalf("%s: %q = segment %d (present %v), want segment %d", name, key, e.Seg, ok, wantSeg)
		}
	}
	check("original", x, "k0001", 2)
	check("original", x, "k0002", 0)
	check("original", x, "k0002x", 2)
	check("original", x, "k0003", 1)
	check("original", x, "k0004", 1)
	check("original", x, "c-only", 0)
	check("original", x, "z0000", 0)
	check("original", x, "k0700", 0)
	check("clone", c, "k0001", 1)
	check("clone", c, "k0002", 1)
	check("clone", c, "k0002x", 0)
	check("clone", c, "k0003", 3)
	check("clone", c, "k0004", 0)
	check("clone", c, "c-only", 3)
	check("clone", c, "k0700", 1)
	if x.Len() != 500 {
		t.Fatalf("original Len = %d, want 500", x.Len())
	}
	if c.Len() != 1000-1+1+300 {
		t.Fatalf("clone Len = %d, want %d", c.Len(), 1300)
	}
	if got := collect(c, []byte("k000")); !slices.Equal(got, []string{"k0000", "k0001", "k0002", "k0003", "k0005", "k0006", "k0007", "k0008", "k0009"}) {
		t.Fatalf("clone AscendPrefix(k000) = %q", got)
	}
}

// TestCloneConcurrent: a clone can be read while the original is written
// (the way the engine's Scan works), and sees only the snapshot. Run with
// -race.
func TestCloneConcurrent(t *testing.T) {
	x := New()
	for i := range 2000 {
		x.Put(entry(fmt.Sprintf("k%05d", i), 1))
	}
	snap := x.Clone()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			x.Put(entry(fmt.Sprintf("k%05d", i), 2))
			x.Put(entry(fmt.Sprintf("k%05dnew", i), 2))
			if i%3 == 0 {
				x.Delete(fmt.Appendf(nil, "k%05d", i))
			}
		}
	}()
	for range 5 {
		n := 0
		snap.Ascend(func(e Entry) bool {
			if e.Seg != 1 || string(e.Key()) != fmt.Sprintf("k%05d", n) {
				t.Errorf("snapshot entry %d = %q segment %d", n, e.Key(), e.Seg)
				return false
			}
			n++
			return true
		})
		if n != 2000 {
			t.Fatalf("snapshot holds %d entries, want 2000", n)
		}
	}
	<-done
}

// heapPerKey fills an index with n 16-byte keys, in scattered order, and
// returns the heap bytes it holds per key (entries, nodes and any key bytes).
func heapPerKey(tb testing.TB, n int) float64 {
	tb.Helper()
	keys := make([]string, n)
	var kb [16]byte
	for i := range keys {
		binary.BigEndian.PutUint64(kb[:8], uint64(i)*0x9E3779B97F4A7C15) // scattered order
		binary.BigEndian.PutUint64(kb[8:], uint64(i))
		keys[i] = string(kb[:])
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := New()
	for i, k := range keys {
		e := NewEntry([]byte(k))
		e.Seg, e.Offset, e.Size = 1, uint32(i), 100
		x.Put(e)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if x.Len() != n {
		tb.Fatalf("Len = %d, want %d", x.Len(), n)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	runtime.KeepAlive(x)
	runtime.KeepAlive(keys)
	return per
}

// TestHeapPerKey bounds the index's memory: an entry and the nodes' slack
// must stay under 100 bytes per 16-byte key.
func TestHeapPerKey(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	per := heapPerKey(t, n)
	t.Logf("%d keys of 16 bytes: %.1f heap bytes per key", n, per)
	if per > 100 {
		t.Fatalf("%.1f heap bytes per key, want at most 100", per)
	}
}

// BenchmarkHeapPerKey reports the index's heap bytes per key at 1M keys of
// 16 bytes (metric heapB/key).
func BenchmarkHeapPerKey(b *testing.B) {
	for _, n := range []int{1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			var per float64
			for b.Loop() {
				per = heapPerKey(b, n)
			}
			b.ReportMetric(per, "heapB/key")
		})
	}
}

func BenchmarkGet(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			x := New()
			keys := make([][]byte, n)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "key-%012d", i)
				x.Put(NewEntry(keys[i]))
			}
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, ok := x.Get(keys[rng.IntN(n)]); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}

// TestLoad: a bulk-loaded index holds exactly the entries given, in order,
// and stays an ordinary index afterwards.
func TestLoad(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 127, 128, 1000, 20_000} {
		entries := make([]Entry, n)
		for i := range entries {
			entries[i] = NewEntry(fmt.Appendf(nil, "key-%08d-with-a-long-tail", i))
			entries[i].Offset = uint32(i)
		}
		x := Load(entries)
		if x.Len() != n {
			t.Fatalf("n=%d: Len = %d", n, x.Len())
		}
		i := 0
		x.Ascend(func(e Entry) bool {
			if e.Offset != uint32(i) {
				t.Fatalf("n=%d: entry %d has offset %d", n, i, e.Offset)
			}
			i++
			return true
		})
		for i := range entries {
			if e, ok := x.Get(entries[i].Key()); !ok || e.Offset != uint32(i) {
				t.Fatalf("n=%d: Get(%q) = %v, %v", n, entries[i].Key(), e.Offset, ok)
			}
		}
		x.Put(NewEntry([]byte("zzz")))
		if _, ok := x.Delete([]byte("zzz")); !ok || x.Len() != n {
			t.Fatalf("n=%d: Put/Delete after Load broke the index", n)
		}
	}
}
