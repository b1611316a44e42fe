package sharedstate

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// Cross-process tests re-execute the test binary. TestMain reads the role
// from the environment and runs the child instead of the tests; the child's
// command line also names the test that started it, so that a child started
// without a role runs nothing but that test.
const (
	envRole  = "KENNEL_SHAREDSTATE_ROLE"
	envPath  = "KENNEL_SHAREDSTATE_PATH"
	envCount = "KENNEL_SHAREDSTATE_COUNT" // role "seqs": how many TakeSeqs(1)
	envPos   = "KENNEL_SHAREDSTATE_POS"   // the position to publish (role "publish") or to wait for ("seqs")
)

const (
	roleSeqs    = "seqs"    // print "ready", wait for the position, take sequence numbers, print them one a line
	rolePublish = "publish" // publish a position, set writing, bump the generation, print "done"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		if err := runChild(role); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(role string) error {
	s, err := Open(os.Getenv(envPath), 0o600, false)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		return err
	}
	pos, err := strconv.ParseUint(os.Getenv(envPos), 10, 64)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	switch role {
	case roleSeqs:
		n, err := strconv.Atoi(os.Getenv(envCount))
		if err != nil {
			return err
		}
		fmt.Println("ready")
		// Spin until the parent, having seen every child ready, publishes
		// pos: the children start within a few nanoseconds of each other
		// and their loops overlap as much as the machine lets them.
		deadline := time.Now().Add(time.Minute)
		for s.Position() != Position(pos) {
			if time.Now().After(deadline) {
				return fmt.Errorf("position %v never published", Position(pos))
			}
			runtime.Gosched()
		}
		got := make([]uint64, n)
		for i := range got {
			got[i] = s.TakeSeqs(1)
		}
		for _, v := range got {
			fmt.Fprintln(out, v)
		}
	case rolePublish:
		s.Publish(Position(pos))
		s.SetWriting(true)
		s.BumpGeneration()
		fmt.Fprintln(out, "done")
	default:
		return fmt.Errorf("unknown role")
	}
	return out.Flush()
}

// startChild starts the test binary in role with the given extra
// environment. Its stdout is a pipe for the caller; its stderr is collected
// in the buffer, to be read after Wait.
func startChild(ctx context.Context, t *testing.T, test, role, path string, env ...string) (*exec.Cmd, io.ReadCloser, *bytes.Buffer) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), envRole+"="+role, envPath+"="+path,
		// A race-enabled child would otherwise sleep a second before exiting.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Env = append(cmd.Env, env...)
	stderr := new(bytes.Buffer)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout, stderr
}

