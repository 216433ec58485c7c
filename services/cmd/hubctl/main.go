// Command hubctl is the command line of hubhooks: configure hubs and their
// callback URLs, send test events, search the event log, redeliver, replay
// domain events from history and recover failed deliveries, over the same
// gRPC API as every other client. `hubctl --help` explains the settings
// (flags, HUBHOOKS_* variables, the config file) and the exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv,
		interactive: term.IsTerminal(int(os.Stdin.Fd())),
	})
	stop()
	os.Exit(code)
}
