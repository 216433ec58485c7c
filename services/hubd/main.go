// Command hubd runs all of hubhooks — configsvc, expander, deliverer and
// logger — in one process, on an embedded NATS server with JetStream unless
// HUBHOOKS_NATS_URL names an external one. Redis is always a real Redis.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hubhooks/hubhooks/services/hubd/allinone"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "hubd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("hubd", args, settings.Defaults{GRPCAddr: "127.0.0.1:7000", HTTPAddr: "127.0.0.1:7080"})
	if err != nil {
		return err
	}
	hub, err := allinone.Start(ctx, p)
	if err != nil {
		return err
	}
	return hub.Wait()
}
