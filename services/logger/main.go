// Command logger persists every delivery attempt to Redis and serves the
// searchable event log (EventLogService) over gRPC.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
	"github.com/hubhooks/hubhooks/services/logger/eventlog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "logger:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("logger", args, settings.Defaults{NATSURL: "nats://127.0.0.1:4222", GRPCAddr: "127.0.0.1:7002", HTTPAddr: "127.0.0.1:7084"})
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
	gs, err := p.GRPCServer(rdb)
	if err != nil {
		return err
	}
	svc, err := eventlog.New(p.LoggerConfig(), js, rdb)
	if err != nil {
		return err
	}
	svc.Register(gs.Server)
	p.Health.Add("logger", svc.Ready)
	var g errgroup.Group
	g.Go(func() error { return gs.Serve(ctx, p.S.GRPCAddr, p.S.ShutdownTimeout) })
	g.Go(func() error { return svc.Run(ctx) })
	g.Go(func() error { return p.ServeHTTP(ctx, nil) })
	err = g.Wait()
	_ = nc.Drain()
	return err
}
