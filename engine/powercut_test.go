package engine_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/cmd/fsinspect/inspect"
	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/testseed"
	"github.com/kennel-cache/kennel/internal/vfs"
)

var powerCuts = flag.Int("kennel.powercuts", 40, "power cuts of TestPowerCut per configuration (CI runs 40; a soak run, 2000 or more)")

// Power-cut workloads write keys of a small space, so that a cut finds
// keys written over, deleted and compacted; keys past it are never written
// and must never appear.
const (
	powerCutKeys    = 40
	powerCutNever   = 8
	powerCutOps     = 60  // at most, per cycle
	powerCutCalls   = 400 // a cut lands within this many filesystem calls
	powerCutInline  = 200 // values longer than this are sidecar files
	powerCutSegment = 4 << 10
)

// durability is what a power cut must keep of each key, and what it may.
type durability struct {
	// durable is each key's value as of the last point at which the
	// writes made were durable; absent keys have no value.
	durable map[string]string
	// since lists the values written since (or attempted, when the cut
	// failed the write), "" standing for a delete: a cut may keep any.
	since map[string][]string
}

// wrote records a write of key (value, or a delete) that returned err. A
// write that returned nil under SyncAlways is durable at once.
func (d *durability) wrote(key, value string, del bool, err error, syncAlways bool) {
	if del {
		value = ""
	}
	if err == nil && syncAlways {
		d.durable[key] = value
		if del {
			delete(d.durable, key)
		}
		d.since[key] = nil
		return
	}
	d.since[key] = append(d.since[key], value)
}

// synced marks every write that returned as durable: Sync returned nil, and
// no write has failed so far (the first failure is the power cut).
func (d *durability) synced() {
	for key, vs := range d.since {
		if len(vs) == 0 {
			continue
		}
		if v := vs[len(vs)-1]; v == "" {
			delete(d.durable, key)
		} else {
			d.durable[key] = v
		}
	}
	clear(d.since)
}

// allowed reports whether got (ok=false: absent) is a state a power cut may
// leave key in.
func (d *durability) allowed(key string, got string, ok bool) bool {
	want, had := d.durable[key]
	if ok == had && got == want {
		return true
	}
	for _, v := range d.since[key] {
		if v == got && ok == (v != "") {
			return true
		}
	}
	return false
}

// TestPowerCut cuts the power (vfs.CrashFS) at a seeded filesystem call of
// a workload of puts, sidecar values, deletes, batches, syncs and
// compactions; reboots the directory to what the cut keeps (only synced
// bytes and names, and of the bytes written after, nothing, a prefix,
// zeros or garbage); reopens it; and checks every key: each value that was
// durable (written under SyncAlways, or before a Sync that returned) is
// there unless a later write replaced it, nothing else appears, and
// fsinspect verify finds no problem. The next cycle continues on the
// recovered directory.
func TestPowerCut(t *testing.T) {
	configs := []struct {
		name      string
		sync      engine.SyncPolicy
		syncEvery int // ops between explicit Syncs; 0 for none
	}{
		{"sync-always", engine.SyncAlways, 0},
		{"sync-explicit", engine.SyncNever, 7},
	}
	seed := testseed.Seed(t)
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			opts := engine.Options{
				Sync:             cfg.sync,
				SegmentSize:      powerCutSegment,
				InlineLimit:      powerCutInline,
				ManualCompaction: true,
				CacheSize:        1 << 30, // no eviction: every durable value must stay
			}
			root := t.TempDir()
			dir := filepath.Join(root, "cache")
			cfs := vfs.NewCrashFS(filepath.Join(root, "graveyard"), vfs.TailMixed, seed, dir)
			opts = engine.WithFS(opts, cfs)
			rng := rand.New(rand.NewPCG(seed, uint64(len(cfg.name))))
			d := durability{durable: map[string]string{}, since: map[string][]string{}}
			states := 0
			for cycle := range *powerCuts {
				where := fmt.Sprintf("seed %d, cycle %d", seed, cycle)
				c, err := engine.Open(dir, opts)
				if err != nil {
					t.Fatalf("%s: open after a power cut: %v", where, err)
				}
				cfs.CrashAt(1 + rng.IntN(powerCutCalls))
				powerCutWorkload(c, rng, &d, cycle, cfg.sync == engine.SyncAlways, cfg.syncEvery)
				cfs.Crash()
				c.Close() // fails: the power is off; it releases the locks and mappings
				if err := cfs.Reboot(); err != nil {
					t.Fatalf("%s: reboot: %v", where, err)
				}
				states += checkPowerCut(t, where, dir, &d)
			}
			t.Logf("%d power cuts, %d key states checked", *powerCuts, states)
		})
	}
}

