package inspect

import (
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/kennel-cache/kennel/engine"
	"github.com/kennel-cache/kennel/segment"
)

var lsCmd = &command{
	name:    "ls",
	args:    "DIR",
	summary: "list keys with their size, expiry, kind, segment and sidecar file",
	help: `
Ls lists the keys of the cache directory DIR in key order, expired ones
included (marked so), each with the segment and offset of its record, its
size, its kind and its expiry. A value kept in a sidecar file (kind
put-sidecar) has the file's name in the SIDECAR column, and its SIZE is the
file's, the value's length: its record, which only names the file, is a few
dozen bytes. Any other key's SIZE is its record's size on disk. In --json,
"size" is always the record's, and "sidecar" describes the file. Keys are
printed quoted, so that spaces and bytes that are not text show.`,
	setup: func(e *env, fs *flag.FlagSet) func([]string) error {
		prefix := fs.String("prefix", "", "list only the keys that start with `P`")
		limit := fs.Int("limit", 0, "stop after `N` keys (0: no limit)")
		return func(args []string) error {
			if *limit < 0 {
				return usageError{fmt.Errorf("--limit %d is negative", *limit)}
			}
			return runLs(e, args[0], []byte(*prefix), *limit)
		}
	},
}

// lsEntry is one key in ls' JSON output.
type lsEntry struct {
	jsonKey
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
	Size    int64  `json:"size"`
	Kind    string `json:"kind"`
	Expiry  string `json:"expiry,omitempty"` // RFC 3339; absent: never
	Expired bool   `json:"expired"`
	// For a put-sidecar record: its descriptor, or why it could not be read.
	Sidecar      *sidecarJSON `json:"sidecar,omitempty"`
	SidecarError string       `json:"sidecar_error,omitempty"`
}

// errLimit stops the walk over the keys at --limit.
var errLimit = errors.New("limit reached")

func runLs(e *env, dir string, prefix []byte, limit int) error {
	c, err := openCache(dir)
	if err != nil {
		return err
	}
	defer c.Close()

	var (
		n   int
		tw  *tabwriter.Writer
		arr *jsonArray
	)
	if e.json {
		arr = &jsonArray{w: e.stdout}
	} else {
		tw = newTable(e.stdout)
		row(tw, "SEGMENT", "OFFSET", "SIZE", "KIND", "EXPIRY", "SIDECAR", "KEY")
	}
	err = c.Keys(prefix, func(k engine.KeyInfo) error {
		if limit > 0 && n == limit {
			return errLimit
		}
		n++
		var (
			side    *segment.Sidecar
			sideErr error
		)
		if k.Kind == segment.KindPutSidecar.String() {
			var d segment.Sidecar
			if d, k, sideErr = sidecarOf(c, dir, k); sideErr == nil {
				side = &d
			}
		}
		if arr != nil {
			ent := lsEntry{
				jsonKey: newJSONKey(k.Key), Segment: k.Segment, Offset: k.Offset, Size: k.Size,
				Kind: k.Kind, Expiry: jsonTime(k.Expiry), Expired: k.Expired, SidecarError: errString(sideErr),
			}
			if side != nil {
				ent.Sidecar = newSidecarJSON(*side)
			}
			return arr.add(ent)
		}
		size, name := formatSize(k.Size), "-"
		switch {
		case side != nil:
			size, name = formatSize(side.Size), side.Name.String()
		case sideErr != nil:
			size, name = "?", "? (run 'fsinspect verify')"
		}
		row(tw, fmt.Sprint(k.Segment), fmt.Sprint(k.Offset), size, k.Kind,
			formatExpiry(k.Expiry, k.Expired), name, quoteKey(k.Key, 0))
		if n%tableFlushRows == 0 {
			return tw.Flush()
		}
		return nil
	})
	if errors.Is(err, errLimit) {
		err = nil
	}
	if arr != nil {
		if cerr := arr.close(); err == nil {
			err = cerr
		}
		fmt.Fprintln(e.stdout)
		return err
	}
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	return err
}
