// Command kbench benchmarks kennel against peer stores and the machine's
// limits. Run it from bench/ as `go run ./cmd/kbench`; see bench/README.md.
package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/kennel-cache/kennel/bench/kbench"
)

func main() {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kbench: %v\n", err)
		os.Exit(1)
	}
	os.Exit(kbench.Main(os.Args[1:], func(args []string) *exec.Cmd {
		return exec.Command(self, args...)
	}))
}
