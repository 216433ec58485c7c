// Command expander consumes domain events from JetStream, applies the
// cascade rules and the hub's configuration, and publishes one delivery job
// per (webhook event, callback URL).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/hubhooks/hubhooks/services/expander/expand"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "expander:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("expander", args, settings.Defaults{NATSURL: "nats://127.0.0.1:4222", HTTPAddr: "127.0.0.1:7082"})
	if err != nil {
		return err
	}
	nc, js, err := p.NATS(p.S.NATSURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	rules, err := p.Rules()
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
	svc, err := expand.New(p.ExpanderConfig(), js, cache, rules)
	if err != nil {
		return err
	}
	p.Health.Add("expander", svc.Ready)
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
