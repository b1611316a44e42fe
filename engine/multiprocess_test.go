package engine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/internal/testseed"
)

// This file tests the multi-process protocol of DESIGN.md with real
// processes: the test binary re-executed in a child role (TestMain,
// runChild). Parent and child talk in lines: the child writes its lines to
// stdout and reads the parent's from stdin. The parent waits for a child's
// line, never for time to pass, except where time is what a test is about
// (a value turning stale, a waiter staying blocked while a lock is held);
// it gives up only after mpHang, which catches hangs and nothing else.

func init() {
	childRoles["mp-writers-readers"] = childMPWritersReaders
	childRoles["mp-raw-writer"] = childMPRAWWriter
	childRoles["mp-raw-reader"] = childMPRAWReader
	childRoles["mp-goc-once"] = childMPGOCOnce
	childRoles["mp-goc-stale"] = childMPGOCStale
	childRoles["mp-goc-hang"] = childMPGOCHang
	childRoles["mp-goc-wait"] = childMPGOCWait
	childRoles["mp-get"] = childMPGet
	childRoles["mp-lock-holder"] = childMPLockHolder
	childRoles["mp-ro-writer"] = childMPROWriter
	childRoles["mp-victim"] = childMPVictim
	childRoles["mp-survivor"] = childMPSurvivor
	childRoles["mp-exclusive"] = childMPExclusive
}

// mpHang bounds every wait for a child. A correct run waits milliseconds.
const mpHang = 90 * time.Second

// mpOptions are the default options but for segments small enough to roll
// many times during a test.
func mpOptions() engine.Options { return engine.Options{SegmentSize: 64 << 10} }

// ---- the parent's side ----

// mpChild is a running child process.
type mpChild struct {
	tb     testing.TB
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the child's stdout, line by line; closed at its end
	stderr *mpBuffer
	done   chan struct{} // closed once the child has been waited for
	err    error         // what Wait returned; set before done is closed
}

// mpBuffer collects a child's stderr; it may be read while the child runs.
type mpBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *mpBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *mpBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startMP starts the test binary in role on dir, with extra environment,
// as startChild does, and also pipes the child's stdin, which startChild
// leaves closed. The child's lines queue up without bound, so a child never
// blocks on a parent that is busy elsewhere. The child is killed at the end
// of the test if it still runs.
func startMP(tb testing.TB, name, role, dir string, env ...string) *mpChild {
	tb.Helper()
	cmd := childCommand(role, dir, env...)
	ch := &mpChild{tb: tb, name: name, cmd: cmd, lines: make(chan string), stderr: new(mpBuffer), done: make(chan struct{})}
	cmd.Stderr = ch.stderr
	stdin, stdout := startPiped(tb, cmd)
	ch.stdin = stdin

	raw := make(chan string, 256)
	go func() {
		s := bufio.NewScanner(stdout)
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			raw <- s.Text()
		}
		close(raw)
		io.Copy(io.Discard, stdout) // after a scan error: let the child write on
		ch.err = cmd.Wait()         // after the last read of stdout, as os/exec asks
		close(ch.done)
	}()
	quit := make(chan struct{})
	go func() { // an unbounded queue from raw to lines
		defer close(ch.lines)
		var queue []string
		in := raw
		for in != nil || len(queue) > 0 {
			var out chan string
			var head string
			if len(queue) > 0 {
				out, head = ch.lines, queue[0]
			}
			select {
			case l, ok := <-in:
				if !ok {
					in = nil
					continue
				}
				queue = append(queue, l)
			case out <- head:
				queue = queue[1:]
			case <-quit:
				return
			}
		}
	}()
	tb.Cleanup(func() {
		stdin.Close()
		select {
		case <-ch.done:
		default:
			cmd.Process.Kill()
			<-ch.done
		}
		close(quit)
	})
	return ch
}

// next returns the child's next line; ok is false once its output ended.
func (ch *mpChild) next() (line string, ok bool) {
	ch.tb.Helper()
	select {
	case line, ok = <-ch.lines:
		return line, ok
	case <-time.After(mpHang):
		ch.tb.Fatalf("%s said nothing for %v; stderr:\n%s", ch.name, mpHang, ch.stderr)
		return "", false
	}
}

// expect checks that the child's next line is want.
func (ch *mpChild) expect(want string) {
	ch.tb.Helper()
	line, ok := ch.next()
	if !ok || line != want {
		ch.tb.Fatalf("%s said %q (output open: %v), want %q; stderr:\n%s", ch.name, line, ok, want, ch.stderr)
	}
}

// send writes one line to the child's stdin.
func (ch *mpChild) send(format string, args ...any) {
	ch.tb.Helper()
	if _, err := fmt.Fprintf(ch.stdin, format+"\n", args...); err != nil {
		ch.tb.Fatalf("write to %s: %v; stderr:\n%s", ch.name, err, ch.stderr)
	}
}

// quiet checks that the child neither says anything nor ends during d.
func (ch *mpChild) quiet(d time.Duration) {
	ch.tb.Helper()
	select {
	case line, ok := <-ch.lines:
		ch.tb.Fatalf("%s said %q (output open: %v), want silence for %v; stderr:\n%s", ch.name, line, ok, d, ch.stderr)
	case <-time.After(d):
	}
}

// wait waits for the child to end and returns what Wait returned.
func (ch *mpChild) wait() error {
	ch.tb.Helper()
	select {
	case <-ch.done:
		return ch.err
	case <-time.After(mpHang):
		ch.tb.Fatalf("%s did not end in %v; stderr:\n%s", ch.name, mpHang, ch.stderr)
		return nil
	}
}

// finish closes the child's stdin, which tells it to close its cache and
// end, and checks that it exits with status 0.
func (ch *mpChild) finish() {
	ch.tb.Helper()
	ch.stdin.Close()
	if err := ch.wait(); err != nil {
		ch.tb.Fatalf("%s ended with %v; stderr:\n%s", ch.name, err, ch.stderr)
	}
}

// rest returns the lines the child said and nobody read, once it ended.
func (ch *mpChild) rest() []string {
	ch.tb.Helper()
	ch.wait()
	var out []string
	for l := range ch.lines {
		out = append(out, l)
	}
	return out
}

// kill sends SIGKILL and checks that the child died of it.
func (ch *mpChild) kill() {
	ch.tb.Helper()
	if err := ch.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		ch.tb.Fatalf("kill %s: %v", ch.name, err)
	}
	err := ch.wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		ch.tb.Fatalf("%s ended with %v, want death by SIGKILL; stderr:\n%s", ch.name, err, ch.stderr)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		ch.tb.Fatalf("%s ended with %v, want death by SIGKILL; stderr:\n%s", ch.name, err, ch.stderr)
	}
}

