package daemon_test

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/redistest"
)

// TestQueueScriptByDigestThenByText queues a script Redis has never seen
// (its text names the test's key prefix, so no SCRIPT FLUSH of the shared
// Redis is needed): by digest it is refused with NOSCRIPT and does nothing;
// by text it runs, and by digest afterwards too. In a plain pipeline the
// refusal is the command's error; in a MULTI/EXEC also the batch's.
func TestQueueScriptByDigestThenByText(t *testing.T) {
	rdb, prefix := redistest.New(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(context.Context, func(redis.Pipeliner) error) ([]redis.Cmder, error)
	}{
		{"pipeline", rdb.Pipelined},
		{"multi/exec", rdb.TxPipelined},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := prefix + tc.name
			sc := redis.NewScript("-- " + key + "\nreturn redis.call('INCR', KEYS[1])")
			queue := func(mode daemon.ScriptMode) (int64, error) {
				t.Helper()
				var c *redis.Cmd
				_, err := tc.run(ctx, func(p redis.Pipeliner) error {
					c = daemon.QueueScript(ctx, p, sc, mode, []string{key})
					return nil
				})
				if !errors.Is(err, c.Err()) {
					t.Fatalf("batch error %v, script's %v", err, c.Err())
				}
				n, err := c.Int64()
				return n, err
			}
			if _, err := queue(daemon.ScriptByDigest); !daemon.IsNoScript(err) {
				t.Fatalf("by digest, never loaded: %v, want NOSCRIPT", err)
			}
			if err := rdb.Get(ctx, key).Err(); !errors.Is(err, redis.Nil) {
				t.Fatalf("the refused script wrote (%v)", err)
			}
			if n, err := queue(daemon.ScriptByText); n != 1 || err != nil {
				t.Fatalf("by text: %d, %v; want 1", n, err)
			}
			if n, err := queue(daemon.ScriptByDigest); n != 2 || err != nil {
				t.Fatalf("by digest once loaded: %d, %v; want 2", n, err)
			}
		})
	}
	if daemon.IsNoScript(nil) || daemon.IsNoScript(redis.Nil) || daemon.IsNoScript(errors.New("ERR NOSCRIPT elsewhere")) {
		t.Error("IsNoScript true for an error that is not NOSCRIPT")
	}
}
