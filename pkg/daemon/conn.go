package daemon

import (
	"context"
	"fmt"
	"log/slog"
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

// ConnectRedis parses a redis:// URL and waits until the server answers a
// PING, logging while it waits, until ctx ends. The client reconnects by
// itself afterwards.
func ConnectRedis(ctx context.Context, url string, log *slog.Logger) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	opts.MaxRetries = 3
	opts.MinRetryBackoff = 50 * time.Millisecond
	opts.MaxRetryBackoff = time.Second
	rdb := redis.NewClient(opts)
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			return rdb, nil
		}
		if attempt%10 == 0 {
			log.Warn("redis not answering; waiting", "addr", opts.Addr, "err", err)
		}
		select {
		case <-ctx.Done():
			_ = rdb.Close()
			return nil, fmt.Errorf("connect redis %s: %w (last error: %v)", opts.Addr, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// UnlinkPrefix deletes (UNLINK, in batches) every key that starts with
// prefix. It returns the scan's error; keys deleted before it stay deleted.
func UnlinkPrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	batch := make([]string, 0, 500)
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}
