package workload

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kennel-cache/kennel/bench/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	store.Tidy()
	os.Exit(code)
}

func TestKeysAndValues(t *testing.T) {
	seen := map[string]bool{}
	key := make([]byte, KeySize)
	for i := uint64(0); i < 10000; i++ {
		k := string(Key(key, i))
		if seen[k] {
			t.Fatalf("key %d repeats", i)
		}
		seen[k] = true
		v := Value(nil, i, 7, DefaultValueSize)
		if err := checkValue(v, i, DefaultValueSize); err != nil {
			t.Fatal(err)
		}
		if err := checkValue(v, i+1, DefaultValueSize); err == nil {
			t.Fatalf("value of record %d passed as record %d", i, i+1)
		}
	}
	const n = 1000
	hit := make([]bool, n)
	for j := uint64(0); j < n; j++ {
		hit[permute(j, n)] = true
	}
	for i, h := range hit {
		if !h {
			t.Fatalf("permute misses %d", i)
		}
	}
	z := newZipfKeys(newRand(1, 0), 1.1, n)
	for j := 0; j < 10000; j++ {
		if k := z.next(); k >= n {
			t.Fatalf("zipf key %d out of range", k)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var l latencies
	for i := 1; i <= 1000; i++ {
		l = append(l, int64(i)*1000) // 1..1000 µs
	}
	r := newResult("x")
	l.fill(&r)
	if r.Metrics[P50us] != 500 || r.Metrics[P99us] != 990 || r.Metrics[P999us] != 999 {
		t.Errorf("percentiles: %v", r.Metrics)
	}
}

// brokenStore fails every Get, to check that a workload reports errors.
type brokenStore struct{ store.FileStore }

func (brokenStore) Get([]byte) ([]byte, error) { return nil, errors.New("disk on fire") }

func TestErrorsAreReported(t *testing.T) {
	s := &brokenStore{}
	if err := s.Open(filepath.Join(t.TempDir(), "db")); err != nil {
		t.Fatal(err)
	}
	if r := (LoadConfig{N: 10, ValueSize: 20}).Run(s); r.Err != "" {
		t.Fatal(r.Err)
	}
	if r := (GetConfig{N: 10, Ops: 10, Goroutines: 2, ValueSize: 20}).Run(s); r.Err == "" {
		t.Error("get of a failing store reported no error")
	}
	if r := (AbsentConfig{N: 10, Ops: 10}).Run(s); r.Err == "" {
		t.Error("absent get of a failing store reported no error")
	}
}

// wrongStore returns another record's value.
type wrongStore struct{ store.FileStore }

func (w *wrongStore) Get(key []byte) ([]byte, error) {
	return Value(nil, 999, 0, 20), nil
}

func TestWrongValuesAreCaught(t *testing.T) {
	s := &wrongStore{}
	if err := s.Open(filepath.Join(t.TempDir(), "db")); err != nil {
		t.Fatal(err)
	}
	if r := (LoadConfig{N: 10, ValueSize: 20}).Run(s); r.Err != "" {
		t.Fatal(r.Err)
	}
	if r := (GetConfig{N: 10, Ops: 10, Goroutines: 1, ValueSize: 20}).Run(s); r.Err == "" {
		t.Error("a wrong value passed")
	}
	if r := (AbsentConfig{N: 10, Ops: 10}).Run(s); r.Err == "" {
		t.Error("a found absent key passed")
	}
}
