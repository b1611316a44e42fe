package inspect

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"

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

With --meta, get prints the key's record instead of its value: its segment,
offset, size on disk, kind and expiry; an expired key still has one. A key
that starts with a dash goes after "--": fsinspect get DIR -- -key.`,
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
	if !meta {
		v, err := c.Get(key)
		if err != nil {
			return describeGetError(key, err)
		}
		if e.json {
			return writeJSON(e.stdout, getValue{jsonKey: newJSONKey(key), Value: v})
		}
		_, err = e.stdout.Write(v)
		return err
	}
	k, err := c.Stat(key)
	if err != nil {
		return describeGetError(key, err)
	}
	m := getMeta{
		jsonKey: newJSONKey(key), Kind: k.Kind, Segment: k.Segment, File: segment.FileName(k.Segment),
		Offset: k.Offset, Size: k.Size, Expiry: jsonTime(k.Expiry), Expired: k.Expired,
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
