package inspect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
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
