// Command deliverer POSTs delivery jobs to callback URLs, signs them,
// retries failures on the retry schedule, and records every attempt for the
// logger.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/hubhooks/hubhooks/services/deliverer/deliver"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "deliverer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("deliverer", args, settings.Defaults{NATSURL: "nats://127.0.0.1:4222", HTTPAddr: "127.0.0.1:7083"})
	if err != nil {
		return err
	}
	nc, js, err := p.NATS(p.S.NATSURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	rdb, err := p.Redis(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	guard, err := p.Guard()
	if err != nil {
		return err
	}
	sender, err := p.Sender(guard)
	if err != nil {
		return err
	}
	conn, err := p.DialConfig(p.S.ConfigAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	cache, err := p.ConfigCache(conn)
	if err != nil {
		return err
	}
	svc, err := deliver.New(p.DelivererConfig(), js, rdb, cache, sender)
	if err != nil {
		return err
	}
	p.Health.Add("deliverer", svc.Ready)
	cacheCtx, stopCache := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCache()
	var g errgroup.Group
	g.Go(func() error { _ = cache.Run(cacheCtx); return nil })
	g.Go(func() error { defer stopCache(); return svc.Run(ctx) })
	g.Go(func() error { return p.ServeHTTP(ctx, nil) })
	err = g.Wait()
	_ = nc.Drain()
	return err
}
