// Package hubd runs the four hubhooks services — configsvc, expander,
// deliverer and logger — in one process, by default on an embedded NATS
// server with JetStream. It is what hubd runs and what the end-to-end tests
// start in-process.
package hubd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/configsvc"
	"github.com/hubhooks/hubhooks/services/gateway"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/logger"
)

// Process is a running all-in-one process.
type Process struct {
	// GRPCAddr serves ConfigService, EventLogService and OperationsService.
	GRPCAddr string
	// HTTPAddr serves /metrics, /healthz and /readyz.
	HTTPAddr string
	// APIAddr serves the HTTP/JSON API and the web console; empty when
	// HUBHOOKS_API_ADDR is empty.
	APIAddr string
	// NATSURL is the NATS the services use (the embedded one by default),
	// without credentials.
	NATSURL string
	// PublisherURL is the embedded NATS's URL with the publisher's user
	// and password; empty with an external NATS.
	PublisherURL string

	done chan struct{}
	err  error
}

// Wait blocks until the process has stopped and returns why.
func (h *Process) Wait() error {
	<-h.done
	return h.err
}

// Done is closed when the process has stopped.
func (h *Process) Done() <-chan struct{} { return h.done }

// Start starts everything and returns once the gRPC and HTTP servers listen.
// The process runs until ctx ends, then drains consumers, finishes in-flight
// POSTs and stops within the shutdown timeout.
func Start(ctx context.Context, p *assembly.Parts) (*Process, error) {
	s := p.Settings
	h := &Process{done: make(chan struct{})}
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(err error) (*Process, error) { cleanup(); return nil, err }

	rules, err := p.Rules()
	if err != nil {
		return fail(err)
	}
	natsURL := s.NATSURL
	natsOpts, err := p.NATSCredentials()
	if err != nil {
		return fail(err)
	}
	if natsURL == "" {
		emb, err := startEmbedded(s, rules.Subjects(), p.Log)
		if err != nil {
			return fail(err)
		}
		cleanups = append(cleanups, emb.stop)
		natsURL, h.PublisherURL = emb.url, emb.publisherURL
		// The services reach the embedded server in memory, not over a
		// loopback socket; outside publishers use the publisher URL.
		natsOpts = emb.connectOptions()
	}
	h.NATSURL = natsURL

	stopTracing, err := p.StartTracing(ctx)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, stopTracing)

	nc, js, err := p.NATS(natsURL, natsOpts...)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { assembly.DrainNATS(nc) })
	watched := append(append(eventbus.ExpanderConsumers(),
		eventbus.ConsumerRef{Stream: eventbus.StreamAttempts, Consumer: eventbus.ConsumerLogger}),
		eventbus.DelivererConsumers()...)
	if err := p.WatchLag(js, watched...); err != nil {
		return fail(err)
	}

	rdb, err := p.Redis(ctx)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { _ = rdb.Close() })

	guard, err := p.Guard()
	if err != nil {
		return fail(err)
	}
	sender, err := p.Sender(guard)
	if err != nil {
		return fail(err)
	}
	tokens, err := p.TokenStore(rdb)
	if err != nil {
		return fail(err)
	}
	gs, err := p.GRPCServer(tokens)
	if err != nil {
		return fail(err)
	}

	cfgSvc, err := configsvc.New(p.ConfigSvcConfig(rules), rdb, js, guard, sender, tokens)
	if err != nil {
		return fail(err)
	}
	cfgSvc.Register(gs.Server)
	logSvc, err := logger.New(p.LoggerConfig(), js, rdb)
	if err != nil {
		return fail(err)
	}
	logSvc.Register(gs.Server)

	lis, err := net.Listen("tcp", s.GRPCAddr)
	if err != nil {
		return fail(fmt.Errorf("grpc listen %s: %w", s.GRPCAddr, err))
	}
	cleanups = append(cleanups, func() { _ = lis.Close() }) // closed already after serving
	h.GRPCAddr = lis.Addr().String()
	httpLis, err := net.Listen("tcp", s.HTTPAddr)
	if err != nil {
		return fail(fmt.Errorf("http listen %s: %w", s.HTTPAddr, err))
	}
	cleanups = append(cleanups, func() { _ = httpLis.Close() })
	h.HTTPAddr = httpLis.Addr().String()

	conn, err := p.DialConfig(h.GRPCAddr)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { _ = conn.Close() })
	var gw *gateway.Gateway
	var apiLis net.Listener
	if s.APIAddr != "" {
		// The API calls this process's own gRPC server, so that every call
		// passes the same authentication as a gRPC client's.
		apiConn, err := p.DialGateway(h.GRPCAddr)
		if err != nil {
			return fail(err)
		}
		cleanups = append(cleanups, func() { _ = apiConn.Close() })
		if gw, err = p.Gateway(apiConn, apiConn); err != nil {
			return fail(err)
		}
		if apiLis, err = net.Listen("tcp", s.APIAddr); err != nil {
			return fail(fmt.Errorf("api listen %s: %w", s.APIAddr, err))
		}
		cleanups = append(cleanups, func() { _ = apiLis.Close() })
		h.APIAddr = apiLis.Addr().String()
	}
	cache, err := p.ConfigCache(conn)
	if err != nil {
		return fail(err)
	}
	opsSvc, err := p.Operations(js, rdb, logSvc.Store(), hubhooksv1.NewConfigServiceClient(conn), rules)
	if err != nil {
		return fail(err)
	}
	opsSvc.Register(gs.Server)

	expSvc, err := p.Expander(js, rdb, cache, rules)
	if err != nil {
		return fail(err)
	}
	delSvc, err := p.Deliverer(js, rdb, cache, sender)
	if err != nil {
		return fail(err)
	}
	for name, r := range map[string]interface{ Ready(context.Context) error }{"configsvc": cfgSvc, "logger": logSvc, "expander": expSvc, "deliverer": delSvc, "operations": opsSvc} {
		p.Health.Add(name, r.Ready)
	}

	// Workers stop with ctx and drain; the gRPC server and the cache stop
	// after them (the deliverer needs config to the end), NATS last. A
	// worker that fails stops the others, and so hubd, with its error.
	workers, workCtx := errgroup.WithContext(ctx)
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	var servers errgroup.Group
	servers.Go(func() error { return gs.ServeListener(serveCtx, lis, s.ShutdownTimeout) })
	servers.Go(func() error { return p.ServeHTTP(serveCtx, httpLis) })
	if gw != nil {
		// The API stops with the workers, before the gRPC server it calls.
		servers.Go(func() error { return gw.Serve(workCtx, apiLis) })
	}
	servers.Go(func() error { return cfgSvc.Run(serveCtx) })
	servers.Go(func() error { return opsSvc.Run(serveCtx) })
	servers.Go(func() error {
		// Watch once configsvc reads its change feed, so the first watch
		// does not bounce off a service still starting.
		for serveCtx.Err() == nil && cfgSvc.Ready(serveCtx) != nil {
			select {
			case <-serveCtx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		return ignoreCanceled(cache.Run(serveCtx))
	})
	workers.Go(func() error { return logSvc.Run(workCtx) })
	workers.Go(func() error { return expSvc.Run(workCtx) })
	workers.Go(func() error { return delSvc.Run(workCtx) })
	go func() {
		werr := workers.Wait()
		stopServing()
		serr := servers.Wait()
		cleanup()
		h.err = errors.Join(werr, serr)
		if h.err != nil {
			p.Log.Error("hubd stopped", "err", h.err)
		} else {
			p.Log.Info("hubd stopped")
		}
		close(h.done)
	}()
	p.Log.Info("hubd started", "grpc", h.GRPCAddr, "http", h.HTTPAddr, "nats", h.NATSURL, "console", consoleURL(h.APIAddr))
	return h, nil
}

// consoleURL is where the web console is, for the start-up log line.
func consoleURL(apiAddr string) string {
	if apiAddr == "" {
		return "(not served: HUBHOOKS_API_ADDR is empty)"
	}
	return "http://" + apiAddr + "/"
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
