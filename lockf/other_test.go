//go:build !linux

package lockf_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/kennel-cache/kennel/lockf"
)

func TestOpenUnsupported(t *testing.T) {
	f, err := lockf.Open(filepath.Join(t.TempDir(), "lock"), 0)
	if f != nil || !errors.Is(err, lockf.ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Open = %v, %v; want ErrUnsupported", f, err)
	}
}
