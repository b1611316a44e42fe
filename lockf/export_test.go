package lockf

// TableLen returns the number of ranges in f's in-process table, so that
// tests can check that idle entries are removed.
func TableLen(f *File) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}
