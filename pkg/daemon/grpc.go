package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// GRPCConfig configures a gRPC server.
type GRPCConfig struct {
	Log *slog.Logger
	// Unary and Stream interceptors run after panic recovery, in order
	// (authentication goes here).
	Unary  []grpc.UnaryServerInterceptor
	Stream []grpc.StreamServerInterceptor
	// MaxRecvMsgSize bounds request size; default 4 MiB.
	MaxRecvMsgSize int
	// Options are appended (TLS credentials go here).
	Options []grpc.ServerOption
	// Companion, when set, runs while the server serves and is stopped
	// with it (the authenticator's watch of revoked tokens goes here).
	Companion func(ctx context.Context) error
}

// GRPCServer is a gRPC server with the standard health service and server
// reflection (of its own services only) registered.
type GRPCServer struct {
	*grpc.Server
	Health    *health.Server
	log       *slog.Logger
	companion func(ctx context.Context) error
}

// NewGRPCServer builds the server. Register services on it, then Serve.
func NewGRPCServer(cfg GRPCConfig) *GRPCServer {
	if cfg.MaxRecvMsgSize <= 0 {
		cfg.MaxRecvMsgSize = 4 << 20
	}
	unary := append([]grpc.UnaryServerInterceptor{recoverUnary(cfg.Log)}, cfg.Unary...)
	stream := append([]grpc.StreamServerInterceptor{recoverStream(cfg.Log)}, cfg.Stream...)
	opts := append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
	}, cfg.Options...)
	s := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	registerReflection(s)
	return &GRPCServer{Server: s, Health: h, log: cfg.Log, companion: cfg.Companion}
}

// Serve listens on addr and serves until ctx ends; then it reports
// NOT_SERVING, stops accepting, lets running calls finish for up to grace,
// and stops hard after that.
func (g *GRPCServer) Serve(ctx context.Context, addr string, grace time.Duration) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("grpc listen %s: %w", addr, err)
	}
	return g.ServeListener(ctx, lis, grace)
}

// ServeListener is Serve on an existing listener.
func (g *GRPCServer) ServeListener(ctx context.Context, lis net.Listener, grace time.Duration) error {
	g.log.Info("grpc listening", "addr", lis.Addr().String())
	if g.companion != nil {
		cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := g.companion(cctx); err != nil {
				g.log.Error("grpc server companion stopped", "err", err)
			}
		}()
		defer func() { stop(); <-done }()
	}
	errc := make(chan error, 1)
	go func() { errc <- g.Server.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	g.Health.Shutdown()
	done := make(chan struct{})
	go func() { g.Server.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		g.log.Warn("grpc graceful stop timed out; stopping hard", "grace", grace)
		g.Server.Stop()
	}
	return nil
}

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("grpc handler panicked", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("grpc stream handler panicked", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(srv, ss)
	}
}
