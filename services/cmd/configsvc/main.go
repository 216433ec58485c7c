// Command configsvc serves ConfigService over gRPC: each hub's toggle,
// callback URLs, secret, test events and tokens, with state in Redis.
package main

import (
	"context"

	"github.com/hubhooks/hubhooks/services/configsvc"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

func main() { assembly.Main("configsvc", run) }

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("configsvc", args, settings.Defaults{NATSURL: "nats://127.0.0.1:4222", GRPCAddr: "127.0.0.1:7001", HTTPAddr: "127.0.0.1:7081"})
	if err != nil {
		return err
	}
	in, err := p.Connect(ctx, true)
	if err != nil {
		return err
	}
	defer in.Close()
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
	tokens, err := p.TokenStore(in.Redis)
	if err != nil {
		return err
	}
	gs, err := p.GRPCServer(tokens)
	if err != nil {
		return err
	}
	svc, err := configsvc.New(p.ConfigSvcConfig(rules), in.Redis, in.JS, guard, sender, tokens)
	if err != nil {
		return err
	}
	svc.Register(gs.Server)
	p.Health.Add("configsvc", svc.Ready)
	return p.RunServer(ctx, gs, svc.Run)
}
