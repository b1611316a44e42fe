package inspect

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

var updateScripts = flag.Bool("update-scripts", false, "rewrite the golden output in testdata/script from the actual output")

// TestMain makes the test binary double as the commands the scripts run in
// their own processes: fsinspect itself, through the same Main that
// cmd/fsinspect calls, and kennel-writer, the other process of the live
// tests.
//
// TestLiveStress re-executes the test binary as a writer instead, chosen by
// the environment variable writerEnv.
func TestMain(m *testing.M) {
	if args := os.Getenv(writerEnv); args != "" {
		os.Exit(writer(strings.Fields(args)))
	}
	testscript.Main(m, map[string]func(){
		"fsinspect":     func() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) },
		"kennel-writer": func() { os.Exit(writer(os.Args[1:])) },
	})
}

// writerEnv, when set to "DIR READY STOP", makes the test binary run as
// kennel-writer.
const writerEnv = "KENNEL_FSINSPECT_WRITER"

// runScript runs testdata/script/NAME.txtar.
//
// Besides testscript's own commands, scripts have:
//
//	kennel-fill DIR N [flags]  write N keys into a new cache (see fillOptions)
//	kennel-flip FILE OFFSET    flip every bit of the byte at OFFSET
//	kennel-tear FILE N         append the first N bytes of FILE's first record
//	kennel-hash DIR OUT        write a manifest of DIR (names, modes, sizes,
//	                           modification times, SHA-256 of contents) to OUT
//	kennel-copydir SRC DST     copy the directory SRC (a fixture) to DST
//	kennel-waitfile FILE       wait until FILE exists
//	exits CODE PROG ARGS...    run PROG and require exit status CODE
//
// the condition [root] (the test runs as root, whom permissions do not
// stop), and $FIXTURES, the absolute path of testdata/fixtures.
func runScript(t *testing.T, name string) {
	t.Helper()
	fixtures, err := filepath.Abs(filepath.Join("testdata", "fixtures"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Files:               []string{filepath.Join("testdata", "script", name+".txtar")},
		UpdateScripts:       *updateScripts,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("FIXTURES", fixtures)
			// A program built with -race sleeps a second before it exits
			// (GORACE atexit_sleep_ms), which every command of every script
			// would pay.
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond != "root" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			return os.Geteuid() == 0, nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"kennel-fill":     cmdFill,
			"kennel-flip":     cmdFlip,
			"kennel-tear":     cmdTear,
			"kennel-hash":     cmdHash,
			"kennel-copydir":  cmdCopyDir,
			"kennel-waitfile": cmdWaitFile,
			"exits":           cmdExits,
		},
	})
}

func noNeg(ts *testscript.TestScript, neg bool, name string) {
	if neg {
		ts.Fatalf("unsupported: ! %s", name)
	}
}

func cmdFill(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "kennel-fill")
	fs := flag.NewFlagSet("kennel-fill", flag.ContinueOnError)
	var o fillOptions
	fs.Int64Var(&o.segmentSize, "segment-size", 4096, "segment size")
	fs.IntVar(&o.valueSize, "value-size", 100, "value size")
	fs.IntVar(&o.expired, "expired", 0, "the first K keys expired in 2001")
	fs.IntVar(&o.future, "future", 0, "the next K keys expire in 2099")
	fs.IntVar(&o.overwritten, "overwritten", 0, "the K keys after those are written twice")
	fs.IntVar(&o.deleted, "deleted", 0, "the last K keys are deleted")
	fs.IntVar(&o.sidecars, "sidecars", 0, "the last K keys' values are written to sidecar files")
	if len(args) < 2 {
		ts.Fatalf("usage: kennel-fill DIR N [flags]")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	ts.Check(fs.Parse(args[2:]))
	o.n = n
	ts.Check(fill(ts.MkAbs(args[0]), o))
}

