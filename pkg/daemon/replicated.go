package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated is returned by WriteReplicated when the write was made
// on the primary but fewer replicas than asked acknowledged it in time: a
// failover may still lose it, so the caller must not treat it as kept.
var ErrNotReplicated = errors.New("redis write not acknowledged by enough replicas")

// WriteReplicated runs write as one MULTI/EXEC on the primary that serves
// key and, when replicas > 0, then sends WAIT replicas timeout on the same
// connection (WAIT counts the replicas that have every write of its own
// connection). Redis replicates asynchronously: without the WAIT a write the
// primary acknowledged just before it died may be missing on the replica
// that takes over. It returns ErrNotReplicated (wrapped) when fewer replicas
// acknowledged within timeout; the write is on the primary then and may or
// may not survive a failover. Every key of write must share key's slot.
func WriteReplicated(ctx context.Context, rdb redis.UniversalClient, key string, replicas int, timeout time.Duration, write func(redis.Pipeliner) error) error {
	if replicas <= 0 {
		_, err := rdb.TxPipelined(ctx, write)
		return err
	}
	if timeout <= 0 {
		return fmt.Errorf("redis WAIT timeout %s: must be positive (0 would wait forever)", timeout)
	}
	var node *redis.Client
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			return fmt.Errorf("redis primary of %q: %w", key, err)
		}
		node = n
	case *redis.Client: // one server, or Sentinel's failover client
		node = c
	default:
		return fmt.Errorf("redis client %T: cannot wait for replicas", rdb)
	}
	conn := node.Conn()
	defer conn.Close()
	if _, err := conn.TxPipelined(ctx, write); err != nil {
		return err
	}
	n, err := conn.Wait(ctx, replicas, timeout).Result()
	if err != nil {
		return fmt.Errorf("redis WAIT %d %s: %w", replicas, timeout, err)
	}
	if int(n) < replicas {
		return fmt.Errorf("%w: %d of %d within %s", ErrNotReplicated, n, replicas, timeout)
	}
	return nil
}
