// Command logger persists every delivery attempt to Redis and serves the
// searchable event log (EventLogService) and the OperationsService
// (explain, recovery) over gRPC; it reaches configsvc at
// HUBHOOKS_CONFIG_ADDR for hub configuration.
package main

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
	"github.com/hubhooks/hubhooks/services/logger"
)

func main() { assembly.Main("logger", run) }

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("logger", args, settings.Defaults{NATSURL: "nats://127.0.0.1:4222", GRPCAddr: "127.0.0.1:7002", HTTPAddr: "127.0.0.1:7084"})
	if err != nil {
		return err
	}
	in, err := p.Connect(ctx, true)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := p.WatchLag(in.JS, eventbus.ConsumerRef{Stream: eventbus.StreamAttempts, Consumer: eventbus.ConsumerLogger}); err != nil {
		return err
	}
	tokens, err := p.TokenStore(in.Redis)
	if err != nil {
		return err
	}
	gs, err := p.GRPCServer(tokens)
	if err != nil {
		return err
	}
	svc, err := logger.New(p.LoggerConfig(), in.JS, in.Redis)
	if err != nil {
		return err
	}
	svc.Register(gs.Server)
	rules, err := p.Rules()
	if err != nil {
		return err
	}
	conn, err := p.DialConfig(p.Settings.ConfigAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ops, err := p.Operations(in.JS, in.Redis, svc.Store(), hubhooksv1.NewConfigServiceClient(conn), rules)
	if err != nil {
		return err
	}
	ops.Register(gs.Server)
	p.Health.Add("logger", svc.Ready)
	p.Health.Add("operations", ops.Ready)
	return p.RunServer(ctx, gs, func(ctx context.Context) error {
		var g errgroup.Group
		g.Go(func() error { return svc.Run(ctx) })
		g.Go(func() error { return ops.Run(ctx) })
		return g.Wait()
	})
}
