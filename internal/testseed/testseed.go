// Package testseed gives kennel's randomised tests one way to choose, log
// and replay their seed: -kennel.seed=N on the test binary, or KENNEL_SEED=N
// in the environment, else a seed from the clock.
package testseed

import (
	"flag"
	"os"
	"strconv"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("kennel.seed", 0, "seed of randomised tests (0: $KENNEL_SEED, else the clock)")

// Seed returns the seed for a randomised test and logs it, so that a
// failure can be replayed.
func Seed(tb testing.TB) uint64 {
	tb.Helper()
	seed := *seedFlag
	if seed == 0 {
		if s, err := strconv.ParseUint(os.Getenv("KENNEL_SEED"), 10, 64); err == nil {
			seed = s
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	tb.Logf("seed %d (replay with -kennel.seed=%d or KENNEL_SEED=%d)", seed, seed, seed)
	return seed
}