// newFile opens a new read-write state file in a temporary directory.
func newFile(t *testing.T) (*File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state")
	s, err := Open(path, 0o600, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// validBytes returns the bytes of a freshly initialised state file.
func validBytes(tb testing.TB) []byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "state")
	s, err := Open(path, 0o600, false)
	if err != nil {
		tb.Fatal(err)
	}
	s.Init(MakePosition(7, 4096), 1000, 8)
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustSnapshot(t *testing.T, s *File) Header {
	t.Helper()
	h, err := s.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return h
}

func TestOpenCreates(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	for _, perm := range []os.FileMode{0o600, 0o640, 0o604} {
		path := filepath.Join(t.TempDir(), "state")
		s, err := Open(path, perm, false)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != Size {
			t.Errorf("perm %v: size %d, want %d", perm, fi.Size(), Size)
		}
		if got := fi.Mode().Perm(); got != perm {
			t.Errorf("created with %v (umask 022): mode %v", perm, got)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !allZero(b) {
			t.Errorf("perm %v: a new file is not zero-filled", perm)
		}
		s.Close()

		// An existing file keeps its mode.
		s, err = Open(path, 0o666, false)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != perm {
			t.Errorf("reopening changed the mode: %v, %v", fi.Mode(), err)
		}
	}
}

func TestOpenExtendsShortFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	prefix := []byte("kenn")
	if err := os.WriteFile(path, prefix, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, 0o600, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != Size || !bytes.Equal(b[:len(prefix)], prefix) || !allZero(b[len(prefix):]) {
		t.Fatalf("short file extended to %d bytes starting %q", len(b), b[:min(len(b), 8)])
	}
	// "kenn" is neither a magic nor zero.
	if err := s.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check = %v, want ErrCorrupt", err)
	}
}

func TestOpenLongFileNotShrunk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(path, make([]byte, 2*Size), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		s, err := Open(path, 0o600, ro)
		if err != nil {
			t.Fatalf("readOnly %v: %v", ro, err)
		}
		s.Close()
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 2*Size {
		t.Fatalf("file after Open: %v, %v", fi.Size(), err)
	}
}

func TestOpenRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, validBytes(t), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{link, fifo, sub} {
		for _, ro := range []bool{false, true} {
			done := make(chan error, 1)
			go func() {
				s, err := Open(path, 0o600, ro)
				if err == nil {
					s.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("Open(%s, readOnly %v) succeeded", filepath.Base(path), ro)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Open(%s, readOnly %v) blocks", filepath.Base(path), ro)
			}
		}
	}
}

func TestOpenReadOnlyMissingOrShort(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if _, err := Open(missing, 0o600, true); !errors.Is(err, ErrUninitialized) {
		t.Errorf("read-only Open of a missing file: %v, want ErrUninitialized", err)
	}
	if _, err := os.Lstat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only Open created the file: %v", err)
	}
	for _, n := range []int{0, 1, 100, Size - 1} {
		path := filepath.Join(dir, fmt.Sprint("short", n))
		// Non-zero content: a short file is uninitialised whatever it holds,
		// since a read-write opener extends it before writing the header.
		if err := os.WriteFile(path, validBytes(t)[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, 0o600, true); !errors.Is(err, ErrUninitialized) {
			t.Errorf("read-only Open of a %d-byte file: %v, want ErrUninitialized", n, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != int64(n) {
			t.Errorf("read-only Open changed a %d-byte file: %v", n, err)
		}
	}
}

func TestFreshFileUninitialized(t *testing.T) {
	s, _ := newFile(t)
	if err := s.Check(); !errors.Is(err, ErrUninitialized) {
		t.Fatalf("Check on a fresh file = %v, want ErrUninitialized", err)
	}
	if _, err := s.Snapshot(); !errors.Is(err, ErrUninitialized) {
		t.Fatalf("Snapshot of a fresh file = %v, want ErrUninitialized", err)
	}
}

func TestInitThenCheck(t *testing.T) {
	s, path := newFile(t)
	pos := MakePosition(3, 12345)
	s.Init(pos, 100, 4)
	if err := s.Check(); err != nil {
		t.Fatalf("Check after Init: %v", err)
	}
	want := Header{Version: Version, Position: pos, Generation: 1, NextSeq: 100, NextSegID: 4}
	if h := mustSnapshot(t, s); h != want {
		t.Fatalf("Snapshot after Init = %+v, want %+v", h, want)
	}
	// A second read-write mapping, as another opener would have, agrees.
	s2, err := Open(path, 0o600, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Check(); err != nil {
		t.Fatalf("Check through a second mapping: %v", err)
	}
	if h := mustSnapshot(t, s2); h != want {
		t.Fatalf("second mapping's Snapshot = %+v, want %+v", h, want)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s, path := newFile(t)
	s.Init(MakePosition(1, 32), 10, 2)
	s.Publish(MakePosition(math.MaxUint32, math.MaxUint32-1))
	s.BumpGeneration()
	s.TakeSeqs(5)
	s.TakeSegmentID()
	s.SetWriting(true)
	s.SetFailedSync(1<<63 + 5)
	s.SetCompacting(true)
	want := Header{
		Version:    Version,
		Position:   MakePosition(math.MaxUint32, math.MaxUint32-1),
		Generation: 2,
		NextSeq:    15,
		NextSegID:  3,
		Writing:    true,
		FailedSync: 1<<63 + 5,
		Compacting: true,
	}
	if h := mustSnapshot(t, s); h != want {
		t.Fatalf("Snapshot = %+v, want %+v", h, want)
	}
	// The file's bytes, read through the page cache the mapping shares,
	// decode to the same header: Snapshot copies, the file is the truth.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Decode(b)
	if err != nil || h != want {
		t.Fatalf("Decode(file) = %+v, %v; want %+v", h, err, want)
	}
	// Field by field, at the offsets the layout comment gives.
	le := binary.LittleEndian
	for _, f := range []struct {
		name string
		off  int
		want uint64
	}{
		{"position", 64, uint64(want.Position)},
		{"generation", 72, want.Generation},
		{"next seq", 128, want.NextSeq},
		{"next segment id", 136, want.NextSegID},
		{"writing", 144, 1},
		{"failed sync", 152, want.FailedSync},
	} {
		if got := le.Uint64(b[f.off:]); got != f.want {
			t.Errorf("%s at %d = %d, want %d", f.name, f.off, got, f.want)
		}
	}
	if string(b[:8]) != "kennelSF" || le.Uint32(b[8:]) != Version || le.Uint32(b[12:]) != Size ||
		le.Uint64(b[16:]) != xxhash.Sum64(b[:16]) {
		t.Errorf("header bytes % x", b[:24])
	}

	// Init starts over: flags cleared, counters as given, generation bumped.
	s.Init(MakePosition(9, 36), 7, 10)
	want = Header{Version: Version, Position: MakePosition(9, 36), Generation: 3, NextSeq: 7, NextSegID: 10}
	if h := mustSnapshot(t, s); h != want {
		t.Fatalf("Snapshot after a second Init = %+v, want %+v", h, want)
	}
}

func TestPosition(t *testing.T) {
	const m = math.MaxUint32
	for _, c := range []struct {
		seg, end uint32
		word     uint64
		str      string
	}{
		{0, 0, 0, "0:0"},
		{1, 2, 1<<32 | 2, "1:2"},
		{0, m, m, "0:4294967295"},
		{m, 0, m << 32, "4294967295:0"},
		{m, m, math.MaxUint64, "4294967295:4294967295"},
		{1 << 31, 1 << 31, 1<<63 | 1<<31, "2147483648:2147483648"},
	} {
		p := MakePosition(c.seg, c.end)
		if p.Segment() != c.seg || p.End() != c.end || uint64(p) != c.word || p.String() != c.str {
			t.Errorf("MakePosition(%d, %d) = %#x (%d, %d, %q), want %#x %q",
				c.seg, c.end, uint64(p), p.Segment(), p.End(), p.String(), c.word, c.str)
		}
		if q := Position(c.word); q.Segment() != c.seg || q.End() != c.end {
			t.Errorf("Position(%#x) unpacks to %d, %d", c.word, q.Segment(), q.End())
		}
	}

	s, _ := newFile(t)
	s.Init(0, 0, 0)
	for _, p := range []Position{MakePosition(m, m), MakePosition(m, 0), MakePosition(0, m), 0} {
		s.Publish(p)
		if got := s.Position(); got != p {
			t.Errorf("Publish(%v) then Position() = %v", p, got)
		}
	}
}

func TestTakeSeqs(t *testing.T) {
	s, _ := newFile(t)
	s.Init(0, 50, 1)
	if got := s.TakeSeqs(1); got != 50 {
		t.Fatalf("first TakeSeqs(1) = %d, want 50", got)
	}
	if got := s.TakeSeqs(10); got != 51 {
		t.Fatalf("TakeSeqs(10) = %d, want 51", got)
	}
	if got := s.TakeSeqs(0); got != 61 {
		t.Fatalf("TakeSeqs(0) = %d, want 61", got)
	}
	if got := s.TakeSeqs(1); got != 61 {
		t.Fatalf("TakeSeqs(1) after TakeSeqs(0) = %d, want 61 (0 reserves nothing)", got)
	}
	if h := mustSnapshot(t, s); h.NextSeq != 62 {
		t.Fatalf("next sequence number %d, want 62", h.NextSeq)
	}
}

func TestTakeSeqsConcurrent(t *testing.T) {
	s, _ := newFile(t)
	const start, goroutines, per = 1 << 40, 16, 2000
	s.Init(0, start, 1)
	type span struct{ first, n uint64 }
	got := make([][]span, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			n := uint64(g%4 + 1) // spans of 1 to 4 numbers
			for range per {
				got[g] = append(got[g], span{s.TakeSeqs(n), n})
			}
		})
	}
	wg.Wait()

	var all []span
	var total uint64
	for g, spans := range got {
		for i := 1; i < len(spans); i++ {
			if spans[i].first <= spans[i-1].first {
				t.Fatalf("goroutine %d: TakeSeqs went from %d to %d", g, spans[i-1].first, spans[i].first)
			}
		}
		all = append(all, spans...)
		for _, sp := range spans {
			total += sp.n
		}
	}
	// Sorted by first number, the spans must tile [start, start+total)
	// exactly: no number given twice, none skipped.
	slices.SortFunc(all, func(a, b span) int { return cmp.Compare(a.first, b.first) })
	next := uint64(start)
	for _, sp := range all {
		if sp.first != next {
			t.Fatalf("span [%d, +%d) where %d was expected next", sp.first, sp.n, next)
		}
		next += sp.n
	}
	if next != start+total {
		t.Fatalf("spans end at %d, want %d", next, start+total)
	}
	if h := mustSnapshot(t, s); h.NextSeq != start+total {
		t.Fatalf("next sequence number %d, want %d", h.NextSeq, start+total)
	}
}

func TestTakeSegmentIDConcurrent(t *testing.T) {
	s, _ := newFile(t)
	const start, goroutines, per = 5, 16, 1000
	s.Init(0, 0, start)
	got := make([][]uint64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range per {
				got[g] = append(got[g], s.TakeSegmentID())
			}
		})
	}
	wg.Wait()
	var all []uint64
	for g, ids := range got {
		if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Fatalf("goroutine %d: ids not strictly increasing", g)
		}
		all = append(all, ids...)
	}
	slices.Sort(all)
	for i, id := range all {
		if id != start+uint64(i) {
			t.Fatalf("sorted ids: [%d] = %d, want %d (a duplicate or a gap)", i, id, start+uint64(i))
		}
	}
	if h := mustSnapshot(t, s); h.NextSegID != start+goroutines*per {
		t.Fatalf("next segment id %d, want %d", h.NextSegID, start+goroutines*per)
	}
}

