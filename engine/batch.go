package engine

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/kennel-cache/kennel/segment"
)

// Batch collects writes for Write to apply together. A batch owns copies of
// the keys and values given to it. It is not safe for concurrent use.
type Batch struct {
	ops  []op
	ttls []batchTTL // per op
}

type batchTTL struct {
	ttl        time.Duration
	useDefault bool // Options.DefaultTTL, resolved by Write
}

// Set adds a put of value under key with Options.DefaultTTL.
func (b *Batch) Set(key, value []byte) {
	b.add(segment.KindPut, key, value, batchTTL{useDefault: true})
}

// SetWithTTL adds a put of value under key that expires ttl after Write.
// A ttl of 0 means it never expires.
func (b *Batch) SetWithTTL(key, value []byte, ttl time.Duration) {
	b.add(segment.KindPut, key, value, batchTTL{ttl: ttl})
}

// Delete adds a delete of key.
func (b *Batch) Delete(key []byte) { b.add(segment.KindDelete, key, nil, batchTTL{}) }

// Len returns the number of writes in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// Reset empties the batch for reuse.
func (b *Batch) Reset() {
	clear(b.ops)
	b.ops, b.ttls = b.ops[:0], b.ttls[:0]
}

func (b *Batch) add(kind segment.Kind, key, value []byte, ttl batchTTL) {
	b.ops = append(b.ops, op{kind: kind, key: bytes.Clone(key), value: bytes.Clone(value)})
	b.ttls = append(b.ttls, ttl)
}

// Write applies every write of the batch, in order, as one group: readers
// see none of them or all of them. Every write is checked first; if one is
// invalid, nothing is written. If the disk fails part-way (a batch larger
// than what is left of a segment is split by a roll), the writes that reached
// the file before the failure are applied and Write returns the error.
// After a crash, a prefix of a batch that had not been synced may survive,
// in order.
func (c *Cache) Write(b *Batch) error {
	if c.opts.ReadOnly {
		return ErrReadOnly
	}
	ops := slices.Clone(b.ops) // compression must not change the batch
	for i := range ops {
		o := &ops[i]
		var err error
		switch t := b.ttls[i]; {
		case o.kind == segment.KindDelete:
			err = c.checkKey(o.key)
		case t.ttl < 0:
			err = fmt.Errorf("%w: %v", ErrInvalidTTL, t.ttl)
		default:
			if t.useDefault {
				t.ttl = c.opts.DefaultTTL
			}
			o.expiry = c.expiry(t.ttl)
			if err = c.checkPut(o.key, o.value); err == nil && len(o.value) <= c.opts.InlineLimit {
				o.value, o.codec = c.compress(o.value)
			}
		}
		if err != nil {
			return fmt.Errorf("kennel: batch write %d: %w", i, err)
		}
	}
	if len(b.ops) == 0 {
		if c.closed.Load() {
			return ErrClosed
		}
		return nil
	}
	c.waitForRoom()
	r := &request{ops: ops}
	files, err := c.prepareBatchSidecars(ops)
	if err == nil && len(files) > 0 {
		err = c.storeSidecars(r, files)
	} else if err == nil {
		err = c.commit(r)
	}
	if err == nil {
		for _, o := range b.ops {
			if o.kind == segment.KindDelete {
				c.deletes.Add(1)
			} else {
				c.sets.Add(1)
			}
		}
	}
	return err
}

// prepareBatchSidecars writes the values of ops too large to be inline
// into sidecar files, and turns their ops into put-sidecar ops.
func (c *Cache) prepareBatchSidecars(ops []op) ([]sidecarFile, error) {
	var files []sidecarFile
	for i := range ops {
		o := &ops[i]
		if o.kind != segment.KindPut || len(o.value) <= c.opts.InlineLimit {
			continue
		}
		f, err := c.prepareSidecar(o.key, fillFrom(o.value))
		if err != nil {
			c.removeSidecarFiles(files)
			return nil, fmt.Errorf("kennel: batch write %d: %w", i, err)
		}
		files = append(files, f)
		*o = sidecarOp(o.key, f.desc, o.expiry, 0)
	}
	return files, nil
}
