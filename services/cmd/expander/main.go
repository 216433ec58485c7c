// Command expander consumes domain events from JetStream, applies the
// cascade rules and the hub's configuration, and publishes one delivery
// fan-out message per webhook event (one target per callback URL).
package main

import (
	"context"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

func main() { assembly.Main("expander", run) }

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("expander", args, settings.Defaults{NATSURL: "nats://127.0.0.1:4222", HTTPAddr: "127.0.0.1:7082"})
	if err != nil {
		return err
	}
	in, err := p.Connect(ctx, true)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := p.WatchLag(in.JS, eventbus.ExpanderConsumers()...); err != nil {
		return err
	}
	rules, err := p.Rules()
	if err != nil {
		return err
	}
	cache, closeConfig, err := p.WatchedConfig()
	if err != nil {
		return err
	}
	defer closeConfig()
	svc, err := p.Expander(in.JS, in.Redis, cache, rules)
	if err != nil {
		return err
	}
	p.Health.Add("expander", svc.Ready)
	return p.RunWorker(ctx, cache, svc.Run)
}
