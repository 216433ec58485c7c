//go:build !unix

package hubd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockDataDir creates dir/hubd.lock exclusively (no flock here): a file
// left by a process that crashed must be deleted by hand, which the error
// says.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		b, _ := os.ReadFile(path)
		return nil, fmt.Errorf("%w (if no hubd runs, delete %s)", lockedError(dir, strings.TrimSpace(string(b))), path)
	}
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	_, _ = f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	f.Close()
	return func() { _ = os.Remove(path) }, nil
}