func TestWritingAndFailedSync(t *testing.T) {
	s, _ := newFile(t)
	s.Init(0, 0, 0)
	if s.Writing() || s.FailedSync() != 0 {
		t.Fatalf("after Init: Writing %v, FailedSync %d", s.Writing(), s.FailedSync())
	}
	s.SetWriting(true)
	if !s.Writing() || !mustSnapshot(t, s).Writing {
		t.Fatal("SetWriting(true) not seen")
	}
	s.SetWriting(false)
	if s.Writing() || mustSnapshot(t, s).Writing {
		t.Fatal("SetWriting(false) not seen")
	}
	for _, id := range []uint64{1, 42, math.MaxUint64, 0} {
		s.SetFailedSync(id)
		if s.FailedSync() != id || mustSnapshot(t, s).FailedSync != id {
			t.Fatalf("SetFailedSync(%d): FailedSync %d", id, s.FailedSync())
		}
	}
	s.SetCompacting(true)
	if !s.Compacting() || !mustSnapshot(t, s).Compacting {
		t.Fatal("SetCompacting(true) not seen")
	}
	s.SetWriting(true)
	s.SetFailedSync(9)
	s.Init(0, 0, 0)
	if s.Writing() || s.FailedSync() != 0 || s.Compacting() {
		t.Fatalf("Init kept Writing %v, FailedSync %d, Compacting %v", s.Writing(), s.FailedSync(), s.Compacting())
	}
}

