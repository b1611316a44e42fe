// Command hitratio compares kennel's segment-granular eviction with LRU,
// S3-FIFO and Belady's MIN on Zipf traces and prints a Markdown table:
//
//	go run ./compaction/sim/cmd/hitratio [-budget 67108864] [-value 4096] [-requests 20000000] [-seed 1] [-drift 0] ...
package main

import (
	"os"

	"github.com/kennel-cache/kennel/compaction/sim"
)

func main() {
	os.Exit(sim.Command(os.Args[1:], os.Stdout, os.Stderr))
}
