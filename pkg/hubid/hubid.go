// Package hubid validates hub identifiers. A hub id is a NATS subject token
// and a Redis key part, so it is restricted to a safe alphabet.
package hubid

import (
	"errors"
	"fmt"
)

// MaxLen is the longest hub id accepted.
const MaxLen = 64

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid hub_id")

// Validate reports whether id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'.
func Validate(id string) error {
	if id == "" {
		return fmt.Errorf("%w: hub_id is required", ErrInvalid)
	}
	if len(id) > MaxLen {
		return fmt.Errorf("%w: %d characters, at most %d allowed", ErrInvalid, len(id), MaxLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return fmt.Errorf("%w: %q has character %q at %d; use A-Z, a-z, 0-9, '-' and '_'", ErrInvalid, id, c, i)
		}
	}
	return nil
}
