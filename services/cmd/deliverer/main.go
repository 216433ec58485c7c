// Command deliverer POSTs delivery jobs to callback URLs, signs them,
// retries failures on the retry schedule, and records every attempt for the
// logger.
package main

import (
	"context"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

func main() { assembly.Main("deliverer", run) }

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("deliverer", args, settings.Defaults{NATSURL: "nats://127.0.0.1:4222", HTTPAddr: "127.0.0.1:7083"})
	if err != nil {
		return err
	}
	in, err := p.Connect(ctx, true)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := p.WatchLag(in.JS, eventbus.DelivererConsumers()...); err != nil {
		return err
	}
	guard, err := p.Guard()
	if err != nil {
		return err
	}
	sender, err := p.Sender(guard)
	if err != nil {
		return err
	}
	cache, closeConfig, err := p.WatchedConfig()
	if err != nil {
		return err
	}
	defer closeConfig()
	svc, err := p.Deliverer(in.JS, in.Redis, cache, sender)
	if err != nil {
		return err
	}
	p.Health.Add("deliverer", svc.Ready)
	return p.RunWorker(ctx, cache, svc.Run)
}
