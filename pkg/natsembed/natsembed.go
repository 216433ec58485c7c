// Package natsembed runs a NATS server with JetStream inside the current
// process: the all-in-one hubd uses it as its default broker, and tests use it
// through package natstest.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config describes the embedded server.
type Config struct {
	// Listen is host:port for client connections; port 0 picks a free port.
	Listen string
	// StoreDir is where JetStream keeps its file store.
	StoreDir string
	// ServerName names the server in logs and monitoring; defaults to "hubhooks".
	ServerName string
	// MaxStore bounds JetStream file storage in bytes; 0 lets the server decide.
	MaxStore int64
	// ReadyTimeout bounds how long Start waits for the server; defaults to 10s.
	ReadyTimeout time.Duration
	// Logging routes the server's own log lines to stderr when true.
	Logging bool
	// Users are the only clients the server accepts, each with its
	// password, permissions and allowed connection types. Empty accepts
	// every client without credentials: only tests run the server so.
	Users []*server.User
}

// ErrNotReady is returned when the server did not become ready in time.
var ErrNotReady = errors.New("embedded nats-server not ready")

// Start starts the server and waits until it accepts connections. Callers
// stop it with Shutdown and WaitForShutdown.
func Start(cfg Config) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("natsembed: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("natsembed: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	name := cfg.ServerName
	if name == "" {
		name = "hubhooks"
	}
	opts := &server.Options{
		ServerName:            name,
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              cfg.StoreDir,
		JetStreamMaxStore:     cfg.MaxStore,
		NoSigs:                true,
		MaxPayload:            8 * 1024 * 1024,
		DisableShortFirstPing: true,
		Users:                 cfg.Users,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: new server: %w", err)
	}
	if cfg.Logging {
		s.ConfigureLogger()
	}
	go s.Start()
	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if !s.ReadyForConnections(timeout) {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: %w after %s (is %s already in use?)", ErrNotReady, timeout, cfg.Listen)
	}
	return s, nil
}