func cmdFlip(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "kennel-flip")
	if len(args) != 2 {
		ts.Fatalf("usage: kennel-flip FILE OFFSET")
	}
	off, err := strconv.ParseInt(args[1], 0, 64)
	ts.Check(err)
	ts.Check(flipByte(ts.MkAbs(args[0]), off))
}

func cmdTear(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "kennel-tear")
	if len(args) != 2 {
		ts.Fatalf("usage: kennel-tear FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	ts.Check(tearTail(ts.MkAbs(args[0]), n))
}

func cmdHash(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "kennel-hash")
	if len(args) != 2 {
		ts.Fatalf("usage: kennel-hash DIR OUT")
	}
	m, err := manifest(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(m), 0o644))
}

func cmdCopyDir(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "kennel-copydir")
	if len(args) != 2 {
		ts.Fatalf("usage: kennel-copydir SRC DST")
	}
	ts.Check(os.CopyFS(ts.MkAbs(args[1]), os.DirFS(ts.MkAbs(args[0]))))
}

func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "kennel-waitfile")
	if len(args) != 1 {
		ts.Fatalf("usage: kennel-waitfile FILE")
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear", args[0])
		}
	}
}

// cmdExits runs a program like exec, and requires an exact exit status
// (exec and ! exec only tell zero from non-zero).
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "exits")
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// fillOptions say what fill writes. Keys are "key-0000", "key-0001", ...,
// values are deterministic and the clock is fixed, so that two fills with
// the same options write the same bytes.
type fillOptions struct {
	n           int
	segmentSize int64
	valueSize   int
	expired     int // the first expired keys were written in 2001 with a TTL of one hour
	future      int // the next future keys expire at 2099-01-01T00:00:00Z
	overwritten int // then the overwritten keys after those are written again (dead bytes)
	deleted     int // then the last deleted keys are deleted (tombstones)
	sidecars    int // the last sidecars keys are written with SetReader, into sidecar files
}

var (
	fillPast   = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	fillFuture = time.Date(2098, 12, 31, 23, 0, 0, 0, time.UTC)
)

func fillKey(i int) []byte { return fmt.Appendf(nil, "key-%04d", i) }

func fillValue(i, size int) []byte {
	unit := fmt.Sprintf("value-%04d;", i)
	return []byte(strings.Repeat(unit, size/len(unit)+1)[:size])
}

// fill writes a new cache in dir, as a writer process would, but with
// compaction off: the tests predict the layout it leaves.
func fill(dir string, o fillOptions) error {
	if o.segmentSize == 0 {
		o.segmentSize = 4096
	}
	if o.valueSize == 0 {
		o.valueSize = 100
	}
	now := fillPast
	c, err := engine.Open(dir, engine.Options{
		SegmentSize:      o.segmentSize,
		Sync:             engine.SyncNever,
		ManualCompaction: true,
		Clock:            func() time.Time { return now }, // called by this goroutine's writes only
	})
	if err != nil {
		return err
	}
	for i := range o.n {
		key, value := fillKey(i), fillValue(i, o.valueSize)
		var ttl time.Duration
		switch {
		case i < o.expired:
			now, ttl = fillPast, time.Hour
		case i < o.expired+o.future:
			now, ttl = fillFuture, time.Hour
		}
		switch {
		case i >= o.n-o.sidecars:
			err = c.SetReader(key, bytes.NewReader(value), engine.WithTTL(ttl))
		case ttl != 0:
			err = c.SetWithTTL(key, value, ttl)
		default:
			err = c.Set(key, value)
		}
		if err != nil {
			c.Close()
			return err
		}
	}
	for i := o.expired + o.future; i < min(o.expired+o.future+o.overwritten, o.n); i++ {
		if err := c.Set(fillKey(i), fillValue(i+o.n, o.valueSize)); err != nil {
			c.Close()
			return err
		}
	}
	for i := max(o.n-o.deleted, 0); i < o.n; i++ {
		if err := c.Delete(fillKey(i)); err != nil {
			c.Close()
			return err
		}
	}
	return c.Close()
}

