package sim

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Command is the hitratio command: it parses args (without the program
// name), runs the comparison and prints it to stdout as Markdown. It returns
// the exit status: 0, 1 if the run failed, 2 for a usage error.
func Command(args []string, stdout, stderr io.Writer) int {
	cfg := DefaultTableConfig()
	fs := flag.NewFlagSet("hitratio", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Int64Var(&cfg.Budget, "budget", cfg.Budget, "cache budget in bytes")
	fs.Int64Var(&cfg.ValueSize, "value", cfg.ValueSize, "value size in bytes")
	fs.IntVar(&cfg.Keys, "keys", 0, "distinct keys (0: 10 × budget/value)")
	fs.IntVar(&cfg.Requests, "requests", cfg.Requests, "requests measured per trace")
	fs.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "requests before measuring")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "trace seed")
	fs.IntVar(&cfg.Drift, "drift", 0, "move popularity by one key every this many requests (0: static Zipf)")
	fs.BoolVar(&cfg.OPT, "opt", cfg.OPT, "also run Belady's MIN")
	skews := fs.String("skew", "0.8,1.0,1.2", "comma-separated Zipf exponents")
	segs := fs.String("segments", "1048576,2097152,4194304", "comma-separated kennel segment sizes in bytes")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: hitratio [flags]\n\nCompares the hit ratio of kennel's eviction with LRU, S3-FIFO and OPT on Zipf traces.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hitratio: "+format+"\n", a...)
		fs.Usage()
		return 2
	}
	if fs.NArg() != 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Skews, err = parseList(*skews, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
		return usage("-skew: %v", err)
	}
	if cfg.SegmentSizes, err = parseList(*segs, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }); err != nil {
		return usage("-segments: %v", err)
	}
	rows, err := RunTable(cfg)
	if err == nil {
		err = WriteMarkdown(stdout, rows)
	}
	if err != nil {
		fmt.Fprintln(stderr, "hitratio:", err)
		return 1
	}
	return 0
}

func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
