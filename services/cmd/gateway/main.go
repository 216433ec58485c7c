// Command gateway serves the HTTP/JSON API and the web console of the
// separate-process deployment: it calls configsvc (HUBHOOKS_CONFIG_ADDR)
// and the logger's EventLogService (HUBHOOKS_LOGS_ADDR) over gRPC, passing
// each caller's token on. hubd serves the same itself.
package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

func main() { assembly.Main("gateway", run) }

func run(ctx context.Context, args []string) error {
	p, err := assembly.New("gateway", args, settings.Defaults{HTTPAddr: "127.0.0.1:7085"})
	if err != nil {
		return err
	}
	s := p.Settings
	if s.APIAddr == "" {
		return fmt.Errorf("HUBHOOKS_API_ADDR is empty: the gateway has nothing to serve")
	}
	config, err := p.DialGateway(s.ConfigAddr)
	if err != nil {
		return err
	}
	defer config.Close()
	logs, err := p.DialGateway(s.LogsAddr)
	if err != nil {
		return err
	}
	defer logs.Close()
	p.Health.Add("configsvc", serving(config))
	p.Health.Add("logger", serving(logs))
	gw, err := p.Gateway(config, logs)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", s.APIAddr)
	if err != nil {
		return fmt.Errorf("api listen %s: %w", s.APIAddr, err)
	}
	var g errgroup.Group
	g.Go(func() error { return gw.Serve(ctx, lis) })
	g.Go(func() error { return p.ServeHTTP(ctx, nil) })
	return g.Wait()
}

// serving is a readiness check: the server at conn answers the standard
// health service with SERVING.
func serving(conn *grpc.ClientConn) func(context.Context) error {
	client := healthpb.NewHealthClient(conn)
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return fmt.Errorf("health of %s: %w", conn.Target(), err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s is %s", conn.Target(), resp.GetStatus())
		}
		return nil
	}
}
