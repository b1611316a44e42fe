// Command quickstart memoizes a slow function into a kennel cache in
// ./kennel-demo. Run it twice: the first run computes and stores every
// result, the second is served from disk by a new process.
package main

import (
	"crypto/sha256"
	"errors"
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

	cache, err := engine.Open(*dir, engine.Options{DefaultTTL: 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	// memoized returns stretch(input), from the cache when it holds it.
	memoized := func(input string) ([]byte, bool, error) {
		key := []byte("stretch:" + input)
		v, err := cache.Get(key)
		if err == nil {
			return v, true, nil
		}
		if !errors.Is(err, engine.ErrNotFound) {
			return nil, false, err
		}
		v = stretch(input)
		return v, false, cache.Set(key, v)
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
