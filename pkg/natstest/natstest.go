// Package natstest starts a real, current nats-server with JetStream inside
// the test process, on a random port with a temporary store, and stops it when
// the test ends. No fakes: tests see exactly the server behaviour production sees.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/natsembed"
)

// RunServer starts an embedded JetStream server for the test and returns it.
// The server is shut down by t.Cleanup.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return run(t, natsembed.Config{})
}

// RunServerWithUsers is RunServer requiring authentication: only users
// (with their passwords and permissions) may connect.
func RunServerWithUsers(t testing.TB, users []*server.User) *server.Server {
	t.Helper()
	return run(t, natsembed.Config{Users: users})
}

// run starts cfg on a random port with a temporary store.
func run(t testing.TB, cfg natsembed.Config) *server.Server {
	t.Helper()
	cfg.Listen, cfg.StoreDir, cfg.ServerName = "127.0.0.1:0", t.TempDir(), "natstest"
	s, err := natsembed.Start(cfg)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect opens a client connection to s, closed by t.Cleanup; opts are
// added to the connection's options (nats.UserInfo for a server with users).
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), append([]nats.Option{nats.Name(t.Name())}, opts...)...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// Start is RunServer followed by Connect.
func Start(t testing.TB) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s := RunServer(t)
	nc, js := Connect(t, s)
	return s, nc, js
}
