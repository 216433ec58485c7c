package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// ErrNotReplicated is returned by WriteReplicated when the write was made
// on the primary but fewer replicas than asked acknowledged it in time: a
// failover may still lose it, so the caller must not treat it as kept.
var ErrNotReplicated = errors.New("redis write not acknowledged by enough replicas")

// DefaultReplicaWait is how long a service waits for its Redis replicas
// by default (HUBHOOKS_REDIS_WAIT_TIMEOUT): the deliverer for each retry
// store, the logger for each batch of the event log.
const DefaultReplicaWait = time.Second

// WriteReplicated runs write as one MULTI/EXEC on the primary that serves
// key and, when replicas > 0, then sends WAIT replicas timeout on the same
// connection (WAIT counts the replicas that have every write of its own
// connection). Redis replicates asynchronously: without the WAIT a write the
// primary acknowledged just before it died may be missing on the replica
// that takes over. It returns ErrNotReplicated (wrapped) when fewer replicas
// acknowledged within timeout; the write is on the primary then and may or
// may not survive a failover. Every key of write must share key's slot.
// write may queue the writes of many callers (a batch, as the deliverer's
// retry store does): they then share the MULTI/EXEC and the WAIT, and
// succeed or fail together.
func WriteReplicated(ctx context.Context, rdb redis.UniversalClient, key string, replicas int, timeout time.Duration, write func(redis.Pipeliner) error) error {
	if replicas <= 0 {
		_, err := rdb.TxPipelined(ctx, write)
		return err
	}
	if timeout <= 0 {
		return fmt.Errorf("redis WAIT timeout %s: must be positive (0 would wait forever)", timeout)
	}
	node, err := primaryOf(ctx, rdb, key)
	if err != nil {
		return err
	}
	conn := node.Conn()
	defer conn.Close()
	if _, err := conn.TxPipelined(ctx, write); err != nil {
		return err
	}
	return waitOn(ctx, conn, replicas, timeout)
}

// AwaitReplicated returns once replicas Redis replicas hold every write the
// primaries serving keys acknowledged before the call, so writes made
// through a client's pool (pipelines across slots, say) are as safe from a
// failover as WriteReplicated's. WAIT counts only its own connection's
// writes, so on a connection of its own to each such primary (one per
// primary, however many keys it serves) it writes a short-lived marker at
// the first of keys it serves, then sends WAIT: a replica holding the marker
// holds everything its primary wrote before it. keys must be keys the
// caller may overwrite (markers, not data). ErrNotReplicated (wrapped) as
// WriteReplicated; replicas <= 0 returns nil at once.
func AwaitReplicated(ctx context.Context, rdb redis.UniversalClient, keys []string, replicas int, timeout time.Duration) error {
	if replicas <= 0 || len(keys) == 0 {
		return nil
	}
	if timeout <= 0 {
		return fmt.Errorf("redis WAIT timeout %s: must be positive (0 would wait forever)", timeout)
	}
	type primary struct {
		node   *redis.Client
		marker string
	}
	primaries := map[string]primary{} // by address
	for _, k := range keys {
		node, err := primaryOf(ctx, rdb, k)
		if err != nil {
			return err
		}
		if _, ok := primaries[node.Options().Addr]; !ok {
			primaries[node.Options().Addr] = primary{node: node, marker: k}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range primaries {
		g.Go(func() error {
			conn := p.node.Conn()
			defer conn.Close()
			if err := conn.Set(gctx, p.marker, "1", time.Minute).Err(); err != nil {
				return fmt.Errorf("redis replication marker %q: %w", p.marker, err)
			}
			return waitOn(gctx, conn, replicas, timeout)
		})
	}
	return g.Wait()
}

// primaryOf is the client of the primary that serves key.
func primaryOf(ctx context.Context, rdb redis.UniversalClient, key string) (*redis.Client, error) {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("redis primary of %q: %w", key, err)
		}
		return n, nil
	case *redis.Client: // one server, or Sentinel's failover client
		return c, nil
	default:
		return nil, fmt.Errorf("redis client %T: cannot wait for replicas", rdb)
	}
}

// waitOn sends WAIT on conn, after its writes.
func waitOn(ctx context.Context, conn *redis.Conn, replicas int, timeout time.Duration) error {
	n, err := conn.Wait(ctx, replicas, timeout).Result()
	if err != nil {
		return fmt.Errorf("redis WAIT %d %s: %w", replicas, timeout, err)
	}
	if int(n) < replicas {
		return fmt.Errorf("%w: %d of %d within %s", ErrNotReplicated, n, replicas, timeout)
	}
	return nil
}
