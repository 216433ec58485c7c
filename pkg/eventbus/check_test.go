package eventbus

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/natsembed"
)

// TestCheckConsumerWaitsWhileJetStreamIsAway: asked while the server is
// down (as a cluster electing its leaders answers nothing), CheckConsumer
// asks again until JetStream answers, rather than failing with the
// client's timeout: a service starting beside such a cluster would exit.
func TestCheckConsumerWaitsWhileJetStreamIsAway(t *testing.T) {
	cfg := natsembed.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), ServerName: "check"}
	srv, err := natsembed.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = srv.Addr().(*net.TCPAddr).String()
	t.Cleanup(func() { srv.Shutdown() })
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// A short client timeout, so that a single ask would fail fast.
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := Ensure(ctx, js, EventsOverflowStreamConfig(Options{})); err != nil {
		t.Fatal(err)
	}
	name := ExpanderOverflowConsumerName(0)
	if _, err := EnsureConsumer(ctx, js, StreamEventsOverflow, ExpanderOverflowConsumerConfig(0, 30*time.Second, 100)); err != nil {
		t.Fatal(err)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	done := make(chan error, 1)
	// No deadline, as the expander's set-up asks.
	go func() { done <- CheckConsumer(ctx, js, StreamEventsOverflow, name) }()
	select {
	case err := <-done:
		t.Fatalf("CheckConsumer answered while the server was down: %v", err)
	case <-time.After(time.Second):
	}
	if srv, err = natsembed.Start(cfg); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("CheckConsumer once the server is back: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("CheckConsumer did not return once the server was back")
	}
}
