package sim

import (
	"fmt"

	"github.com/kennel-cache/kennel/compaction"
)

// KennelConfig sets up the segment-granular simulation of kennel's engine
// driving compaction.Policy.
type KennelConfig struct {
	Budget int64 // bytes all segments may occupy, the active ones included

	// SegmentSize is where a segment is sealed and a new one started.
	SegmentSize int64
	// SmallSegmentSize is where a segment of the Small queue is sealed.
	// Zero means the policy's advice, Policy.SegmentSize(Small,
	// SegmentSize); SegmentSize itself if negative.
	SmallSegmentSize int64

	// Policy is passed to compaction.New, its Budget set to Budget.
	Policy compaction.Config
}

// kennel plays the engine: it appends every write to the open segment of
// Small (the write log; a write the ghost set admits goes there too, with
// AppendAdmitted), keeps an index from key to (segment, slot), and when an
// append would take the segments past the budget it reclaims the victims the
// policy names, whole, copying the records the policy keeps into the open
// segment of Main, the only way records reach Main.
type kennel struct {
	pol     *compaction.Policy
	budget  int64
	segSize [2]int64
	total   int64 // bytes of all segments

	open [2]*simSegment
	segs map[*compaction.Segment]*simSegment
	id   uint64
	loc  []*simSegment // key -> segment holding it, nil if not cached
	slot []uint32      // key -> its slot there
	size []int64       // key -> value size

	written, copied int64 // bytes appended by misses, by copy-forward
}

type simSegment struct {
	ps    *compaction.Segment
	keys  []uint32 // by slot
	bytes int64
}

func newKennel(keys int, cfg KennelConfig) (*kennel, error) {
	if cfg.SegmentSize <= 0 {
		return nil, fmt.Errorf("segment size %d is not positive", cfg.SegmentSize)
	}
	pc := cfg.Policy
	pc.Budget = cfg.Budget
	pol, err := compaction.New(pc)
	if err != nil {
		return nil, err
	}
	k := &kennel{
		pol:     pol,
		budget:  cfg.Budget,
		segSize: [2]int64{cfg.SegmentSize, cfg.SegmentSize},
		segs:    make(map[*compaction.Segment]*simSegment),
		loc:     make([]*simSegment, keys),
		slot:    make([]uint32, keys),
		size:    make([]int64, keys),
	}
	switch {
	case cfg.SmallSegmentSize == 0:
		k.segSize[compaction.Small] = pol.SegmentSize(compaction.Small, cfg.SegmentSize)
	case cfg.SmallSegmentSize > 0:
		k.segSize[compaction.Small] = cfg.SmallSegmentSize
	}
	return k, nil
}

func (k *kennel) access(key uint32, size int64) bool {
	if s := k.loc[key]; s != nil {
		s.ps.Touch(k.slot[key])
		return true
	}
	if size > k.segSize[compaction.Small] || size > k.budget {
		return false
	}
	how := fresh
	if k.pol.Admit(keyHash(key)) == compaction.Main {
		how = admitted
	}
	for k.total+size > k.budget {
		v := k.pol.Victim()
		if v == nil {
			break
		}
		k.evict(k.segs[v])
	}
	k.size[key] = size
	k.append(key, how, compaction.Decision{})
	k.written += size
	return false
}

// appendKind says how a record is appended.
type appendKind int

const (
	fresh    appendKind = iota // a write, to Small, with Append
	admitted                   // a write the ghost set admitted, to Small, with AppendAdmitted
	kept                       // a copy made by eviction, to Main, with AppendKept(d)
)

// append writes key into the open segment of the queue how names, rolling
// to a new one when it is full.
func (k *kennel) append(key uint32, how appendKind, d compaction.Decision) {
	q := compaction.Small
	if how == kept {
		q = compaction.Main
	}
	size := k.size[key]
	s := k.open[q]
	if s == nil || s.bytes+size > k.segSize[q] {
		k.id++
		s = &simSegment{ps: k.pol.NewSegment(k.id, q)}
		k.segs[s.ps] = s
		k.open[q] = s
	}
	var slot uint32
	switch how {
	case fresh:
		slot = s.ps.Append(size)
	case admitted:
		slot = s.ps.AppendAdmitted(size)
	case kept:
		slot = s.ps.AppendKept(size, d)
	}
	if int(slot) != len(s.keys) {
		panic("slot out of step with appends")
	}
	s.keys = append(s.keys, key)
	s.bytes += size
	k.total += size
	k.loc[key], k.slot[key] = s, slot
}

func (k *kennel) evict(s *simSegment) {
	q := s.ps.Queue()
	if k.open[q] == s {
		k.open[q] = nil // seal it
	}
	e := k.pol.Evict(s.ps)
	for slot, key := range s.keys {
		if k.loc[key] != s || k.slot[key] != uint32(slot) {
			continue
		}
		k.loc[key] = nil
		d := e.Decide(uint32(slot), keyHash(key), k.size[key])
		if d.Keep {
			k.append(key, kept, d)
			k.copied += k.size[key]
		}
	}
	e.Done()
	delete(k.segs, s.ps)
	k.total -= s.bytes
}