// mpLine is a line said by child number from of a group, or with ended
// set, the end of that child's output: the parent learns at once that a
// child died, instead of waiting for a line that never comes.
type mpLine struct {
	from  int
	text  string
	ended bool
}

// mpGroup is a set of children whose lines the parent reads as one stream.
type mpGroup struct {
	tb       testing.TB
	children []*mpChild
	lines    chan mpLine // closed when every child's output ended
}

// startMPGroup starts n children in role on dir; env gives child i's
// extra environment.
func startMPGroup(tb testing.TB, n int, role, dir string, env func(i int) []string) *mpGroup {
	tb.Helper()
	g := &mpGroup{tb: tb, lines: make(chan mpLine)}
	var wg sync.WaitGroup
	for i := range n {
		ch := startMP(tb, fmt.Sprintf("%s #%d", role, i), role, dir, env(i)...)
		g.children = append(g.children, ch)
		wg.Go(func() {
			for l := range ch.lines {
				select {
				case g.lines <- mpLine{from: i, text: l}:
				case <-tb.Context().Done():
					return
				}
			}
			select {
			case g.lines <- mpLine{from: i, ended: true}:
			case <-tb.Context().Done():
			}
		})
	}
	go func() {
		wg.Wait()
		close(g.lines)
	}()
	return g
}

func (g *mpGroup) stderrs() string {
	var b strings.Builder
	for _, ch := range g.children {
		fmt.Fprintf(&b, "\n%s stderr:\n%s", ch.name, ch.stderr)
	}
	return b.String()
}

// next returns the next line of any child; ok is false once all ended.
func (g *mpGroup) next() (l mpLine, ok bool) {
	g.tb.Helper()
	select {
	case l, ok = <-g.lines:
		return l, ok
	case <-time.After(mpHang):
		g.tb.Fatalf("no child said anything for %v%s", mpHang, g.stderrs())
		return l, false
	}
}

// expectEach checks that each child says want, once, before anything else.
func (g *mpGroup) expectEach(want string) {
	g.tb.Helper()
	said := make([]bool, len(g.children))
	for range g.children {
		l, ok := g.next()
		if !ok || l.ended || l.text != want || said[l.from] {
			g.tb.Fatalf("child #%d said %q (ended: %v), want %q from each child once%s", l.from, l.text, !ok || l.ended, want, g.stderrs())
		}
		said[l.from] = true
	}
}

func (g *mpGroup) sendEach(line string) {
	g.tb.Helper()
	for _, ch := range g.children {
		ch.send("%s", line)
	}
}

// finish ends every child as mpChild.finish does and returns the lines
// they said that nobody read.
func (g *mpGroup) finish() []mpLine {
	g.tb.Helper()
	for _, ch := range g.children {
		ch.stdin.Close()
	}
	for _, ch := range g.children {
		if err := ch.wait(); err != nil {
			g.tb.Fatalf("%s ended with %v%s", ch.name, err, g.stderrs())
		}
	}
	var rest []mpLine
	for l := range g.lines {
		if !l.ended {
			rest = append(rest, l)
		}
	}
	return rest
}

// mpFileLines returns the lines of a file; none if it does not exist.
func mpFileLines(tb testing.TB, path string) []string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// ---- the child's side ----

var mpSayMu sync.Mutex

// mpSay writes one line to the parent: one write(2) of a few bytes, which
// a pipe takes whole, so a kill never leaves half a line.
func mpSay(format string, args ...any) {
	mpSayMu.Lock()
	defer mpSayMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// mpFail reports a child's failure on its stderr and returns its exit code.
func mpFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

// mpClose ends a child: it closes its cache and returns the exit status.
func mpClose(c *engine.Cache) int {
	if err := c.Close(); err != nil {
		return mpFail("close: %v", err)
	}
	return 0
}

func mpEnvInt(name string) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	return n
}

// mpAwait reads the parent's lines until want; false at EOF.
func mpAwait(in *bufio.Scanner, want string) bool {
	for in.Scan() {
		if in.Text() == want {
			return true
		}
	}
	return false
}

// mpDrain reads the parent's lines until EOF: the parent closes a child's
// stdin to tell it to end.
func mpDrain(in *bufio.Scanner) {
	for in.Scan() {
	}
}

// mpAppendLine appends line to the file at path with one O_APPEND write,
// which processes do not interleave.
func mpAppendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	return errors.Join(err, f.Close())
}