func TestGeneration(t *testing.T) {
	s, path := newFile(t)
	if g := s.Generation(); g != 0 {
		t.Fatalf("fresh generation %d", g)
	}
	s.Init(0, 0, 0)
	if g := s.Generation(); g != 1 {
		t.Fatalf("generation after Init %d, want 1", g)
	}
	ro, err := Open(path, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	s.BumpGeneration()
	if g, gro := s.Generation(), ro.Generation(); g != 2 || gro != 2 {
		t.Fatalf("after BumpGeneration: %d, read-only mapping %d; want 2", g, gro)
	}
	// Init never lowers the generation: a reader that knew the old one must
	// see a different one.
	s.Init(MakePosition(5, 5), 0, 0)
	if g, gro := s.Generation(), ro.Generation(); g != 3 || gro != 3 {
		t.Fatalf("after a second Init: %d, read-only mapping %d; want 3", g, gro)
	}
}

func TestReadOnlySeesLaterStores(t *testing.T) {
	s, path := newFile(t)
	s.Init(MakePosition(1, 32), 1, 2)
	ro, err := Open(path, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Check(); err != nil {
		t.Fatalf("read-only Check: %v", err)
	}
	for i := range uint32(100) {
		p := MakePosition(1+i/10, 32+i*100)
		s.Publish(p)
		if got := ro.Position(); got != p {
			t.Fatalf("read-only mapping sees %v after Publish(%v)", got, p)
		}
	}
	s.SetWriting(true)
	s.SetFailedSync(77)
	s.BumpGeneration()
	s.TakeSeqs(3)
	s.TakeSegmentID()
	if !ro.Writing() || ro.FailedSync() != 77 || ro.Generation() != 2 {
		t.Fatalf("read-only mapping: Writing %v, FailedSync %d, Generation %d", ro.Writing(), ro.FailedSync(), ro.Generation())
	}
	if a, b := mustSnapshot(t, s), mustSnapshot(t, ro); a != b {
		t.Fatalf("snapshots differ: read-write %+v, read-only %+v", a, b)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	s, path := newFile(t)
	s.Init(0, 0, 0)
	ro, err := Open(path, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for name, write := range map[string]func(){
		"Init":           func() { ro.Init(0, 0, 0) },
		"Publish":        func() { ro.Publish(1) },
		"BumpGeneration": func() { ro.BumpGeneration() },
		"TakeSeqs":       func() { ro.TakeSeqs(1) },
		"TakeSegmentID":  func() { ro.TakeSegmentID() },
		"SetWriting":     func() { ro.SetWriting(true) },
		"SetFailedSync":  func() { ro.SetFailedSync(1) },
		"SetCompacting":  func() { ro.SetCompacting(true) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s on a read-only mapping did not panic", name)
				}
			}()
			write()
		}()
	}
	if h := mustSnapshot(t, s); h != (Header{Version: Version, Generation: 1}) {
		t.Fatalf("state changed: %+v", h)
	}
}

// A read-only process may map the file while the first read-write opener
// initialises it. It must see "not initialised yet" or the whole header,
// never a header half written (which would read as a wrong version or a
// corrupt file).
func TestCheckDuringInit(t *testing.T) {
	for i := range 200 {
		s, path := newFile(t)
		ro, err := Open(path, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			<-start
			// Check until the header has been valid 100 times: once
			// valid, it must stay valid.
			valid := 0
			for n := 0; n < 100000 && valid < 100; n++ {
				err := ro.Check()
				switch {
				case err == nil:
					valid++
				case errors.Is(err, ErrUninitialized) && valid == 0:
				default:
					done <- fmt.Errorf("Check during Init (after %d valid): %v", valid, err)
					return
				}
			}
			done <- nil
		}()
		close(start)
		s.Init(MakePosition(1, 32), 1, 2)
		if err := <-done; err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := ro.Check(); err != nil {
			t.Fatalf("round %d: Check after Init: %v", i, err)
		}
		ro.Close()
	}
}

func TestInitRepairsBadHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	b := validBytes(t)
	b[0] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, 0o600, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check = %v, want ErrCorrupt", err)
	}
	gen := s.Generation()
	s.Init(MakePosition(2, 2), 3, 4)
	if err := s.Check(); err != nil {
		t.Fatalf("Check after Init: %v", err)
	}
	want := Header{Version: Version, Position: MakePosition(2, 2), Generation: gen + 1, NextSeq: 3, NextSegID: 4}
	if h := mustSnapshot(t, s); h != want {
		t.Fatalf("Snapshot = %+v, want %+v", h, want)
	}
}

