//go:build !linux

package inspect

import "io"

// isTerminal reports false: progress is drawn only on Linux terminals, where
// the engine runs today.
func isTerminal(io.Writer) bool { return false }
