// Command configsvc serves ConfigService over gRPC: each hub's toggle,
// callback URLs, secret, test events and tokens, with state in Redis.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/hubhooks/hubhooks/services/configsvc/hubconfig"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "configsvc:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("configsvc", args, settings.Defaults{NATSURL: "nats://127.0.0.1:4222", GRPCAddr: "127.0.0.1:7001", HTTPAddr: "127.0.0.1:7081"})
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
	rules, err := p.Rules()
	if err != nil {
		return err
	}
	tokens, err := p.TokenStore(rdb)
	if err != nil {
		return err
	}
	gs, err := p.GRPCServer(rdb)
	if err != nil {
		return err
	}
	svc, err := hubconfig.New(p.ConfigSvcConfig(rules), rdb, js, guard, sender, tokens)
	if err != nil {
		return err
	}
	svc.Register(gs.Server)
	p.Health.Add("configsvc", svc.Ready)
	var g errgroup.Group
	g.Go(func() error { return gs.Serve(ctx, p.S.GRPCAddr, p.S.ShutdownTimeout) })
	g.Go(func() error { return svc.Run(ctx) })
	g.Go(func() error { return p.ServeHTTP(ctx, nil) })
	err = g.Wait()
	_ = nc.Drain()
	return err
}
