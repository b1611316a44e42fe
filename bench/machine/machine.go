// Package machine measures the physical limits the store benchmarks run
// against, so that a reader can tell a slow store from a slow machine:
// sequential disk bandwidth (dd), the latency of one small synced write,
// and memory copy bandwidth.
package machine

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"time"
)

// Config says where and how much to measure.
type Config struct {
	// Dir is a directory on the file system the stores use.
	Dir string
	// DiskMiB is how much dd writes and reads back.
	DiskMiB int
	// FsyncCount is how many 4 KiB write + fdatasync rounds to time;
	// FsyncMax bounds the time they may take.
	FsyncCount int
	FsyncMax   time.Duration
	// CopyMiB is the size of the buffers copied to measure memory bandwidth;
	// CopyRounds how many times they are copied.
	CopyMiB    int
	CopyRounds int
}

// Limits is what was measured. A zero field was not measured; Notes says why.
type Limits struct {
	DiskWriteMBps float64  `json:"disk_write_mb_s"`
	DiskReadMBps  float64  `json:"disk_read_mb_s"`
	DiskReadFrom  string   `json:"disk_read_from"`
	FsyncP50us    float64  `json:"fsync_p50_us"`
	FsyncP99us    float64  `json:"fsync_p99_us"`
	FsyncRounds   int      `json:"fsync_rounds"`
	MemCopyGBps   float64  `json:"memcopy_gb_s"`
	MemCopyMiB    int      `json:"memcopy_mib"`
	CPUs          int      `json:"cpus"`
	Notes         []string `json:"notes,omitempty"`
}

// Run measures everything c asks for. Failures of single measurements are
// recorded in the notes, not returned.
func (c Config) Run() Limits {
	var l Limits
	l.CPUs = runtime.NumCPU()
	if err := c.disk(&l); err != nil {
		l.Notes = append(l.Notes, "dd: "+err.Error())
	}
	if err := c.fsync(&l); err != nil {
		l.Notes = append(l.Notes, "fsync: "+err.Error())
	}
	c.memcopy(&l)
	return l
}

// ddCopied matches the byte count and seconds of dd's summary line,
// "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 1.234 s, 870 MB/s".
var ddCopied = regexp.MustCompile(`(\d+) bytes .*copied, ([0-9.e+-]+) s`)

// dd runs dd with args and returns its rate in MB/s, computed from the byte
// count and time it prints rather than its rounded rate.
func dd(args ...string) (float64, error) {
	cmd := exec.Command("dd", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("dd %v: %v: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	m := ddCopied.FindSubmatch(stderr.Bytes())
	if m == nil {
		return 0, fmt.Errorf("dd %v: cannot read its output %q", args, stderr.String())
	}
	n, _ := strconv.ParseFloat(string(m[1]), 64)
	s, _ := strconv.ParseFloat(string(m[2]), 64)
	if s <= 0 {
		return 0, fmt.Errorf("dd %v: took no time", args)
	}
	return n / s / 1e6, nil
}

// disk writes DiskMiB with dd and conv=fdatasync (so the time includes
// getting the data onto the device), then reads it back, from the device if
// the file's cached pages can be dropped, else from the page cache.
func (c Config) disk(l *Limits) error {
	if c.DiskMiB <= 0 {
		return nil
	}
	path := filepath.Join(c.Dir, "kbench-dd.tmp")
	defer os.Remove(path)
	count := "count=" + strconv.Itoa(c.DiskMiB)
	w, err := dd("if=/dev/zero", "of="+path, "bs=1M", count, "conv=fdatasync")
	if err != nil {
		return err
	}
	l.DiskWriteMBps = w

	// Drop only this file's pages: posix_fadvise(DONTNEED) on a file whose
	// pages are clean (dd synced it) evicts them without touching anything
	// else on the machine. If that fails, try O_DIRECT reads; if that fails
	// too, the read is from the page cache and says so.
	l.DiskReadFrom = "device (page cache dropped for the file with posix_fadvise DONTNEED)"
	if err := dropCache(path); err != nil {
		l.Notes = append(l.Notes, "dropping the file's cached pages: "+err.Error())
		l.DiskReadFrom = "device (dd iflag=direct)"
		r, err := dd("if="+path, "of=/dev/null", "bs=1M", "iflag=direct")
		if err == nil {
			l.DiskReadMBps = r
			return nil
		}
		l.Notes = append(l.Notes, err.Error())
		l.DiskReadFrom = "page cache (could not bypass it)"
	}
	r, err := dd("if="+path, "of=/dev/null", "bs=1M")
	if err != nil {
		return err
	}
	l.DiskReadMBps = r
	return nil
}

// fsync times FsyncCount rounds of a 4 KiB write at the start of a file
// followed by fdatasync: the cost a store pays per synced write.
func (c Config) fsync(l *Limits) error {
	if c.FsyncCount <= 0 {
		return nil
	}
	path := filepath.Join(c.Dir, "kbench-fsync.tmp")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := bytes.Repeat([]byte{0xa5}, 4096)
	var times []time.Duration
	stop := time.Now().Add(c.FsyncMax)
	for i := 0; i < c.FsyncCount && (c.FsyncMax <= 0 || time.Now().Before(stop)); i++ {
		buf[0] = byte(i)
		t := time.Now()
		if _, err := f.WriteAt(buf, 0); err != nil {
			return err
		}
		if err := fdatasync(f); err != nil {
			return err
		}
		times = append(times, time.Since(t))
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	l.FsyncRounds = len(times)
	if len(times) > 0 {
		l.FsyncP50us = float64(times[len(times)/2]) / 1e3
		l.FsyncP99us = float64(times[min(len(times)-1, len(times)*99/100)]) / 1e3
	}
	return nil
}

// memcopy copies one CopyMiB buffer into another CopyRounds times with Go's
// copy and reports GB/s (10^9 bytes copied per second).
func (c Config) memcopy(l *Limits) {
	if c.CopyMiB <= 0 || c.CopyRounds <= 0 {
		return
	}
	src := make([]byte, c.CopyMiB<<20)
	dst := make([]byte, len(src))
	for i := range src { // fault both buffers in before timing
		src[i] = byte(i)
	}
	copy(dst, src)
	t := time.Now()
	for i := 0; i < c.CopyRounds; i++ {
		copy(dst, src)
	}
	l.MemCopyMiB = c.CopyMiB
	l.MemCopyGBps = float64(len(src)) * float64(c.CopyRounds) / time.Since(t).Seconds() / 1e9
}
