// Package poll waits in tests for a condition to hold, polling it, with a
// deadline: tests wait for what they expect instead of sleeping and hoping.
package poll

import (
	"testing"
	"time"
)

// Until polls cond every 10ms until it holds, and fails the test when it
// still does not after timeout. what names the awaited condition.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