// sentinel returns which of the package's errors err is, checking that it
// is exactly one of them.
func sentinel(t *testing.T, err error) error {
	t.Helper()
	var found error
	for _, e := range []error{ErrUninitialized, ErrCorrupt, ErrVersion} {
		if errors.Is(err, e) {
			if found != nil {
				t.Fatalf("%v is both %v and %v", err, found, e)
			}
			found = e
		}
	}
	return found
}

func TestDecodeErrors(t *testing.T) {
	le := binary.LittleEndian
	valid := validBytes(t)
	edit := func(f func(b []byte)) []byte {
		b := slices.Clone(valid)
		f(b)
		return b
	}
	resum := func(b []byte) { le.PutUint64(b[16:], xxhash.Sum64(b[:16])) }
	zeroMagicOnly := edit(func(b []byte) { clear(b[:8]) })
	garbage := make([]byte, Size)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}

	for _, c := range []struct {
		name string
		b    []byte
		want error // nil: decodes
	}{
		{"valid", valid, nil},
		{"longer than Size", append(slices.Clone(valid), 1, 2, 3), nil},
		{"unchecked field changed", edit(func(b []byte) { b[64] ^= 1; b[200] = 9 }), nil},
		{"bad magic", edit(func(b []byte) { b[7] = 'X' }), ErrCorrupt},
		{"bad magic, checksum redone", edit(func(b []byte) { b[0] = 'K'; resum(b) }), ErrCorrupt},
		{"other version", edit(func(b []byte) { le.PutUint32(b[8:], Version+1) }), ErrVersion},
		{"other version, checksum redone", edit(func(b []byte) { le.PutUint32(b[8:], Version+1); resum(b) }), ErrVersion},
		{"version 0", edit(func(b []byte) { le.PutUint32(b[8:], 0); resum(b) }), ErrVersion},
		{"flipped checksum bit", edit(func(b []byte) { b[20] ^= 0x10 }), ErrCorrupt},
		{"zero checksum", edit(func(b []byte) { clear(b[16:24]) }), ErrCorrupt},
		{"wrong size field", edit(func(b []byte) { le.PutUint32(b[12:], 2*Size) }), ErrCorrupt},
		{"wrong size field, checksum redone", edit(func(b []byte) { le.PutUint32(b[12:], Size-1); resum(b) }), ErrCorrupt},
		{"all zero", make([]byte, Size), ErrUninitialized},
		{"zero header, fields set", edit(func(b []byte) { clear(b[:headerLen]) }), ErrUninitialized},
		{"zero magic, rest of header set", zeroMagicOnly, ErrUninitialized},
		{"nil", nil, ErrUninitialized},
		{"empty", []byte{}, ErrUninitialized},
		{"short zero", make([]byte, 100), ErrUninitialized},
		{"short zero, Size-1", make([]byte, Size-1), ErrUninitialized},
		{"short non-zero", valid[:100], ErrCorrupt},
		{"header only", valid[:headerLen], ErrCorrupt},
		{"one byte short", valid[:Size-1], ErrCorrupt},
		{"one non-zero byte", []byte{0, 0, 1}, ErrCorrupt},
		{"garbage", garbage, ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := Decode(c.b)
			if got := sentinel(t, err); got != c.want || (c.want == nil && err != nil) {
				t.Fatalf("Decode = %v, want %v", err, c.want)
			}
			if err != nil {
				if h != (Header{}) {
					t.Errorf("Decode returned %+v with its error", h)
				}
				if err != c.want && !strings.Contains(err.Error(), c.want.Error()) {
					t.Errorf("error %q does not say %q", err, c.want)
				}
			} else if h.Version != Version {
				t.Errorf("decoded version %d", h.Version)
			}
			if len(c.b) != Size {
				return
			}
			// The live mapping's Check agrees with Decode, read-write and
			// read-only.
			path := filepath.Join(t.TempDir(), "state")
			if err := os.WriteFile(path, c.b, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{false, true} {
				s, err := Open(path, 0o600, ro)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Check(); sentinel(t, err) != c.want {
					t.Errorf("Check (read-only %v) = %v, want %v", ro, err, c.want)
				}
				s.Close()
			}
		})
	}
}

