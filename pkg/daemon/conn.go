package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// ConnectNATS connects to url and keeps reconnecting forever: a NATS outage
// makes the service wait, never exit. The first connection is retried in the
// background too (nats.RetryOnFailedConnect), so ConnectNATS returns at once.
// opts come after the defaults (e.g. nats.InProcessServer).
func ConnectNATS(url, name string, log *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectBufSize(64 * 1024 * 1024),
		nats.PingInterval(10 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ConnectHandler(func(c *nats.Conn) { log.Info("nats connected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("nats async error", "subject", subj, "err", err)
		}),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	return nc, nil
}

// RedisConfig says how to reach Redis: one server (URL alone), through
// Sentinel (SentinelAddrs and SentinelMaster; the URL gives the database,
// user and password), or a Redis Cluster (ClusterAddrs; the URL gives the
// user and password, and must name database 0).
type RedisConfig struct {
	URL            string
	SentinelAddrs  []string
	SentinelMaster string
	ClusterAddrs   []string
}

// Validate reports every problem at once.
func (c RedisConfig) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("redis url is required (it gives the database, user and password in every mode)"))
	} else if opts, err := redis.ParseURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("redis url: %w", err))
	} else if len(c.ClusterAddrs) > 0 && opts.DB != 0 {
		errs = append(errs, fmt.Errorf("redis url names database %d: a Redis Cluster has database 0 only", opts.DB))
	}
	if (len(c.SentinelAddrs) > 0) != (c.SentinelMaster != "") {
		errs = append(errs, errors.New("redis sentinel addresses and the sentinel master name go together"))
	}
	if len(c.SentinelAddrs) > 0 && len(c.ClusterAddrs) > 0 {
		errs = append(errs, errors.New("redis: sentinel and cluster addresses exclude each other (a Redis Cluster fails over by itself)"))
	}
	for _, a := range append(slices.Clone(c.SentinelAddrs), c.ClusterAddrs...) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("redis address %q: %v", a, err))
		}
	}
	return errors.Join(errs...)
}

// Mode names how the config reaches Redis: "single", "sentinel" or "cluster".
func (c RedisConfig) Mode() string {
	switch {
	case len(c.ClusterAddrs) > 0:
		return "cluster"
	case len(c.SentinelAddrs) > 0:
		return "sentinel"
	}
	return "single"
}

// NewRedisClient builds the client of the config's mode with go-redis's
// standard types (Client, FailoverClient, ClusterClient behind
// UniversalClient) and hubhooks' retry settings. It does not connect.
func NewRedisClient(c RedisConfig) (redis.UniversalClient, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts, _ := redis.ParseURL(c.URL)
	u := &redis.UniversalOptions{
		Addrs:           []string{opts.Addr},
		DB:              opts.DB,
		Username:        opts.Username,
		Password:        opts.Password,
		TLSConfig:       opts.TLSConfig,
		Protocol:        opts.Protocol,
		MaxRetries:      3,
		MinRetryBackoff: 50 * time.Millisecond,
		MaxRetryBackoff: time.Second,
		PoolSize:        opts.PoolSize,
	}
	switch c.Mode() {
	case "sentinel":
		u.Addrs, u.MasterName = c.SentinelAddrs, c.SentinelMaster
		// A failover takes Sentinel seconds; retry long enough to ride it out.
		u.MaxRetries = 10
		return redis.NewFailoverClient(u.Failover()), nil
	case "cluster":
		u.Addrs = c.ClusterAddrs
		u.MaxRetries = 10
		return redis.NewClusterClient(u.Cluster()), nil
	}
	return redis.NewClient(u.Simple()), nil
}

// ConnectRedis builds the client of c and waits until Redis answers a
// PING, logging while it waits, until ctx ends. The client reconnects (and,
// through Sentinel or a cluster, follows failovers) by itself afterwards.
func ConnectRedis(ctx context.Context, c RedisConfig, log *slog.Logger) (redis.UniversalClient, error) {
	rdb, err := NewRedisClient(c)
	if err != nil {
		return nil, err
	}
	where := c.Mode() + " " + strings.Join(append(slices.Clone(c.SentinelAddrs), c.ClusterAddrs...), ",")
	if c.Mode() == "single" {
		where = redactedRedisURL(c.URL)
	}
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			return rdb, nil
		}
		if attempt%10 == 0 {
			log.Warn("redis not answering; waiting", "redis", where, "err", err)
		}
		select {
		case <-ctx.Done():
			_ = rdb.Close()
			return nil, fmt.Errorf("connect redis %s: %w (last error: %v)", where, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// redactedRedisURL is the URL's address without credentials, for logs.
func redactedRedisURL(raw string) string {
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return opts.Addr
}

// UnlinkPrefix deletes every key that starts with prefix, on every primary
// of a Redis Cluster. Keys are unlinked one per command (in pipelines of
// 500), so keys of different cluster slots never meet in one command. It
// returns the first scan or unlink error; keys deleted before it stay
// deleted.
func UnlinkPrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return unlinkPrefix(ctx, node, prefix)
		})
	}
	return unlinkPrefix(ctx, rdb, prefix)
}

func unlinkPrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	batch := make([]string, 0, 500)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		pipe := rdb.Pipeline()
		for _, k := range batch {
			pipe.Unlink(ctx, k)
		}
		_, err := pipe.Exec(ctx)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return iter.Err()
}
