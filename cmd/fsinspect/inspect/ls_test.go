package inspect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/engine"
)

// TestLs runs testdata/script/ls.txtar.
func TestLs(t *testing.T) { runScript(t, "ls") }

// TestLsListsEveryKey checks ls against the engine's own listing on more
// keys than one table flush holds, that --json carries keys that are not
// UTF-8 in hex as well, and that a value in a sidecar file is listed with
// its file and the file's size.
func TestLsListsEveryKey(t *testing.T) {
	dir := testDir(t, fillOptions{n: 3*tableFlushRows + 7, valueSize: 10, expired: 3, deleted: 5})
	binKey := []byte{0xff, 0x00, 'k', '\t'}
	c, err := engine.Open(dir, engine.Options{ManualCompaction: true}) // the listing must not move meanwhile
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(binKey, []byte("v")); err != nil {
		t.Fatal(err)
	}
	sideKey := []byte("sidecar-key")
	if err := c.SetReader(sideKey, bytes.NewReader(make([]byte, 5000))); err != nil {
		t.Fatal(err)
	}
	var want []engine.KeyInfo
	c.Keys(nil, func(k engine.KeyInfo) error { want = append(want, k); return nil })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	var got []lsEntry
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "ls", "--json", dir).stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ls --json lists %d keys, the engine %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		key := []byte(g.Key)
		if g.KeyHex != "" {
			key, _ = hex.DecodeString(g.KeyHex)
		}
		if !bytes.Equal(key, w.Key) || g.Segment != w.Segment || g.Offset != w.Offset || g.Size != w.Size ||
			g.Kind != w.Kind || g.Expired != w.Expired {
			t.Errorf("key %d: ls %+v, engine %+v", i, g, w)
		}
		if isSide := bytes.Equal(key, sideKey); (g.Sidecar != nil) != isSide || g.SidecarError != "" ||
			(isSide && (g.Sidecar.Size != 5000 || g.Kind != "put-sidecar")) {
			t.Errorf("key %q: sidecar %+v, error %q", key, g.Sidecar, g.SidecarError)
		}
	}
	if last := got[len(got)-1]; last.KeyHex != hex.EncodeToString(binKey) {
		t.Errorf("binary key listed as %+v", last)
	}

	lines := strings.Split(strings.TrimSuffix(mustRun(t, exitOK, "ls", dir).stdout, "\n"), "\n")
	if len(lines) != len(want)+1 {
		t.Errorf("ls prints %d lines, want a head and %d keys", len(lines), len(want))
	}
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, ` "\xff\x00k\t"`) {
		t.Errorf("binary key printed as %q", last)
	}
	side := regexp.MustCompile(`(?m)^\d+ +\d+ +4\.9 KiB +put-sidecar +never +[0-9a-f]{32} +"sidecar-key"$`)
	if !side.MatchString(strings.Join(lines, "\n")) {
		t.Errorf("no line for the sidecar key, with the file's size and name, in\n%s", lines[len(lines)-2])
	}

	// --limit counts keys after --prefix.
	var some []lsEntry
	out := mustRun(t, exitOK, "ls", "--json", "--prefix", "key-01", "--limit", "4", filepath.Clean(dir)).stdout
	if err := json.Unmarshal([]byte(out), &some); err != nil {
		t.Fatal(err)
	}
	if len(some) != 4 || some[0].Key != "key-0100" || some[3].Key != "key-0103" {
		t.Errorf("--prefix key-01 --limit 4 listed %+v", some)
	}
}