// flipByte inverts every bit of the byte at off: a checksum always sees it.
func flipByte(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return fmt.Errorf("read offset %d: %w", off, err)
	}
	b[0] ^= 0xFF
	_, err = f.WriteAt(b, off)
	return err
}

// tearTail appends the first n bytes of the segment's first record, as a
// crash in the middle of an append leaves them.
func tearTail(path string, n int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) < segment.HeaderSize+n {
		return fmt.Errorf("%s is too short to tear %d bytes", path, n)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(b[segment.HeaderSize : segment.HeaderSize+n])
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// manifest describes every file of dir, and dir itself: name, mode, size,
// modification time and, for regular files, the SHA-256 of the content.
// Two manifests are equal only if nothing in the directory changed.
func manifest(dir string) (string, error) {
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(&b, "%s %v %d %d", rel, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", h.Sum(nil))
		}
		b.WriteByte('\n')
		return nil
	})
	return b.String(), err
}

// requireNoChange fails t if fn changes anything in dir: a byte, a name, a
// mode or a modification time (bbolt's requireDBNoChange).
func requireNoChange(t testing.TB, dir string, fn func()) {
	t.Helper()
	before, err := manifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	fn()
	after, err := manifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Fatalf("the directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// result is what one in-process run of fsinspect printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// run runs fsinspect in this process, with stderr not a terminal.
func run(args ...string) result {
	var out, errb bytes.Buffer
	code := (&env{stdout: &out, stderr: &errb, now: time.Now}).run(args)
	return result{out.String(), errb.String(), code}
}

// mustRun runs fsinspect and requires exit status code.
func mustRun(t testing.TB, code int, args ...string) result {
	t.Helper()
	r := run(args...)
	if r.code != code {
		t.Fatalf("fsinspect %s: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

// testDir returns a new cache directory filled with o.
func testDir(t testing.TB, o fillOptions) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "c")
	if err := fill(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writer is kennel-writer DIR READY STOP [exclusive] [sidecars]: a process
// that has the cache in DIR open read-write (with Options.Exclusive if
// asked) and keeps writing into it, rolling segments often and compacting
// them in the background as every writer does, until the file STOP exists.
// With sidecars, two values in three go to sidecar files, so that values
// move between sidecar files and records, and old files are swept.
// It creates READY once it has written a first batch. It gives up after a
// minute, so that a test that forgets to stop it does not hang. It returns
// the exit status.
func writer(args []string) int {
	var exclusive, sidecars bool
	for _, opt := range args[min(3, len(args)):] {
		exclusive = exclusive || opt == "exclusive"
		sidecars = sidecars || opt == "sidecars"
	}
	if len(args) < 3 || len(args) > 5 || (len(args) == 5 && !(exclusive && sidecars)) || (len(args) == 4 && !exclusive && !sidecars) {
		fmt.Fprintln(os.Stderr, "usage: kennel-writer DIR READY STOP [exclusive] [sidecars]")
		return 2
	}
	dir, ready, stop := args[0], args[1], args[2]
	opts := engine.Options{SegmentSize: 16 << 10, Sync: engine.SyncNever, Exclusive: exclusive}
	size := func(int) int { return 200 }
	if sidecars {
		opts.InlineLimit = 150
		size = func(i int) int { return 100 + 100*min(i%3, 1) }
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "kennel-writer:", err)
		return 1
	}
	c, err := engine.Open(dir, opts)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		// Keys from 100 on are deleted now and then; those below stay, so
		// that tests can read them.
		key := fillKey(i % 300)
		if i%7 == 0 && i%300 >= 100 {
			err = c.Delete(key)
		} else {
			err = c.Set(key, fillValue(i, size(i)))
		}
		if err != nil {
			return fail(err)
		}
		if i == 100 {
			if err := os.WriteFile(ready, nil, 0o644); err != nil {
				return fail(err)
			}
		}
		if i%2 == 0 {
			if _, err := os.Stat(stop); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fail(errors.New("never told to stop"))
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := c.Close(); err != nil {
		return fail(err)
	}
	return 0
}