// powerCutWorkload runs seeded writes on c until one fails (the power cut)
// or powerCutOps have run, recording each in d.
func powerCutWorkload(c *engine.Cache, rng *rand.Rand, d *durability, cycle int, syncAlways bool, syncEvery int) {
	for n := range powerCutOps {
		id := fmt.Sprintf("%d.%d", cycle, n)
		var err error
		switch r := rng.IntN(20); {
		case r < 2:
			err = c.Compact()
		case r < 3 && syncEvery == 0, r < 4 && syncEvery > 0 && n%syncEvery == 0:
			if err = c.Sync(); err == nil {
				d.synced()
			}
		case r < 6:
			key := powerCutKey(rng)
			err = c.Delete([]byte(key))
			if errors.Is(err, engine.ErrNotFound) {
				err = nil
			}
			d.wrote(key, "", true, err, syncAlways)
		case r < 8:
			var b engine.Batch
			keys := make([]string, 2+rng.IntN(3))
			vals := make([]string, len(keys))
			for i := range keys {
				keys[i], vals[i] = powerCutKey(rng), powerCutValue(rng, id+"."+fmt.Sprint(i))
				b.Set([]byte(keys[i]), []byte(vals[i]))
			}
			err = c.Write(&b)
			for i := range keys {
				d.wrote(keys[i], vals[i], false, err, syncAlways)
			}
		case r < 10:
			key, val := powerCutKey(rng), powerCutValue(rng, id)
			err = c.SetReader([]byte(key), strings.NewReader(val))
			d.wrote(key, val, false, err, syncAlways)
		default:
			key, val := powerCutKey(rng), powerCutValue(rng, id)
			err = c.Set([]byte(key), []byte(val))
			d.wrote(key, val, false, err, syncAlways)
		}
		if err != nil {
			return
		}
	}
}

func powerCutKey(rng *rand.Rand) string { return fmt.Sprintf("key-%02d", rng.IntN(powerCutKeys)) }

// powerCutValue returns a value naming its write, inline or a sidecar file
// about evenly.
func powerCutValue(rng *rand.Rand, id string) string {
	return id + ":" + strings.Repeat("v", rng.IntN(2*powerCutInline))
}

// checkPowerCut reopens dir after a cut and checks every key against d,
// then makes what it found the durable state the next cycle starts from.
// It returns the number of keys checked.
func checkPowerCut(t *testing.T, where, dir string, d *durability) int {
	t.Helper()
	c, err := engine.Open(dir, engine.Options{ManualCompaction: true})
	if err != nil {
		t.Fatalf("%s: open after the cut: %v", where, err)
	}
	found := make(map[string]string)
	for i := range powerCutKeys + powerCutNever {
		key := fmt.Sprintf("key-%02d", i)
		v, err := c.Get([]byte(key))
		switch {
		case errors.Is(err, engine.ErrNotFound):
			if !d.allowed(key, "", false) {
				t.Errorf("%s: %s lost: durable value %.20q, later writes %.20q", where, key, d.durable[key], d.since[key])
			}
		case err != nil:
			t.Errorf("%s: %s: %v", where, key, err)
		case !d.allowed(key, string(v), true):
			t.Errorf("%s: %s holds %.20q: durable value %.20q, later writes %.20q", where, key, v, d.durable[key], d.since[key])
		default:
			found[key] = string(v)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("%s: close: %v", where, err)
	}
	var out bytes.Buffer
	if code := inspect.Main([]string{"verify", dir}, &out, &out); code != 0 {
		t.Errorf("%s: fsinspect verify after the cut: exit status %d:\n%s", where, code, out.String())
	}
	d.durable, d.since = found, map[string][]string{}
	if t.Failed() {
		t.FailNow()
	}
	return powerCutKeys + powerCutNever
}
