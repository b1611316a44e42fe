package inspect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

// TestGet runs testdata/script/get.txtar.
func TestGet(t *testing.T) { runScript(t, "get") }

// TestGetBinary checks that get writes a value byte for byte, whatever its
// bytes, and finds a key that is not text through --key-hex.
func TestGetBinary(t *testing.T) {
	dir := testDir(t, fillOptions{n: 3})
	key := []byte{0, 1, 0xfe, '\n'}
	value := make([]byte, 3000)
	for i := range value {
		value[i] = byte(i * 7)
	}
	// Stored raw, so that --meta's record size is header, key and value.
	c, err := engine.Open(dir, engine.Options{Compression: engine.CompressNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(key, value); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	r := mustRun(t, exitOK, "get", "--key-hex", dir, hex.EncodeToString(key))
	if !bytes.Equal([]byte(r.stdout), value) || r.stderr != "" {
		t.Errorf("get wrote %d bytes (stderr %q), want the %d stored", len(r.stdout), r.stderr, len(value))
	}
	var v getValue
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "get", "--json", "--key-hex", dir, hex.EncodeToString(key)).stdout), &v); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.Value, value) || v.KeyHex != hex.EncodeToString(key) {
		t.Errorf("get --json: key %q (hex %s), %d value bytes", v.Key, v.KeyHex, len(v.Value))
	}
	var m getMeta
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "get", "--meta", "--json", "--key-hex", dir, hex.EncodeToString(key)).stdout), &m); err != nil {
		t.Fatal(err)
	}
	if m.Size != int64(segment.RecordHeaderSize+len(key)+len(value)) || m.Kind != "put" || m.Expired {
		t.Errorf("get --meta: %+v", m)
	}
}

// TestGetSidecar checks that get streams a value kept in a sidecar file, one
// larger than any buffer on the way, byte for byte, and that it fails with
// exit status 1 on a file that a reader must refuse.
func TestGetSidecar(t *testing.T) {
	dir := testDir(t, fillOptions{n: 3})
	value := make([]byte, 3<<20+5)
	for i := range value {
		value[i] = byte(i * 13 >> 3)
	}
	c, err := engine.Open(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetReader([]byte("big"), bytes.NewReader(value)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	r := mustRun(t, exitOK, "get", dir, "big")
	if !bytes.Equal([]byte(r.stdout), value) || r.stderr != "" {
		t.Errorf("get wrote %d bytes (stderr %q), want the %d stored", len(r.stdout), r.stderr, len(value))
	}
	var v getValue
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "get", "--json", dir, "big").stdout), &v); err != nil || !bytes.Equal(v.Value, value) {
		t.Errorf("get --json: %d value bytes, %v", len(v.Value), err)
	}
	var m getMeta
	if err := json.Unmarshal([]byte(mustRun(t, exitOK, "get", "--meta", "--json", dir, "big").stdout), &m); err != nil {
		t.Fatal(err)
	}
	if m.Kind != "put-sidecar" || m.Size != int64(segment.RecordHeaderSize+len("big")+segment.SidecarLen) || m.Sidecar == nil ||
		m.Sidecar.Size != int64(len(value)) || !m.Sidecar.Hashed || m.Sidecar.File != "sidecars/"+m.Sidecar.Name || m.SidecarError != "" {
		t.Errorf("get --meta: %+v, sidecar %+v", m, m.Sidecar)
	}

	// A flipped byte is found once the value is read to its end, after it
	// was written out; a file of another size, or none, before.
	path := sidecarPath(t, dir, "big")
	if err := flipByte(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	r = mustRun(t, exitFailed, "get", dir, "big")
	if len(r.stdout) != len(value) || !strings.Contains(r.stderr, "checksum mismatch") {
		t.Errorf("get of a damaged sidecar: %d bytes out, stderr %q", len(r.stdout), r.stderr)
	}
	if r := mustRun(t, exitFailed, "get", "--json", dir, "big"); r.stdout != "" || !strings.Contains(r.stderr, "checksum mismatch") {
		t.Errorf("get --json of a damaged sidecar: %d bytes out, stderr %q", len(r.stdout), r.stderr)
	}
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, exitFailed, "get", dir, "big"); r.stdout != "" || !strings.Contains(r.stderr, "100 bytes, its record says 3145733") {
		t.Errorf("get of a truncated sidecar: %d bytes out, stderr %q", len(r.stdout), r.stderr)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, exitFailed, "get", dir, "big"); r.stdout != "" || !strings.Contains(r.stderr, "is missing") {
		t.Errorf("get of a missing sidecar: %d bytes out, stderr %q", len(r.stdout), r.stderr)
	}
	// --meta still describes the record.
	if r := mustRun(t, exitOK, "get", "--meta", dir, "big"); !hasRow(r.stdout, "sidecar", "sidecars/"+filepath.Base(path)+", 3145733 bytes, "+
		"xxhash64 "+m.Sidecar.Sum) {
		t.Errorf("get --meta of a missing sidecar:\n%s", r.stdout)
	}
}