// mpAwaitFile polls for a file to exist.
func mpAwaitFile(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear in %v", path, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// childMPGet opens the cache (read-write) and says the value of
// KENNEL_MP_KEY: "value <v>" or "missing".
func childMPGet(dir string) int {
	c, err := engine.Open(dir, mpOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	v, err := c.Get([]byte(os.Getenv("KENNEL_MP_KEY")))
	switch {
	case errors.Is(err, engine.ErrNotFound):
		mpSay("missing")
	case err != nil:
		return mpFail("get: %v", err)
	default:
		mpSay("value %s", v)
	}
	return mpClose(c)
}

// ---- TestMPWritersReaders ----

const (
	mpRWProcs      = 4
	mpRWGoroutines = 4
	mpRWOps        = 3000 // per goroutine, half writes
	mpRWKeys       = 50
)

func mpRWKey(i int) string { return fmt.Sprintf("rw-%02d", i) }

// mpRWValue is the value goroutine g of process p writes to key with its
// write counter c: unique, naming its key and writer, of a length derived
// from all of them, so that a torn, invented or foreign value shows.
func mpRWValue(key string, p, g, c int) string {
	b := fmt.Appendf(nil, "%s|%d|%d|%d|", key, p, g, c)
	for i := range (p*7919 + g*104729 + c*131) % 700 {
		b = append(b, 'a'+byte((i+c)%26))
	}
	return string(b)
}

// mpParseRW returns the writer and counter of v if v is exactly a value
// mpRWValue makes for key.
func mpParseRW(key string, v []byte) (p, g, c int, ok bool) {
	f := strings.SplitN(string(v), "|", 5)
	if len(f) != 5 || f[0] != key {
		return 0, 0, 0, false
	}
	p, err1 := strconv.Atoi(f[1])
	g, err2 := strconv.Atoi(f[2])
	c, err3 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || err3 != nil || mpRWValue(key, p, g, c) != string(v) {
		return 0, 0, 0, false
	}
	return p, g, c, true
}

// childMPWritersReaders is one process of TestMPWritersReaders: once the
// parent says "go", mpRWGoroutines goroutines each make mpRWOps random
// writes and reads, logging them in order to a file of their own.
func childMPWritersReaders(dir string) int {
	p := mpEnvInt("KENNEL_MP_ID")
	seed := uint64(mpEnvInt("KENNEL_MP_SEED"))
	out := os.Getenv("KENNEL_MP_OUT")
	c, err := engine.Open(dir, mpOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	in := bufio.NewScanner(os.Stdin)
	mpSay("ready")
	if !mpAwait(in, "go") {
		return mpFail("no go")
	}
	errs := make([]error, mpRWGoroutines)
	var wg sync.WaitGroup
	for g := range mpRWGoroutines {
		wg.Go(func() { errs[g] = mpRWGoroutine(c, out, seed, p, g) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return mpFail("%v", err)
	}
	if err := c.Close(); err != nil {
		return mpFail("close: %v", err)
	}
	mpDrain(in)
	return 0
}

// mpRWGoroutine logs "w key c" for each acknowledged write, "r key p g c"
// for a read of a well-formed value, "m key" for a miss and "x key %q" for
// a value that is not one mpRWValue makes for key.
func mpRWGoroutine(c *engine.Cache, out string, seed uint64, p, g int) error {
	f, err := os.Create(filepath.Join(out, fmt.Sprintf("p%d-g%d.log", p, g)))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(seed, uint64(p<<8|g)))
	counter := 0
	for range mpRWOps {
		key := mpRWKey(rng.IntN(mpRWKeys))
		if rng.IntN(2) == 0 {
			counter++
			if err := c.Set([]byte(key), []byte(mpRWValue(key, p, g, counter))); err != nil {
				return fmt.Errorf("goroutine %d: Set(%s): %w", g, key, err)
			}
			fmt.Fprintf(w, "w %s %d\n", key, counter)
			continue
		}
		v, err := c.Get([]byte(key))
		switch {
		case errors.Is(err, engine.ErrNotFound):
			fmt.Fprintf(w, "m %s\n", key)
		case err != nil:
			return fmt.Errorf("goroutine %d: Get(%s): %w", g, key, err)
		default:
			if rp, rg, rc, ok := mpParseRW(key, v); ok {
				fmt.Fprintf(w, "r %s %d %d %d\n", key, rp, rg, rc)
			} else {
				fmt.Fprintf(w, "x %s %q\n", key, v)
			}
		}
	}
	return errors.Join(w.Flush(), f.Close())
}

// TestMPWritersReaders: 4 processes of 4 goroutines each write and read 50
// shared keys, rolling segments as they go. Every value read is one written
// for its key; per reader and key, each writer's counter never goes back
// (monotonic reads, own writes included); each process sees the others'
// writes; and at the end each key holds the last write some writer made to
// it: an earlier write of a writer can never be the final value.
func TestMPWritersReaders(t *testing.T) {
	seed := testseed.Seed(t)
	dir, out := t.TempDir(), t.TempDir()
	g := startMPGroup(t, mpRWProcs, "mp-writers-readers", dir, func(i int) []string {
		return []string{fmt.Sprintf("KENNEL_MP_ID=%d", i), fmt.Sprintf("KENNEL_MP_SEED=%d", seed%(1<<62)), "KENNEL_MP_OUT=" + out}
	})
	g.expectEach("ready") // all open at once before anyone writes
	g.sendEach("go")
	if rest := g.finish(); len(rest) != 0 {
		t.Fatalf("children said %v", rest)
	}
	if last := lastSegmentID(t, dir); last < 10 {
		t.Fatalf("last segment %d: the test should roll many", last)
	}

	type writer struct{ p, g int }
	type logLine struct {
		fields []string
		line   int
	}
	logs := map[writer][]logLine{}
	written := map[string]map[writer]map[int]bool{} // key → writer → counters
	last := map[string]map[writer]int{}             // key → writer → last counter
	for p := range mpRWProcs {
		for gr := range mpRWGoroutines {
			w := writer{p, gr}
			lines := mpFileLines(t, filepath.Join(out, fmt.Sprintf("p%d-g%d.log", p, gr)))
			if len(lines) != mpRWOps {
				t.Fatalf("process %d goroutine %d logged %d ops, want %d", p, gr, len(lines), mpRWOps)
			}
			for i, l := range lines {
				f := strings.Fields(l)
				logs[w] = append(logs[w], logLine{f, i + 1})
				if f[0] != "w" {
					continue
				}
				c, err := strconv.Atoi(f[2])
				if err != nil {
					t.Fatalf("p%d-g%d.log:%d: %q", p, gr, i+1, l)
				}
				if written[f[1]] == nil {
					written[f[1]], last[f[1]] = map[writer]map[int]bool{}, map[writer]int{}
				}
				if written[f[1]][w] == nil {
					written[f[1]][w] = map[int]bool{}
				}
				written[f[1]][w][c] = true
				last[f[1]][w] = c
			}
		}
	}

	errs := 0
	report := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if errs++; errs == 20 {
			t.Fatal("20 errors: giving up")
		}
	}
	foreign := make([]int, mpRWProcs) // reads of another process's value
	reads := 0
	for self, lines := range logs {
		seen := map[string]map[writer]int{} // key → writer → highest counter known
		for _, l := range lines {
			f, where := l.fields, fmt.Sprintf("p%d-g%d.log:%d", self.p, self.g, l.line)
			key := f[1]
			if seen[key] == nil {
				seen[key] = map[writer]int{}
			}
			switch f[0] {
			case "w":
				c, _ := strconv.Atoi(f[2])
				seen[key][self] = c // it is in the log now: no read may go back past it
			case "m":
				if len(seen[key]) > 0 {
					report("%s: %s has no value, but this goroutine saw or wrote one before (%v)", where, key, seen[key])
				}
			case "x":
				report("%s: %s = %s, not a value written for it", where, key, strings.Join(f[2:], " "))
			case "r":
				reads++
				p, _ := strconv.Atoi(f[2])
				gr, _ := strconv.Atoi(f[3])
				c, _ := strconv.Atoi(f[4])
				w := writer{p, gr}
				if !written[key][w][c] {
					report("%s: read %s = write %d of p%d-g%d, which was never made", where, key, c, p, gr)
				}
				if prev, ok := seen[key][w]; ok && c < prev {
					report("%s: read %s = write %d of p%d-g%d after its write %d: reads went back in time", where, key, c, p, gr, prev)
				}
				seen[key][w] = max(seen[key][w], c)
				if p != self.p {
					foreign[self.p]++
				}
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for p, n := range foreign {
		if n == 0 {
			report("process %d never read a value another process wrote", p)
		}
	}
	t.Logf("%d reads, of which %v per process were of other processes' writes", reads, foreign)

	c := openCache(t, dir, mpOptions())
	if len(last) != mpRWKeys {
		t.Fatalf("%d keys written, want all %d", len(last), mpRWKeys)
	}
	for key, lasts := range last {
		v, err := c.Get([]byte(key))
		if err != nil {
			report("Get(%s) after every process closed: %v", key, err)
			continue
		}
		p, gr, n, ok := mpParseRW(key, v)
		switch {
		case !ok:
			report("%s = %.60q, not a value written for it", key, v)
		case lasts[writer{p, gr}] != n:
			report("%s = write %d of p%d-g%d, but that writer's last acknowledged write to it was %d", key, n, p, gr, lasts[writer{p, gr}])
		}
	}
	if n := c.Len(); n != mpRWKeys {
		t.Errorf("Len = %d, want %d", n, mpRWKeys)
	}
}

// ---- TestMPReadAfterWrite ----

const mpRAWRounds = 200

// mpRAWOptions store values raw, so that the large values roll a 64 KiB
// segment every few writes.
func mpRAWOptions() engine.Options {
	return engine.Options{SegmentSize: 64 << 10, Compression: engine.CompressNone}
}

// mpRAWOp is round i of TestMPReadAfterWrite: a put of a new value of 8 to
// 20 KB, or every ninth round a delete, on one of 40 keys.
func mpRAWOp(i int) (key, val string, del bool) {
	key = fmt.Sprintf("raw-%02d", i%40)
	if i%9 == 8 {
		return key, "", true
	}
	return key, value(key, i, 8000+(i*4099)%12000), false
}

// childMPRAWWriter applies the round the parent names and says "done i".
func childMPRAWWriter(dir string) int {
	c, err := engine.Open(dir, mpRAWOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	mpSay("ready")
	for in := bufio.NewScanner(os.Stdin); in.Scan(); {
		i, err := strconv.Atoi(in.Text())
		if err != nil {
			return mpFail("bad line %q", in.Text())
		}
		key, val, del := mpRAWOp(i)
		if del {
			err = c.Delete([]byte(key))
		} else {
			err = c.Set([]byte(key), []byte(val))
		}
		if err != nil {
			return mpFail("round %d: %v", i, err)
		}
		mpSay("done %d", i)
	}
	return mpClose(c)
}

// childMPRAWReader checks the key of the round the parent names: "ok i"
// if it holds what the round wrote, else "bad i: ...".
func childMPRAWReader(dir string) int {
	c, err := engine.Open(dir, mpRAWOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	mpSay("ready")
	for in := bufio.NewScanner(os.Stdin); in.Scan(); {
		i, err := strconv.Atoi(in.Text())
		if err != nil {
			return mpFail("bad line %q", in.Text())
		}
		key, want, del := mpRAWOp(i)
		got, err := c.Get([]byte(key))
		switch {
		case del && errors.Is(err, engine.ErrNotFound):
			mpSay("ok %d", i)
		case !del && err == nil && string(got) == want:
			mpSay("ok %d", i)
		default:
			mpSay("bad %d: Get(%s) = %.40q (%d bytes), %v; want deleted: %v, else %.40q (%d bytes)", i, key, got, len(got), err, del, want, len(want))
		}
	}
	return mpClose(c)
}

// TestMPReadAfterWrite: process A writes (puts, overwrites, deletes) and
// tells process B, through the parent; B, which opened the cache before A
// wrote anything, must see exactly those writes: 200 rounds of one to four
// writes each, so that B's catch-up often crosses a segment roll with
// records it has not seen on both sides of it.
func TestMPReadAfterWrite(t *testing.T) {
	dir := t.TempDir()
	b := startMP(t, "reader B", "mp-raw-reader", dir)
	b.expect("ready")
	a := startMP(t, "writer A", "mp-raw-writer", dir)
	a.expect("ready")
	model := map[string]string{}
	next := 0
	for round := range mpRAWRounds {
		ops := []int{}
		for range 1 + round%4 { // four ops never touch one key twice
			ops = append(ops, next)
			next++
		}
		for _, i := range ops {
			a.send("%d", i)
			a.expect(fmt.Sprintf("done %d", i))
		}
		for _, i := range ops {
			b.send("%d", i)
			b.expect(fmt.Sprintf("ok %d", i))
			key, val, del := mpRAWOp(i)
			if del {
				delete(model, key)
			} else {
				model[key] = val
			}
		}
	}
	a.finish()
	b.finish()
	if last := lastSegmentID(t, dir); last < 20 {
		t.Fatalf("last segment %d: the test should roll many", last)
	}
	c := openCache(t, dir, mpRAWOptions())
	checkModel(t, c, model)
}

// ---- TestMPGetOrCreateOnce ----

const (
	mpGOCProcs      = 8
	mpGOCGoroutines = 8
)

// childMPGOCOnce: once the parent says "go", 8 goroutines call GetOrCreate
// on one key; create logs "p g" to the counter file and takes 100 ms, so
// that every caller piles up behind it. Each says "got <value>".
func childMPGOCOnce(dir string) int {
	p := mpEnvInt("KENNEL_MP_ID")
	counter := os.Getenv("KENNEL_MP_COUNTER")
	c, err := engine.Open(dir, mpOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	in := bufio.NewScanner(os.Stdin)
	mpSay("ready")
	if !mpAwait(in, "go") {
		return mpFail("no go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), mpHang)
	defer cancel()
	var wg sync.WaitGroup
	for g := range mpGOCGoroutines {
		wg.Go(func() {
			v, err := c.GetOrCreate(ctx, []byte("once"), func(context.Context) ([]byte, error) {
				if err := mpAppendLine(counter, fmt.Sprintf("%d %d", p, g)); err != nil {
					return nil, err
				}
				time.Sleep(100 * time.Millisecond)
				return fmt.Appendf(nil, "made by %d %d", p, g), nil
			})
			if err != nil {
				mpSay("err %d %d: %v", p, g, err)
				return
			}
			mpSay("got %s", v)
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		return mpFail("close: %v", err)
	}
	mpDrain(in)
	return 0
}

// TestMPGetOrCreateOnce: 64 callers in 8 processes ask for one missing key
// at once: create runs once, and all 64 get its value.
func TestMPGetOrCreateOnce(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "counter")
	g := startMPGroup(t, mpGOCProcs, "mp-goc-once", dir, func(i int) []string {
		return []string{fmt.Sprintf("KENNEL_MP_ID=%d", i), "KENNEL_MP_COUNTER=" + counter}
	})
	g.expectEach("ready")
	g.sendEach("go")
	got := map[string]int{}
	for range mpGOCProcs * mpGOCGoroutines {
		l, ok := g.next()
		if !ok || l.ended || !strings.HasPrefix(l.text, "got ") {
			t.Fatalf("child #%d said %q (ended: %v), want \"got <value>\"%s", l.from, l.text, !ok || l.ended, g.stderrs())
		}
		got[strings.TrimPrefix(l.text, "got ")]++
	}
	if rest := g.finish(); len(rest) != 0 {
		t.Fatalf("children said %v after their results", rest)
	}
	creates := mpFileLines(t, counter)
	if len(creates) != 1 {
		t.Fatalf("create ran %d times (%q), want once", len(creates), creates)
	}
	want := "made by " + creates[0]
	if len(got) != 1 || got[want] != mpGOCProcs*mpGOCGoroutines {
		t.Fatalf("GetOrCreate returned %v, want %q to all %d callers", got, want, mpGOCProcs*mpGOCGoroutines)
	}
	c := openCache(t, dir, mpOptions())
	wantValue(t, c, "once", want)
}

// ---- TestMPGetOrCreateStale ----

const mpStaleKey = "stale"

// childMPGOCStale: once the parent says "go", 8 goroutines call
// GetOrCreate on mpStaleKey (in the background with KENNEL_MP_BG=1); create
// logs "p g" to the counter file, says "creating p g", and blocks until the
// release file exists. Each caller says "got p g <value>".
func childMPGOCStale(dir string) int {
	p := mpEnvInt("KENNEL_MP_ID")
	counter, release := os.Getenv("KENNEL_MP_COUNTER"), os.Getenv("KENNEL_MP_RELEASE")
	opts := []engine.CreateOption{engine.Fresh(time.Hour), engine.Grace(time.Hour)}
	if os.Getenv("KENNEL_MP_BG") == "1" {
		opts = append(opts, engine.InBackground())
	}
	c, err := engine.Open(dir, mpOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	in := bufio.NewScanner(os.Stdin)
	mpSay("ready")
	if !mpAwait(in, "go") {
		return mpFail("no go")
	}
	var wg sync.WaitGroup
	for g := range mpGOCGoroutines {
		wg.Go(func() {
			v, err := c.GetOrCreate(context.Background(), []byte(mpStaleKey), func(context.Context) ([]byte, error) {
				if err := mpAppendLine(counter, fmt.Sprintf("%d %d", p, g)); err != nil {
					return nil, err
				}
				mpSay("creating %d %d", p, g)
				if err := mpAwaitFile(release, 2*mpHang); err != nil {
					return nil, err
				}
				return fmt.Appendf(nil, "new by %d %d", p, g), nil
			}, opts...)
			if err != nil {
				mpSay("err %d %d: %v", p, g, err)
				return
			}
			mpSay("got %d %d %s", p, g, v)
		})
	}
	wg.Wait()
	mpDrain(in) // a background regeneration may still run: close when told
	return mpClose(c)
}

// TestMPGetOrCreateStale: a value has turned stale; 64 callers in 8
// processes ask for it. Exactly one regenerates it, and while its create is
// blocked the other 63 all get the stale value: the parent counts their 63
// answers before it lets the create finish. The creator then gets the new
// value, and so does a later process. With InBackground all 64 get the
// stale value at once and the new one appears afterwards.
func TestMPGetOrCreateStale(t *testing.T) {
	t.Run("Foreground", func(t *testing.T) { testMPGetOrCreateStale(t, false) })
	t.Run("InBackground", func(t *testing.T) { testMPGetOrCreateStale(t, true) })
}

func testMPGetOrCreateStale(t *testing.T, background bool) {
	dir, tmp := t.TempDir(), t.TempDir()
	counter, release := filepath.Join(tmp, "counter"), filepath.Join(tmp, "release")
	c := openCache(t, dir, mpOptions())
	v, err := c.GetOrCreate(t.Context(), []byte(mpStaleKey), func(context.Context) ([]byte, error) {
		return []byte("old"), nil
	}, engine.Fresh(200*time.Millisecond), engine.Grace(time.Hour))
	if err != nil || string(v) != "old" {
		t.Fatalf("GetOrCreate = %q, %v", v, err)
	}
	// Not a wait for another process: the value turns stale on the real
	// clock 200 ms after it was stored, which was before GetOrCreate returned.
	time.Sleep(250 * time.Millisecond)

	bg := "0"
	if background {
		bg = "1"
	}
	g := startMPGroup(t, mpGOCProcs, "mp-goc-stale", dir, func(i int) []string {
		return []string{fmt.Sprintf("KENNEL_MP_ID=%d", i), "KENNEL_MP_COUNTER=" + counter, "KENNEL_MP_RELEASE=" + release, "KENNEL_MP_BG=" + bg}
	})
	g.expectEach("ready")
	g.sendEach("go")
	wantStale := mpGOCProcs*mpGOCGoroutines - 1
	if background {
		wantStale++
	}
	stale, creator := 0, ""
	for stale < wantStale || creator == "" {
		l, ok := g.next()
		switch {
		case !ok || l.ended:
			t.Fatalf("child #%d ended before answering%s", l.from, g.stderrs())
		case strings.HasPrefix(l.text, "creating "):
			if creator != "" {
				t.Fatalf("a second create (%s) while %s's is still blocked", l.text, creator)
			}
			creator = strings.TrimPrefix(l.text, "creating ")
		case strings.HasPrefix(l.text, "got ") && strings.HasSuffix(l.text, " old"):
			stale++
		default:
			t.Fatalf("child #%d said %q while the creator is blocked (%d stale answers so far, creator %q)%s", l.from, l.text, stale, creator, g.stderrs())
		}
	}
	// Everyone but the creator has answered, with the stale value, while
	// its create is blocked; nothing new is stored.
	if creates := mpFileLines(t, counter); len(creates) != 1 || creates[0] != creator {
		t.Fatalf("counter file %q, want only %q", creates, creator)
	}
	wantValue(t, c, mpStaleKey, "old")
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	newValue := "new by " + creator
	if !background {
		l, ok := g.next()
		if want := "got " + creator + " " + newValue; !ok || l.ended || l.text != want {
			t.Fatalf("child #%d said %q (ended: %v), want %q%s", l.from, l.text, !ok || l.ended, want, g.stderrs())
		}
	} else {
		// The regeneration runs on in the creator's process; wait for its
		// store to be published.
		deadline := time.Now().Add(mpHang)
		for {
			v, err := c.Get([]byte(mpStaleKey))
			if err != nil {
				t.Fatalf("Get while the background create stores: %v", err)
			}
			if string(v) != "old" {
				if string(v) != newValue {
					t.Fatalf("after the background create, %s = %q, want %q", mpStaleKey, v, newValue)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the background create's value did not appear in %v%s", mpHang, g.stderrs())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if rest := g.finish(); len(rest) != 0 {
		t.Fatalf("children said %v after the regeneration", rest)
	}
	if creates := mpFileLines(t, counter); len(creates) != 1 {
		t.Fatalf("create ran %d times (%q), want once", len(creates), creates)
	}
	wantValue(t, c, mpStaleKey, newValue)
	mustClose(t, c)
	later := startMP(t, "later process", "mp-get", dir, "KENNEL_MP_KEY="+mpStaleKey)
	later.expect("value " + newValue)
	later.finish()
}

// ---- TestMPCreatorKilled ----

const mpKilledKey = "killed"

// childMPGOCHang calls GetOrCreate with a create that logs "A", says
// "creating" and never returns.
func childMPGOCHang(dir string) int {
	counter := os.Getenv("KENNEL_MP_COUNTER")
	c, err := engine.Open(dir, mpOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	_, err = c.GetOrCreate(context.Background(), []byte(mpKilledKey), func(context.Context) ([]byte, error) {
		if err := mpAppendLine(counter, "A"); err != nil {
			return nil, err
		}
		mpSay("creating")
		select {}
	})
	return mpFail("GetOrCreate returned: %v", err)
}

// childMPGOCWait says "waiting", calls GetOrCreate with a create that logs
// "B", and says "got <value>".
func childMPGOCWait(dir string) int {
	counter := os.Getenv("KENNEL_MP_COUNTER")
	c, err := engine.Open(dir, mpOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), mpHang)
	defer cancel()
	mpSay("waiting")
	v, err := c.GetOrCreate(ctx, []byte(mpKilledKey), func(context.Context) ([]byte, error) {
		if err := mpAppendLine(counter, "B"); err != nil {
			return nil, err
		}
		return []byte("value from B"), nil
	})
	if err != nil {
		return mpFail("GetOrCreate: %v", err)
	}
	mpSay("got %s", v)
	if err := c.Close(); err != nil {
		return mpFail("close: %v", err)
	}
	mpDrain(bufio.NewScanner(os.Stdin))
	return 0
}

// TestMPCreatorKilled: process A dies (SIGKILL) inside create, holding the
// key's lock; process B, waiting for that lock, takes over, runs its own
// create and returns its value.
func TestMPCreatorKilled(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(t.TempDir(), "counter")
	a := startMP(t, "creator A", "mp-goc-hang", dir, "KENNEL_MP_COUNTER="+counter)
	a.expect("creating")
	b := startMP(t, "waiter B", "mp-goc-wait", dir, "KENNEL_MP_COUNTER="+counter)
	b.expect("waiting")
	// B waits for the lock A holds: it must not return while A lives.
	b.quiet(300 * time.Millisecond)
	if creates := mpFileLines(t, counter); len(creates) != 1 || creates[0] != "A" {
		t.Fatalf("counter file %q while A creates, want only A", creates)
	}
	a.kill()
	b.expect("got value from B")
	b.finish()
	if creates := mpFileLines(t, counter); strings.Join(creates, ",") != "A,B" {
		t.Fatalf("counter file %q, want A's then B's create", creates)
	}
	c := openCache(t, dir, mpOptions())
	wantValue(t, c, mpKilledKey, "value from B")
}

// ---- TestMPLockSurvivesOtherFD ----

const mpLockKey = "locked-key"

// childMPLockHolder takes mpLockKey's lock, opens and closes another
// descriptor of the directory's lock file, and says "locked". Told
// "second", it opens and closes a second Cache on the directory and says
// "second done". At EOF it exits without unlocking.
func childMPLockHolder(dir string) int {
	c, err := engine.Open(dir, mpOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), mpHang)
	defer cancel()
	l, err := c.Lock(ctx, []byte(mpLockKey))
	if err != nil {
		return mpFail("lock: %v", err)
	}
	f, err := os.Open(filepath.Join(dir, "lock"))
	if err != nil {
		return mpFail("open the lock file: %v", err)
	}
	if err := f.Close(); err != nil {
		return mpFail("close the lock file: %v", err)
	}
	mpSay("locked")
	for in := bufio.NewScanner(os.Stdin); in.Scan(); {
		if in.Text() != "second" {
			return mpFail("bad line %q", in.Text())
		}
		c2, err := engine.Open(dir, mpOptions())
		if err != nil {
			return mpFail("open a second cache: %v", err)
		}
		if err := c2.Set([]byte("from-second"), []byte("yes")); err != nil {
			return mpFail("set through the second cache: %v", err)
		}
		if err := c2.Close(); err != nil {
			return mpFail("close the second cache: %v", err)
		}
		mpSay("second done")
	}
	_ = l // held until the process ends: the kernel releases it
	return 0
}

// TestMPLockSurvivesOtherFD: a process holds a key's lock (Cache.Lock);
// opening and closing another descriptor of the lock file in that process,
// or a whole second Cache, must not drop it (open-file-description locks,
// not POSIX record locks). Another process's Lock times out while the
// holder lives and succeeds once it exited.
func TestMPLockSurvivesOtherFD(t *testing.T) {
	dir := t.TempDir()
	h := startMP(t, "holder", "mp-lock-holder", dir)
	h.expect("locked")
	c := openCache(t, dir, mpOptions())
	requireHeld := func(after string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		l, err := c.Lock(ctx, []byte(mpLockKey))
		if err == nil {
			l.Unlock()
			t.Fatalf("Lock succeeded while another process holds the key's lock, %s", after)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock while another process holds it, %s: %v, want context.DeadlineExceeded", after, err)
		}
	}
	requireHeld("after the holder opened and closed the lock file")
	// Other keys are free.
	ctx, cancel := context.WithTimeout(t.Context(), mpHang)
	defer cancel()
	other, err := c.Lock(ctx, []byte("another-key"))
	if err != nil {
		t.Fatalf("Lock of another key: %v", err)
	}
	if err := other.Unlock(); err != nil {
		t.Fatal(err)
	}
	h.send("second")
	h.expect("second done")
	requireHeld("after the holder opened and closed a second Cache")
	wantValue(t, c, "from-second", "yes")
	h.finish()
	l, err := c.Lock(ctx, []byte(mpLockKey))
	if err != nil {
		t.Fatalf("Lock after the holder exited: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// ---- TestMPReadOnlyFollowsWriter ----

const (
	mpROOps  = 3000
	mpROKeys = 200
)

// mpROOp is write i of TestMPReadOnlyFollowsWriter: a put, or one in 11 a
// delete, of key i mod mpROKeys.
func mpROOp(i int) (key, val string, del bool) {
	key = fmt.Sprintf("ro-%03d", i%mpROKeys)
	if i%11 == 10 {
		return key, "", true
	}
	return key, value(key, i, 100+(i*37)%400), false
}

// childMPROWriter applies mpROOps writes as fast as it can, saying "a i"
// once write i returned, and closes the cache.
func childMPROWriter(dir string) int {
	c, err := engine.Open(dir, mpOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	for i := range mpROOps {
		key, val, del := mpROOp(i)
		if del {
			err = c.Delete([]byte(key))
		} else {
			err = c.Set([]byte(key), []byte(val))
		}
		if err != nil {
			return mpFail("write %d: %v", i, err)
		}
		mpSay("a %d", i)
	}
	if err := c.Close(); err != nil {
		return mpFail("close: %v", err)
	}
	mpDrain(bufio.NewScanner(os.Stdin))
	return 0
}

// TestMPReadOnlyFollowsWriter: a ReadOnly cache, opened while another
// process writes, sees each write that process acknowledged (or a later
// write of the same key, never an earlier one), across segment rolls, and
// the final state after the writer closed.
func TestMPReadOnlyFollowsWriter(t *testing.T) {
	dir := t.TempDir()
	w := startMP(t, "writer", "mp-ro-writer", dir)
	const openAt = 100 // the reader opens once this write is acknowledged
	var ro *engine.Cache
	latest := map[string]int{} // the latest write seen per key
	check := func(i int) {
		t.Helper()
		key, _, _ := mpROOp(i)
		got, err := ro.Get([]byte(key))
		if errors.Is(err, engine.ErrNotFound) {
			// Write i was a delete, or a later write of the key than any
			// seen so far was.
			for j := max(i, latest[key]); j < mpROOps; j += mpROKeys {
				if _, _, del := mpROOp(j); del {
					return
				}
			}
			t.Fatalf("after write %d was acknowledged, %s has no value; no write from %d on deletes it", i, key, i)
		}
		if err != nil {
			t.Fatalf("Get(%s) after write %d: %v", key, i, err)
		}
		n := -1
		if _, rest, ok := strings.Cut(string(got), "="); ok {
			if s, _, ok := strings.Cut(rest, ";"); ok {
				n, _ = strconv.Atoi(s)
			}
		}
		k, want, del := mpROOp(max(n, 0))
		switch {
		case n < 0 || k != key || del || string(got) != want:
			t.Fatalf("after write %d, %s = %.60q: no write made that value", i, key, got)
		case n < i:
			t.Fatalf("after write %d was acknowledged, %s holds the value of write %d, which it overwrote", i, key, n)
		case n < latest[key]:
			t.Fatalf("%s holds write %d after holding write %d", key, n, latest[key])
		}
		latest[key] = n
	}
	// The reader checks each write as soon as it is acknowledged, and in the
	// second half only every 300 acknowledgements, all at once, so that one
	// catch-up spans segment rolls.
	checked := 0
	for i := range mpROOps {
		w.expect(fmt.Sprintf("a %d", i))
		if i == openAt {
			ro = openCache(t, dir, engine.Options{SegmentSize: 64 << 10, ReadOnly: true})
		}
		batch := 1
		if i >= mpROOps/2 {
			batch = 300
		}
		if ro != nil && (i+1-checked >= batch || i == mpROOps-1) {
			for ; checked <= i; checked++ {
				check(checked)
			}
		}
	}
	w.finish()
	if last := lastSegmentID(t, dir); last < 5 {
		t.Fatalf("last segment %d: the test should roll several", last)
	}
	model := map[string]string{}
	for i := range mpROOps {
		key, val, del := mpROOp(i)
		if del {
			delete(model, key)
		} else {
			model[key] = val
		}
	}
	checkModel(t, ro, model)
	checkModel(t, openCache(t, dir, engine.Options{SegmentSize: 64 << 10, ReadOnly: true}), model)
}

// ---- TestMPWriterKilledMidAppend ----

const (
	mpKillCycles       = 4
	mpVictimGoroutines = 4
	mpSurvivorKeys     = 300
)

// mpKillOptions roll a segment every 16 KiB.
func mpKillOptions() engine.Options { return engine.Options{SegmentSize: 16 << 10} }

// mpVictimKey is the key of write n of goroutine g of the victim of a kill
// cycle: every write makes a new key.
func mpVictimKey(cycle, g, n int) string { return fmt.Sprintf("v%d-%d-%06d", cycle, g, n) }

func mpVictimValue(cycle, g, n int) string {
	return value(mpVictimKey(cycle, g, n), n, 40+(n*7+g*13)%300)
}

func mpSurvivorKey(cycle, j int) string { return fmt.Sprintf("s%d-%04d", cycle, j) }

// childMPVictim writes new keys from mpVictimGoroutines goroutines in tight
// loops, so that it is nearly always inside an append, saying "a g n" once
// write n of goroutine g returned, until it is killed.
func childMPVictim(dir string) int {
	cycle := mpEnvInt("KENNEL_MP_CYCLE")
	c, err := engine.Open(dir, mpKillOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	failed := make(chan string)
	for g := range mpVictimGoroutines {
		go func() {
			for n := 0; ; n++ {
				if err := c.Set([]byte(mpVictimKey(cycle, g, n)), []byte(mpVictimValue(cycle, g, n))); err != nil {
					failed <- fmt.Sprintf("goroutine %d, write %d: %v", g, n, err)
					return
				}
				mpSay("a %d %d", g, n)
			}
		}()
	}
	return mpFail("%s", <-failed)
}

// childMPSurvivor opens the directory and says "open". Told "write cycle",
// it writes mpSurvivorKeys keys of its own and reads them back; told "check
// cycle n0 n1 ...", it reads back the first n_g writes of each goroutine g
// of that cycle's victim. It answers "ok" or "bad ...".
func childMPSurvivor(dir string) int {
	c, err := engine.Open(dir, mpKillOptions())
	if err != nil {
		return mpFail("open: %v", err)
	}
	mpSay("open")
	check := func(key, want string) error {
		if v, err := c.Get([]byte(key)); err != nil || string(v) != want {
			return fmt.Errorf("bad: %s = %.40q, %v; want %.40q", key, v, err, want)
		}
		return nil
	}
	for in := bufio.NewScanner(os.Stdin); in.Scan(); {
		f := strings.Fields(in.Text())
		args := make([]int, len(f)-1)
		for i := range args {
			if args[i], err = strconv.Atoi(f[i+1]); err != nil {
				return mpFail("bad line %q", in.Text())
			}
		}
		err = nil
		switch {
		case f[0] == "write" && len(args) == 1:
			for j := range mpSurvivorKeys {
				k := mpSurvivorKey(args[0], j)
				if err := c.Set([]byte(k), []byte(value(k, j, 300))); err != nil {
					return mpFail("write %s: %v", k, err)
				}
			}
			for j := 0; j < mpSurvivorKeys && err == nil; j++ {
				k := mpSurvivorKey(args[0], j)
				err = check(k, value(k, j, 300))
			}
		case f[0] == "check" && len(args) == 1+mpVictimGoroutines:
			for g, n := range args[1:] {
				for j := 0; j < n && err == nil; j++ {
					err = check(mpVictimKey(args[0], g, j), mpVictimValue(args[0], g, j))
				}
			}
		default:
			return mpFail("bad line %q", in.Text())
		}
		if err != nil {
			mpSay("%v", err)
		} else {
			mpSay("ok")
		}
	}
	return mpClose(c)
}

// TestMPWriterKilledMidAppend: while a survivor process has the directory
// open, a process writing from 4 goroutines in tight loops is killed
// (SIGKILL) at a random moment, mostly inside an append; 4 such cycles.
// After each kill the survivor writes (it must catch up with the dead
// process and recover from its death to append) and then finds every write
// the dead process acknowledged. At the end a new cache that is not the
// first opener, and after everyone closed a fresh open, find the same:
// every acknowledged write whole; each write in flight at a kill either
// whole or absent, and the same in every view; nothing else of the dead
// processes; and the survivor's and their own writes.
func TestMPWriterKilledMidAppend(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 8))
	dir := t.TempDir()
	s := startMP(t, "survivor", "mp-survivor", dir)
	s.expect("open")
	acked := make([][]int, mpKillCycles) // per cycle and goroutine: writes acknowledged
	for cycle := range mpKillCycles {
		killAt := 200 + rng.IntN(3000) // acknowledged writes before the kill
		v := startMP(t, fmt.Sprintf("victim %d", cycle), "mp-victim", dir, fmt.Sprintf("KENNEL_MP_CYCLE=%d", cycle))
		n := make([]int, mpVictimGoroutines)
		ack := func(line string) {
			t.Helper()
			var g, w int
			if _, err := fmt.Sscanf(line, "a %d %d", &g, &w); err != nil || g < 0 || g >= len(n) || w != n[g] {
				t.Fatalf("victim %d said %q after acknowledging %v; stderr:\n%s", cycle, line, n, v.stderr)
			}
			n[g]++
		}
		for total := 0; total < killAt; total++ {
			line, ok := v.next()
			if !ok {
				t.Fatalf("victim %d ended; stderr:\n%s", cycle, v.stderr)
			}
			ack(line)
		}
		v.kill() // it wrote on meanwhile: the kill lands wherever it is
		for _, line := range v.rest() {
			ack(line) // whole lines only: each is one write(2) to a pipe
		}
		acked[cycle] = n
		t.Logf("cycle %d: victim killed after %v acknowledged writes", cycle, n)

		s.send("write %d", cycle)
		s.expect("ok")
		s.send("check %d %s", cycle, strings.Trim(fmt.Sprint(n), "[]"))
		s.expect("ok")
	}

	// checkAll checks the writes of every cycle in c and returns, per cycle
	// and goroutine, whether the write in flight at the kill is there.
	checkAll := func(c *engine.Cache, parentKeys int) (landed [mpKillCycles][mpVictimGoroutines]bool) {
		t.Helper()
		for cycle, n := range acked {
			for g := range mpVictimGoroutines {
				for j := range n[g] {
					wantValue(t, c, mpVictimKey(cycle, g, j), mpVictimValue(cycle, g, j))
				}
				key, want := mpVictimKey(cycle, g, n[g]), mpVictimValue(cycle, g, n[g])
				switch got, err := c.Get([]byte(key)); {
				case err == nil && string(got) == want:
					landed[cycle][g] = true
				case errors.Is(err, engine.ErrNotFound):
				default:
					t.Fatalf("the write in flight at kill %d: %s = %.40q, %v", cycle, key, got, err)
				}
				keys := 0
				if err := c.Scan(fmt.Appendf(nil, "v%d-%d-", cycle, g), func(k, _ []byte) error { keys++; return nil }); err != nil {
					t.Fatal(err)
				}
				wantKeys := n[g]
				if landed[cycle][g] {
					wantKeys++
				}
				if keys != wantKeys {
					t.Fatalf("%d keys of goroutine %d of victim %d, want %d", keys, g, cycle, wantKeys)
				}
			}
			for j := range mpSurvivorKeys {
				k := mpSurvivorKey(cycle, j)
				wantValue(t, c, k, value(k, j, 300))
			}
		}
		for j := range parentKeys {
			k := fmt.Sprintf("p-%04d", j)
			wantValue(t, c, k, value(k, j, 200))
		}
		return landed
	}
	// A cache in this process, opened while the survivor has the directory
	// open: it is not the first opener, and loads what was published.
	c := openCache(t, dir, mpKillOptions())
	landed := checkAll(c, 0)
	for j := range 300 {
		k := fmt.Sprintf("p-%04d", j)
		mustSet(t, c, k, value(k, j, 200))
	}
	checkAll(c, 300)
	mustClose(t, c)
	s.finish()

	c = openCache(t, dir, mpKillOptions())
	if after := checkAll(c, 300); after != landed {
		t.Fatalf("writes in flight at the kills: landed %v before everyone closed, %v after", landed, after)
	}
	if n := c.Stats().Corruptions; n != 0 {
		t.Fatalf("open reported %d corruptions after writers' kills", n)
	}
}

// ---- TestMPExclusive ----

// childMPExclusive opens the directory with Options.Exclusive (saying
// "locked" and ending if that fails with ErrLocked), writes x-000..x-099
// and says "ready"; told "more", writes x-100..x-199 and says "more done".
func childMPExclusive(dir string) int {
	opts := mpOptions()
	opts.Exclusive = true
	c, err := engine.Open(dir, opts)
	if errors.Is(err, engine.ErrLocked) {
		mpSay("locked")
		return 0
	}
	if err != nil {
		return mpFail("open: %v", err)
	}
	write := func(from, to int) error {
		for i := from; i < to; i++ {
			k := fmt.Sprintf("x-%03d", i)
			if err := c.Set([]byte(k), []byte(value(k, i, 100))); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(0, 100); err != nil {
		return mpFail("write: %v", err)
	}
	mpSay("ready")
	for in := bufio.NewScanner(os.Stdin); in.Scan(); {
		if in.Text() != "more" {
			return mpFail("bad line %q", in.Text())
		}
		if err := write(100, 200); err != nil {
			return mpFail("write: %v", err)
		}
		mpSay("more done")
	}
	return mpClose(c)
}

// TestMPExclusive: while a process has the directory open with
// Options.Exclusive, a read-write Open fails with ErrLocked, and a ReadOnly
// one works and sees that process's writes; and an Exclusive Open fails
// while another process has the directory open.
func TestMPExclusive(t *testing.T) {
	dir := t.TempDir()
	x := startMP(t, "exclusive", "mp-exclusive", dir)
	x.expect("ready")
	if c, err := engine.Open(dir, mpOptions()); !errors.Is(err, engine.ErrLocked) {
		if err == nil {
			c.Close()
		}
		t.Fatalf("read-write Open while another process has it Exclusive: %v, want ErrLocked", err)
	}
	ro := openCache(t, dir, engine.Options{SegmentSize: 64 << 10, ReadOnly: true})
	model := map[string]string{}
	for i := range 100 {
		k := fmt.Sprintf("x-%03d", i)
		model[k] = value(k, i, 100)
	}
	checkModel(t, ro, model)
	x.send("more")
	x.expect("more done")
	for i := 100; i < 200; i++ {
		k := fmt.Sprintf("x-%03d", i)
		model[k] = value(k, i, 100)
	}
	checkModel(t, ro, model)
	x.finish()

	c := openCache(t, dir, mpOptions())
	checkModel(t, c, model)
	y := startMP(t, "second exclusive", "mp-exclusive", dir)
	y.expect("locked")
	y.finish()
}
