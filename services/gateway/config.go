package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Gateway. Zero values take the defaults named on each
// field.
type Config struct {
	// LoopbackOnly refuses API calls from other machines, as the gRPC
	// servers do when no admin token is configured: the gateway's own gRPC
	// calls come from loopback, so it must apply the rule itself.
	LoopbackOnly bool
	// MaxBodyBytes bounds a request body; larger ones get 400. Default
	// 4 MiB, the gRPC servers' message limit.
	MaxBodyBytes int64
	// WriteTimeout bounds one write of a response (each message of a
	// stream): a client that reads nothing for this long is dropped.
	// Default 30s.
	WriteTimeout time.Duration
	// ShutdownTimeout bounds the wait for running requests when Serve's
	// context ends (streams end at once). Default 10s.
	ShutdownTimeout time.Duration
	// Log receives server errors (never tokens). Required.
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 4 << 20
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Log == nil {
		errs = append(errs, errors.New("gateway: Log is required"))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("gateway: MaxBodyBytes %d must not be negative", c.MaxBodyBytes))
	}
	if c.WriteTimeout < 0 || c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("gateway: timeouts must not be negative"))
	}
	return errors.Join(errs...)
}
