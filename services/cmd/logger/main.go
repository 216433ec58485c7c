// Command logger persists every delivery attempt to Redis and serves the
// searchable event log (EventLogService) over gRPC.
package main

import (
	"context"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
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
	p.Health.Add("logger", svc.Ready)
	return p.RunServer(ctx, gs, svc.Run)
}
