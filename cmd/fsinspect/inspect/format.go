package inspect

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// formatSize prints a byte count for people: "512 B", "1.5 KiB", "64.0 MiB".
func formatSize(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for ; (v >= unit || v <= -unit) && i < 4; i++ {
		v /= unit
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// formatDuration prints a duration for people, to three or four
// significant digits: "83µs", "3.21ms", "1.523s".
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		d = d.Round(time.Millisecond)
	case d >= time.Millisecond:
		d = d.Round(10 * time.Microsecond)
	default:
		d = d.Round(time.Microsecond)
	}
	return d.String()
}

// formatPercent prints part/whole as a percentage, "-" when whole is 0.
func formatPercent(part, whole int64) string {
	if whole <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
}

// timeLayout is the format of times in tables: UTC, to the second, so that
// output does not depend on the machine's time zone.
const timeLayout = "2006-01-02T15:04:05Z"

// formatExpiry prints an expiry time for a table.
func formatExpiry(t time.Time, expired bool) string {
	switch {
	case t.IsZero():
		return "never"
	case expired:
		return t.UTC().Format(timeLayout) + " (expired)"
	}
	return t.UTC().Format(timeLayout)
}

// formatExpiryNanos is formatExpiry for an expiry in unix nanoseconds as
// records store it (0: never), compared with now.
func formatExpiryNanos(expiry int64, now time.Time) string {
	if expiry == 0 {
		return "never"
	}
	t := time.Unix(0, expiry)
	return formatExpiry(t, !now.Before(t))
}

// formatFreshNanos prints a record's fresh-until time (unix nanoseconds;
// 0: none, the value stays fresh until it expires), marked once it is past.
func formatFreshNanos(fresh int64, now time.Time) string {
	if fresh == 0 {
		return "-"
	}
	t := time.Unix(0, fresh)
	if !now.Before(t) {
		return t.UTC().Format(timeLayout) + " (stale)"
	}
	return t.UTC().Format(timeLayout)
}

// quoteKey prints a key as a Go string literal, so that spaces, tabs and
// bytes that are not text are visible and the table stays aligned. max > 0
// truncates the key to max bytes first, marked by "...".
func quoteKey(key []byte, max int) string {
	if max > 0 && len(key) > max {
		return strconv.Quote(string(key[:max])) + "..."
	}
	return strconv.Quote(string(key))
}

// jsonKey is how JSON output carries a key: as a string, and also in hex
// when its bytes are not valid UTF-8 (which a JSON string cannot hold).
type jsonKey struct {
	Key    string `json:"key"`
	KeyHex string `json:"key_hex,omitempty"`
}

func newJSONKey(key []byte) jsonKey {
	k := jsonKey{Key: string(key)}
	if !utf8.Valid(key) {
		k.KeyHex = hex.EncodeToString(key)
	}
	return k
}

// jsonTime is how JSON output carries an expiry or a fresh-until time:
// RFC 3339 in UTC with nanoseconds, empty when the record has none.
func jsonTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func jsonTimeNanos(expiry int64) string {
	if expiry == 0 {
		return ""
	}
	return jsonTime(time.Unix(0, expiry))
}

// writeJSON prints v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonArray streams a JSON array one element at a time, so that a listing
// of any length is never held in memory. indent is the indentation of the
// array's opening line.
type jsonArray struct {
	w      io.Writer
	indent string
	n      int
}

func (a *jsonArray) add(v any) error {
	b, err := json.MarshalIndent(v, a.indent+"  ", "  ")
	if err != nil {
		return err
	}
	sep := ",\n"
	if a.n == 0 {
		sep = "[\n"
	}
	a.n++
	_, err = fmt.Fprintf(a.w, "%s%s  %s", sep, a.indent, b)
	return err
}

// close ends the array, without a newline.
func (a *jsonArray) close() error {
	var err error
	if a.n == 0 {
		_, err = io.WriteString(a.w, "[]")
	} else {
		_, err = fmt.Fprintf(a.w, "\n%s]", a.indent)
	}
	return err
}

// newTable returns a tabwriter for aligned columns separated by two spaces.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// tableFlushRows is how many rows a streaming table (ls) buffers before it
// flushes: enough for columns to line up on a screen, few enough that a
// listing of millions of keys takes no memory.
const tableFlushRows = 512

// row writes one table row.
func row(w io.Writer, cells ...string) {
	io.WriteString(w, strings.Join(cells, "\t")+"\n")
}

// hexDump writes b, which starts at file offset base, sixteen bytes a line
// with file offsets, as hexdump -C does. max > 0 stops after max bytes and
// says how many were left out.
func hexDump(w io.Writer, b []byte, base int64, max int) {
	rest := 0
	if max > 0 && len(b) > max {
		b, rest = b[:max], len(b)-max
	}
	var line strings.Builder
	for i := 0; i < len(b); i += 16 {
		chunk := b[i:min(i+16, len(b))]
		line.Reset()
		fmt.Fprintf(&line, "    %08x ", base+int64(i))
		for j := range 16 {
			if j == 8 {
				line.WriteByte(' ')
			}
			if j < len(chunk) {
				fmt.Fprintf(&line, " %02x", chunk[j])
			} else {
				line.WriteString("   ")
			}
		}
		line.WriteString("  |")
		for _, c := range chunk {
			if c < 0x20 || c > 0x7e {
				c = '.'
			}
			line.WriteByte(c)
		}
		line.WriteString("|\n")
		io.WriteString(w, line.String())
	}
	if rest > 0 {
		fmt.Fprintf(w, "    ... %d more bytes (--hex-max)\n", rest)
	}
}
