// Command hubd runs all of hubhooks — configsvc, expander, deliverer and
// logger — in one process, on an embedded NATS server with JetStream unless
// HUBHOOKS_NATS_URL names an external one. Redis is always a real Redis.
package main

import (
	"context"

	"github.com/hubhooks/hubhooks/services/hubd"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

func main() { assembly.Main("hubd", run) }

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("hubd", args, settings.Defaults{GRPCAddr: "127.0.0.1:7000", HTTPAddr: "127.0.0.1:7080"})
	if err != nil {
		return err
	}
	hub, err := hubd.Start(ctx, p)
	if err != nil {
		return err
	}
	return hub.Wait()
}