func TestDecodeFields(t *testing.T) {
	b := validBytes(t)
	h, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Version: Version, Position: MakePosition(7, 4096), Generation: 1, NextSeq: 1000, NextSegID: 8}
	if h != want {
		t.Fatalf("Decode = %+v, want %+v", h, want)
	}
	// Writing is any non-zero word, not just 1.
	binary.LittleEndian.PutUint64(b[144:], 1<<40)
	if h, err := Decode(b); err != nil || !h.Writing {
		t.Fatalf("writing word 1<<40: %+v, %v", h, err)
	}
}

// TestCrossProcessTakeSeqs has two processes take sequence numbers from one
// file at the same time: every number is given out once.
func TestCrossProcessTakeSeqs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const children, per, start = 2, 10000, 777
	s, path := newFile(t)
	s.Init(MakePosition(1, 32), start, 2)
	goPos := MakePosition(2, 64)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	type child struct {
		cmd    *exec.Cmd
		out    *bufio.Scanner
		stderr *bytes.Buffer
	}
	var cs []child
	for range children {
		cmd, stdout, stderr := startChild(ctx, t, "TestCrossProcessTakeSeqs", roleSeqs, path,
			envCount+"="+strconv.Itoa(per), envPos+"="+strconv.FormatUint(uint64(goPos), 10))
		c := child{cmd, bufio.NewScanner(stdout), stderr}
		defer func() {
			// Only after a failure is the child still running here.
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}()
		cs = append(cs, c)
	}
	for i, c := range cs {
		if !c.out.Scan() || c.out.Text() != "ready" {
			c.cmd.Process.Kill()
			c.cmd.Wait() // before reading stderr, which Wait finishes writing
			t.Fatalf("child %d did not get ready: %q, %v; stderr:\n%s", i, c.out.Text(), c.out.Err(), c.stderr)
		}
	}
	s.Publish(goPos)

	got := make([][]uint64, children)
	errs := make([]error, children)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			for c.out.Scan() {
				v, err := strconv.ParseUint(c.out.Text(), 10, 64)
				if err != nil {
					errs[i] = err
					break
				}
				got[i] = append(got[i], v)
			}
			if errs[i] == nil {
				errs[i] = c.out.Err()
			}
			if err := c.cmd.Wait(); err != nil && errs[i] == nil {
				errs[i] = fmt.Errorf("%v; stderr:\n%s", err, c.stderr)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
	}

	var all []uint64
	interleaved := false
	for i, vs := range got {
		if len(vs) != per {
			t.Fatalf("child %d printed %d numbers, want %d", i, len(vs), per)
		}
		for j := 1; j < len(vs); j++ {
			if vs[j] <= vs[j-1] {
				t.Fatalf("child %d: TakeSeqs went from %d to %d", i, vs[j-1], vs[j])
			}
			if vs[j] != vs[j-1]+1 {
				interleaved = true
			}
		}
		all = append(all, vs...)
	}
	slices.Sort(all)
	for i, v := range all {
		if v != start+uint64(i) {
			t.Fatalf("sorted numbers: [%d] = %d, want %d (a duplicate or a gap)", i, v, start+uint64(i))
		}
	}
	if h := mustSnapshot(t, s); h.NextSeq != start+children*per {
		t.Fatalf("next sequence number %d, want %d", h.NextSeq, start+children*per)
	}
	// Not an error when the machine ran one child after the other, but then
	// the test proved less.
	t.Logf("the children's numbers interleaved: %v", interleaved)
}

// TestCrossProcessPublish has a child publish a position; the parent, which
// mapped the file before the child started, sees it without reopening.
func TestCrossProcessPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	s, path := newFile(t)
	s.Init(MakePosition(1, 32), 1, 2)
	ro, err := Open(path, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	gen := s.Generation()
	pos := MakePosition(math.MaxUint32-3, 1<<31+12345)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd, stdout, stderr := startChild(ctx, t, "TestCrossProcessPublish", rolePublish, path,
		envPos+"="+strconv.FormatUint(uint64(pos), 10))
	out, err := io.ReadAll(stdout)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil || string(out) != "done\n" {
		t.Fatalf("child: %v, printed %q; stderr:\n%s", err, out, stderr)
	}
	for name, m := range map[string]*File{"read-write": s, "read-only": ro} {
		if got := m.Position(); got != pos {
			t.Errorf("%s mapping: Position() = %v, want %v", name, got, pos)
		}
		if !m.Writing() || m.Generation() != gen+1 {
			t.Errorf("%s mapping: Writing %v, Generation %d (want true, %d)", name, m.Writing(), m.Generation(), gen+1)
		}
	}
}
