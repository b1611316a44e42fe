// Command quickstart memoizes a slow function into a kennel cache in
// ./kennel-demo. Run it twice: the first run computes and stores every
// result, the second is served from disk by a new process. Run several at
// once: GetOrCreate's lock, shared by the processes, has each result
// computed once.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/kennel-cache/kennel/engine"
)

// stretch is the slow function: it hashes its input 200,000 times, the way
// a password-stretching or content-fingerprinting step would (about 20 ms here).
func stretch(input string) []byte {
	sum := sha256.Sum256([]byte(input))
	for range 200_000 {
		sum = sha256.Sum256(sum[:])
	}
	return sum[:]
}

func main() {
	dir := flag.String("dir", "kennel-demo", "cache directory")
	n := flag.Int("n", 20, "number of distinct inputs")
	flag.Parse()

	cache, err := engine.Open(*dir, engine.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	// memoized returns stretch(input), from the cache when it holds it. A
	// result is fresh for an hour; for a day after that it is still served
	// while one caller computes it again.
	memoized := func(input string) ([]byte, bool, error) {
		hit := true
		v, err := cache.GetOrCreate(context.Background(), []byte("stretch:"+input),
			func(context.Context) ([]byte, error) {
				hit = false
				return stretch(input), nil
			},
			engine.Fresh(time.Hour), engine.Grace(24*time.Hour))
		return v, hit, err
	}

	var hits, misses int
	var hitTime, missTime time.Duration
	for i := range *n {
		input := fmt.Sprintf("user-%d", i)
		start := time.Now()
		v, hit, err := memoized(input)
		if err != nil {
			log.Fatal(err)
		}
		took := time.Since(start)
		if hit {
			hits++
			hitTime += took
		} else {
			misses++
			missTime += took
		}
		if i < 3 {
			fmt.Printf("%-8s -> %x…  hit=%-5v %v\n", input, v[:6], hit, took.Round(100*time.Nanosecond))
		}
	}
	fmt.Printf("%d calls: %d hits, %d misses\n", *n, hits, misses)
	if misses > 0 {
		fmt.Printf("computed: %v per call\n", (missTime / time.Duration(misses)).Round(time.Microsecond))
	}
	if hits > 0 {
		fmt.Printf("from disk: %v per call\n", (hitTime / time.Duration(hits)).Round(100*time.Nanosecond))
	}
	st := cache.Stats()
	fmt.Printf("cache %s: %d keys, %d segments, %d bytes on disk\n", *dir, st.Keys, st.Segments, st.DiskBytes)
	if misses > 0 {
		fmt.Println("run it again: the next process reads every result from disk")
	}
}
