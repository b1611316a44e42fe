package engine

// SetCrashPoint makes fn run at every crash point (see crashPoint). A
// child process of a test sets it before it opens a cache.
func SetCrashPoint(fn func(name string)) { crashPoint = fn }
