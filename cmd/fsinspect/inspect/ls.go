package inspect

import (
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/kennel-cache/kennel/engine"
)

var lsCmd = &command{
	name:    "ls",
	args:    "DIR",
	summary: "list keys with their size, expiry, kind and segment",
	help: `
Ls lists the keys of the cache directory DIR in key order, expired ones
included (marked so), each with the segment and offset of its record, the
record's size on disk, its kind and its expiry. Keys are printed quoted, so
that spaces and bytes that are not text show.`,
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
		row(tw, "SEGMENT", "OFFSET", "SIZE", "KIND", "EXPIRY", "KEY")
	}
	err = c.Keys(prefix, func(k engine.KeyInfo) error {
		if limit > 0 && n == limit {
			return errLimit
		}
		n++
		if arr != nil {
			return arr.add(lsEntry{
				jsonKey: newJSONKey(k.Key), Segment: k.Segment, Offset: k.Offset, Size: k.Size,
				Kind: k.Kind, Expiry: jsonTime(k.Expiry), Expired: k.Expired,
			})
		}
		row(tw, fmt.Sprint(k.Segment), fmt.Sprint(k.Offset), formatSize(k.Size), k.Kind,
			formatExpiry(k.Expiry, k.Expired), quoteKey(k.Key, 0))
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
