package index

import (
	"bytes"
	"strings"
	"unsafe"

	"github.com/google/btree"
)

// headLen is how many key bytes an Entry holds inline. Comparisons during a
// lookup read only these bytes unless two keys share all of them, so most
// tree steps cost no pointer chase; keys up to headLen bytes (most cache keys:
// ids, hashes, short paths) need no allocation of their own. 20 rather than
// 24 leaves room for the eviction policy's Slot in the same 56 bytes.
const headLen = 20

// MaxKeyLen is the longest key an Entry can hold.
const MaxKeyLen = 1<<16 - 1

// Entry locates the newest record of one key. It is stored by value in the
// B-tree's nodes, so its size is the index's cost per key: 56 bytes on
// 64-bit platforms, plus an allocation for the bytes of a key longer than
// 20 bytes.
type Entry struct {
	tail   *byte  // the key's bytes after head, if any
	Expiry int64  // unix nanoseconds; 0 means never
	Seg    uint32 // segment id
	Offset uint32 // record offset in the segment
	Size   uint32 // record length, header included
	// Slot is the record's slot in the eviction policy's counters
	// (compaction.Segment.Append).
	Slot   uint32
	head   [headLen]byte // the key's first bytes, zero padded
	keyLen uint16
	Kind   uint8 // record kind (segment.Kind)
	// Older counts the key's older put records still on disk (saturating
	// at 255, which then means "some"): compaction may remove a key's
	// newest record without leaving a tombstone only when it is zero, so
	// that an older value never comes back on the next open.
	Older uint8
}

// MaxOlder is where Entry.Older saturates: from there on the count is
// unknown and never decremented.
const MaxOlder = 255

// NewEntry returns an entry for key that owns a copy of the key's bytes.
func NewEntry(key []byte) Entry {
	var e Entry
	e.keyLen = uint16(len(key))
	n := copy(e.head[:], key)
	if len(key) > n {
		tail := strings.Clone(string(key[n:]))
		e.tail = unsafe.StringData(tail)
	}
	return e
}

// probe makes a search entry for key without copying its tail: the entry
// aliases key for the duration of a lookup and is never stored.
func probe(key []byte) Entry {
	var e Entry
	e.keyLen = uint16(len(key))
	if n := copy(e.head[:], key); len(key) > n {
		e.tail = &key[n]
	}
	return e
}

func (e *Entry) headBytes() []byte { return e.head[:min(int(e.keyLen), headLen)] }

func (e *Entry) tailBytes() []byte {
	if e.tail == nil {
		return nil
	}
	return unsafe.Slice(e.tail, int(e.keyLen)-headLen)
}

// AppendKey appends the entry's key to dst.
func (e *Entry) AppendKey(dst []byte) []byte {
	return append(append(dst, e.headBytes()...), e.tailBytes()...)
}

// Key returns a copy of the entry's key.
func (e *Entry) Key() []byte { return e.AppendKey(make([]byte, 0, e.keyLen)) }

// KeyLen returns the length of the entry's key.
func (e *Entry) KeyLen() int { return int(e.keyLen) }

// hasPrefix reports whether the entry's key starts with p.
func (e *Entry) hasPrefix(p []byte) bool {
	if len(p) > int(e.keyLen) {
		return false
	}
	h := e.headBytes()
	if len(p) <= len(h) {
		return bytes.Equal(h[:len(p)], p)
	}
	return bytes.Equal(h, p[:len(h)]) && bytes.HasPrefix(e.tailBytes(), p[len(h):])
}

// Expired reports whether the entry's value has expired at now (unix nanos).
func (e *Entry) Expired(now int64) bool { return e.Expiry != 0 && now >= e.Expiry }

// compare orders entries by key bytes. Heads that differ decide at once;
// equal heads mean equal lengths up to headLen, so the tails decide.
func compare(a, b *Entry) int {
	if c := bytes.Compare(a.headBytes(), b.headBytes()); c != 0 {
		return c
	}
	return bytes.Compare(a.tailBytes(), b.tailBytes())
}

func less(a, b Entry) bool { return compare(&a, &b) < 0 }

// Compare orders entries by key bytes, as the index does.
func Compare(a, b *Entry) int { return compare(a, b) }

// Degree is the B-tree's degree: nodes hold between Degree-1 and 2*Degree-1
// entries. Measured at 1M keys (index BenchmarkGet and BenchmarkHeapPerKey):
// heap per key 82.3 / 81.7 / 69.3 / 67.8 bytes at degree 16 / 32 / 64 / 128,
// lookups 1.66 / 1.56 / 1.61 / 1.73 µs. 64 is the smallest degree that keeps
// the index under 80 bytes per key, at lookup cost within noise of the best.
const Degree = 64

// Index maps keys to the location of their newest record, in key order.
//
// Read operations (Get, Len, Ascend*) are safe for concurrent use with each
// other; writes are not, and need external locking against everything else.
// Clone is cheap: the clone shares nodes with the original until either side
// writes (copy on write), which is how the engine gives scans a consistent
// view without blocking writers.
type Index struct {
	tree *btree.BTreeG[Entry]
}

// New returns an empty index.
func New() *Index {
	return &Index{tree: btree.NewG(Degree, less)}
}

// Load returns an index holding entries, which must be sorted by key with
// no key twice. Inserting in key order would leave every node half full
// (the tree splits full nodes in the middle and never revisits the left
// half), so Load inserts every other entry first, then the ones between:
// each of the second half lands in a half-full node with room for it, and
// the nodes end nearly full.
func Load(entries []Entry) *Index {
	x := New()
	for pass := range 2 {
		for i := pass; i < len(entries); i += 2 {
			x.tree.ReplaceOrInsert(entries[i])
		}
	}
	return x
}

// Get returns the entry for key.
func (x *Index) Get(key []byte) (Entry, bool) {
	return x.tree.Get(probe(key))
}

// Put inserts or replaces e (made by NewEntry), returning the entry it
// replaced.
func (x *Index) Put(e Entry) (Entry, bool) {
	return x.tree.ReplaceOrInsert(e)
}

// Delete removes key, returning the entry it held.
func (x *Index) Delete(key []byte) (Entry, bool) {
	return x.tree.Delete(probe(key))
}

// Len returns the number of entries.
func (x *Index) Len() int { return x.tree.Len() }

// Clone returns a copy-on-write snapshot of the index.
func (x *Index) Clone() *Index { return &Index{tree: x.tree.Clone()} }

// AscendPrefix calls fn for each entry whose key starts with prefix, in key
// order, until fn returns false.
func (x *Index) AscendPrefix(prefix []byte, fn func(Entry) bool) {
	x.tree.AscendGreaterOrEqual(probe(prefix), func(e Entry) bool {
		return e.hasPrefix(prefix) && fn(e)
	})
}

// Ascend calls fn for every entry in key order until fn returns false.
func (x *Index) Ascend(fn func(Entry) bool) { x.tree.Ascend(fn) }
