// Command fsinspect inspects, verifies and compacts a kennel cache
// directory, also while other processes use it. Run 'fsinspect -h' for its commands; they
// live in package inspect.
package main

import (
	"os"

	"github.com/kennel-cache/kennel/cmd/fsinspect/inspect"
)

func main() {
	os.Exit(inspect.Main(os.Args[1:], os.Stdout, os.Stderr))
}
