package sim

import (
	"bytes"
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
	for _, c := range []struct {
		args   []string
		status int
		out    string // a line stdout must contain
		errOut string // a string stderr must contain
	}{
		{[]string{"-budget", "1048576", "-requests", "20000", "-warmup", "1000", "-skew", "1", "-segments", "65536", "-opt=false"},
			0, "| s | LRU | S3-FIFO | S3-FIFO m2 | kennel 64 KiB | WA 64 KiB |", ""},
		{[]string{"-skew", "x"}, 2, "", "-skew"},
		{[]string{"-segments", "1,,2"}, 2, "", "-segments"},
		{[]string{"extra"}, 2, "", "unexpected arguments"},
		{[]string{"-nosuchflag"}, 2, "", "not defined"},
		{[]string{"-budget", "0"}, 1, "", "budget"},
		{[]string{"-h"}, 0, "", "usage: hitratio"},
	} {
		var stdout, stderr bytes.Buffer
		status := Command(c.args, &stdout, &stderr)
		if status != c.status || !strings.Contains(stdout.String(), c.out) || !strings.Contains(stderr.String(), c.errOut) {
			t.Errorf("hitratio %q: status %d\nstdout:\n%s\nstderr:\n%s", c.args, status, stdout.String(), stderr.String())
		}
	}
}
