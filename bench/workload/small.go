package workload

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/kennel-cache/kennel/bench/store"
)

// LoadConfig loads N records with keys Key(0..N-1) and ValueSize-byte
// values, one Set each, from one goroutine, in index order (which is random
// key order).
type LoadConfig struct {
	N         int
	ValueSize int
}

// Run loads the records into s.
func (c LoadConfig) Run(s store.Store) Result {
	r := newResult("load")
	d, lat, err := runOps(1, c.N, func(int) opFunc {
		key := make([]byte, KeySize)
		var val []byte
		return func(j int) error {
			i := uint64(j)
			val = Value(val, i, 0, c.ValueSize)
			if err := s.Set(Key(key, i), val); err != nil {
				return fmt.Errorf("set record %d: %w", i, err)
			}
			return nil
		}
	})
	if err != nil {
		return r.fail(err)
	}
	rate(&r, c.N, d)
	lat.fill(&r)
	r.Metrics[WriteMBps] = float64(c.N*(KeySize+c.ValueSize)) / d.Seconds() / 1e6
	return r
}

// GetConfig reads Ops uniformly random records of the N loaded ones from
// Goroutines goroutines and checks every value.
type GetConfig struct {
	N          int
	Ops        int
	Goroutines int
	ValueSize  int
	Seed       uint64
}

// Name is "get-1g", "get-2g", ….
func (c GetConfig) Name() string { return fmt.Sprintf("get-%dg", max(c.Goroutines, 1)) }

// Run performs the reads.
func (c GetConfig) Run(s store.Store) Result {
	r := newResult(c.Name())
	d, lat, err := runOps(c.Goroutines, c.Ops, func(g int) opFunc {
		rnd := newRand(c.Seed, g)
		key := make([]byte, KeySize)
		return func(int) error {
			i := rnd.Uint64N(uint64(c.N))
			v, err := s.Get(Key(key, i))
			if err != nil {
				return fmt.Errorf("get record %d: %w", i, err)
			}
			return checkValue(v, i, c.ValueSize)
		}
	})
	if err != nil {
		return r.fail(err)
	}
	rate(&r, c.Ops, d)
	lat.fill(&r)
	return r
}

// AbsentConfig looks up Ops keys that were never written, from one
// goroutine; every one must miss.
type AbsentConfig struct {
	N    int
	Ops  int
	Seed uint64
}

// Run performs the lookups.
func (c AbsentConfig) Run(s store.Store) Result {
	r := newResult("absent")
	d, lat, err := runOps(1, c.Ops, func(g int) opFunc {
		rnd := newRand(c.Seed, g)
		key := make([]byte, KeySize)
		return func(int) error {
			i := uint64(c.N) + rnd.Uint64N(uint64(c.N))
			_, err := s.Get(Key(key, i))
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err == nil {
				return fmt.Errorf("absent record %d was found", i)
			}
			return fmt.Errorf("get absent record %d: %w", i, err)
		}
	})
	if err != nil {
		return r.fail(err)
	}
	rate(&r, c.Ops, d)
	lat.fill(&r)
	return r
}

// MixedConfig runs Ops operations over Goroutines goroutines, ReadPercent of
// them Gets and the rest Sets of a new version, on records chosen with Zipf
// popularity (exponent ZipfS) over the N loaded ones.
type MixedConfig struct {
	N           int
	Ops         int
	Goroutines  int
	ReadPercent int
	ZipfS       float64
	ValueSize   int
	Seed        uint64
}

// Run performs the operations.
func (c MixedConfig) Run(s store.Store) Result {
	r := newResult("mixed")
	d, lat, err := runOps(c.Goroutines, c.Ops, func(g int) opFunc {
		return mixedOp(s, c.N, c.ReadPercent, c.ZipfS, c.ValueSize, newRand(c.Seed, g))
	})
	if err != nil {
		return r.fail(err)
	}
	rate(&r, c.Ops, d)
	lat.fill(&r)
	return r
}

// mixedVersion is the version the mixed workloads write, so that their
// values differ from the loaded ones.
const mixedVersion = 100

// mixedOp returns one goroutine's operation for the mixed workloads.
func mixedOp(s store.Store, n, readPct int, zipfS float64, valueSize int, rnd *rand.Rand) opFunc {
	keys := newZipfKeys(rnd, zipfS, n)
	key := make([]byte, KeySize)
	var val []byte
	return func(int) error {
		i := keys.next()
		if rnd.IntN(100) < readPct {
			v, err := s.Get(Key(key, i))
			if err != nil {
				return fmt.Errorf("get record %d: %w", i, err)
			}
			return checkValue(v, i, valueSize)
		}
		val = Value(val, i, mixedVersion, valueSize)
		if err := s.Set(Key(key, i), val); err != nil {
			return fmt.Errorf("set record %d: %w", i, err)
		}
		return nil
	}
}

// GetOrCreateConfig calls GetOrCreate Ops times on uniformly random loaded
// records from Goroutines goroutines: the hit path, where create must never
// be called.
type GetOrCreateConfig struct {
	N          int
	Ops        int
	Goroutines int
	ValueSize  int
	Seed       uint64
}

// Run performs the calls, or skips a store without GetOrCreate.
func (c GetOrCreateConfig) Run(s store.Store) Result {
	const name = "getorcreate"
	goc, ok := s.(store.GetOrCreater)
	if !ok {
		return skipped(name, "store has no GetOrCreate")
	}
	r := newResult(name)
	// One untimed call first: a build whose GetOrCreate is a stub says so.
	_, err := goc.GetOrCreate(Key(make([]byte, KeySize), 0), func() ([]byte, error) {
		return nil, errors.New("create called for present record 0")
	})
	if errors.Is(err, store.ErrUnsupported) {
		return skipped(name, err.Error())
	}
	d, lat, err := runOps(c.Goroutines, c.Ops, func(g int) opFunc {
		rnd := newRand(c.Seed, g)
		key := make([]byte, KeySize)
		return func(int) error {
			i := rnd.Uint64N(uint64(c.N))
			v, err := goc.GetOrCreate(Key(key, i), func() ([]byte, error) {
				return nil, fmt.Errorf("create called for present record %d", i)
			})
			if err != nil {
				return fmt.Errorf("getorcreate record %d: %w", i, err)
			}
			return checkValue(v, i, c.ValueSize)
		}
	})
	if err != nil {
		return r.fail(err)
	}
	rate(&r, c.Ops, d)
	lat.fill(&r)
	return r
}
