package inspect

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

var getCmd = &command{
	name:    "get",
	args:    "DIR KEY",
	summary: "print a value, or with --meta its record",
	help: `
Get writes the value stored under KEY in the cache directory DIR to standard
output, byte for byte, after checking its record (checksum, and that it holds
KEY). A key without a value (never set, deleted or expired) is exit status 1.

A value kept in a sidecar file is streamed from it, however large, once the
file is found to be a regular file of the size its record gives; its
checksum, if it has one, is checked as the bytes go, so damage there is
reported (exit status 1) after the value's bytes were written. --json holds
the whole value in memory, and checks it before printing anything.

With --meta, get prints the key's record instead of its value: its segment,
offset, size on disk, kind and expiry, and for a value in a sidecar file the
file's name, size and checksum; an expired key still has one. A key that
starts with a dash goes after "--": fsinspect get DIR -- -key.`,
	setup: func(e *env, fs *flag.FlagSet) func([]string) error {
		meta := fs.Bool("meta", false, "print the key's record instead of its value")
		keyHex := fs.Bool("key-hex", false, "KEY is hex encoded, for keys that are not text")
		return func(args []string) error {
			key := []byte(args[1])
			if *keyHex {
				var err error
				if key, err = hex.DecodeString(args[1]); err != nil {
					return usageError{fmt.Errorf("--key-hex: %v", err)}
				}
			}
			return runGet(e, args[0], key, *meta)
		}
	},
}

// getMeta is get --meta's JSON output.
type getMeta struct {
	jsonKey
	Kind    string `json:"kind"`
	Segment uint64 `json:"segment"`
	File    string `json:"file"`
	Offset  int64  `json:"offset"`
	Size    int64  `json:"size"`
	Expiry  string `json:"expiry,omitempty"` // RFC 3339; absent: never
	Expired bool   `json:"expired"`
	// For a put-sidecar record: its descriptor, or why it could not be read.
	Sidecar      *sidecarJSON `json:"sidecar,omitempty"`
	SidecarError string       `json:"sidecar_error,omitempty"`
}

// getValue is get --json's output; Value is base64, as JSON carries bytes.
type getValue struct {
	jsonKey
	Value []byte `json:"value"`
}

func runGet(e *env, dir string, key []byte, meta bool) error {
	c, err := openCache(dir)
	if err != nil {
		return err
	}
	defer c.Close()
	switch {
	case meta:
		return printMeta(e, c, dir, key)
	case e.json:
		v, err := c.Get(key)
		if err != nil {
			return describeGetError(key, err)
		}
		return writeJSON(e.stdout, getValue{jsonKey: newJSONKey(key), Value: v})
	}
	// Through a handle, a value in a sidecar file costs a buffer, not its
	// size in memory.
	h, err := c.Open(key)
	if err != nil {
		return describeGetError(key, err)
	}
	defer h.Close()
	_, err = io.Copy(e.stdout, h)
	return err
}

// printMeta prints key's record.
func printMeta(e *env, c *engine.Cache, dir string, key []byte) error {
	k, err := c.Stat(key)
	if err != nil {
		return describeGetError(key, err)
	}
	var side *segment.Sidecar
	var sideErr error
	if k.Kind == segment.KindPutSidecar.String() {
		var d segment.Sidecar
		if d, k, sideErr = sidecarOf(c, dir, k); sideErr == nil {
			side = &d
		}
	}
	m := getMeta{
		jsonKey: newJSONKey(key), Kind: k.Kind, Segment: k.Segment, File: segment.FileName(k.Segment),
		Offset: k.Offset, Size: k.Size, Expiry: jsonTime(k.Expiry), Expired: k.Expired, SidecarError: errString(sideErr),
	}
	if side != nil {
		m.Sidecar = newSidecarJSON(*side)
	}
	if e.json {
		return writeJSON(e.stdout, m)
	}
	tw := newTable(e.stdout)
	row(tw, "key", quoteKey(key, 0))
	row(tw, "kind", m.Kind)
	row(tw, "segment", fmt.Sprintf("%d (%s)", m.Segment, m.File))
	row(tw, "offset", fmt.Sprint(m.Offset))
	row(tw, "size", fmt.Sprintf("%s (%d bytes)", formatSize(m.Size), m.Size))
	row(tw, "expiry", formatExpiry(k.Expiry, k.Expired))
	switch {
	case side != nil:
		row(tw, "sidecar", describeSidecar(*side))
	case sideErr != nil:
		row(tw, "sidecar", fmt.Sprintf("unreadable: %v (run 'fsinspect verify')", sideErr))
	}
	return tw.Flush()
}

// describeGetError names the key in errors that do not, and says what
// "not found" covers.
func describeGetError(key []byte, err error) error {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return fmt.Errorf("key %s not found (never set, deleted, expired or evicted)", quoteKey(key, 0))
	case errors.Is(err, engine.ErrEmptyKey), errors.Is(err, engine.ErrKeyTooLarge):
		return usageError{err}
	}
	return err
}
