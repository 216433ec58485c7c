package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/procstat"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/report"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/sink"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/stages"
)

// bench is what one run keeps from start to end, whatever the scenario:
// the receiver, Redis, the event factory and the log. Scenarios start one
// or more systems under test from it (startSystem).
type bench struct {
	c        *benchConfig
	logf     func(string, ...any)
	runID    string
	rules    *cascade.Rules
	factory  *eventFactory
	perEvent int64 // webhook events per domain event
	rx       *sink.Sink
	result   *report.Result

	redisURL string
	redisPID int
	rdb      *redis.Client // nil when Redis is unreachable (rdbErr)
	rdbErr   error
	systems  int
	// traces times the paced traffic through hubd's stages (-trace); nil
	// otherwise.
	traces  *stages.Collector
	cleanup []func()
}

// newBench prepares a run: the event factory, the receiver (no listener
// yet: scenarios take URLs with listen), and Redis (a private one unless
// -own-redis=false or there is no redis-server on PATH).
func newBench(ctx context.Context, c *benchConfig, log io.Writer) (*bench, error) {
	b := &bench{
		c:     c,
		logf:  func(format string, a ...any) { fmt.Fprintf(log, "hubbench: "+format+"\n", a...) },
		runID: newRunID(),
		rules: cascade.Default(),
		rx:    sink.New(http.StatusOK),
	}
	var err error
	if b.factory, err = newEventFactory(b.rules, c.event, c.payload); err != nil {
		return nil, err
	}
	probe := b.factory.event(sink.EventID("p", 0, time.Now()), "h", 0, time.Now())
	emitted, err := b.rules.Expand(c.event, probe.GetData())
	if err != nil {
		return nil, fmt.Errorf("expand %s: %w", c.event, err)
	}
	if len(emitted) == 0 {
		return nil, fmt.Errorf("-event %s emits no webhook events", c.event)
	}
	b.perEvent = int64(len(emitted))
	b.result = &report.Result{
		Scenario: c.scenario, Version: webhook.Version, Started: time.Now().UTC(), Machine: report.ReadMachine(runtime.Version()),
		Params: report.Params{
			Target: c.target, DurationSec: c.duration.Seconds(), Rate: c.rate, Hubs: c.hubs, URLsPerHub: c.urls,
			PayloadBytes: c.payload, Event: c.event, Window: c.window, EmittedPerEvent: len(emitted),
			TailWindowMs: float64(c.tailWindow.Microseconds()) / 1000,
		},
	}
	b.cleanup = append(b.cleanup, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.rx.Close(sctx)
	})

	if c.trace {
		if b.traces, err = stages.Start(); err != nil {
			return nil, fmt.Errorf("trace collector: %w", err)
		}
		b.cleanup = append(b.cleanup, b.traces.Stop)
	}

	b.redisURL = c.redisURL
	if c.ownRedis && c.target == "hubd" {
		r, err := startOwnRedis(ctx)
		switch {
		case err == nil:
			b.redisURL, b.redisPID = r.url, r.pid
			b.cleanup = append(b.cleanup, r.stop)
			b.logf("private redis-server pid %d at %s", r.pid, r.url)
		case errors.Is(err, exec.ErrNotFound):
			b.result.Notes = append(b.result.Notes, "no redis-server on PATH: using the shared Redis at -redis-url, whose CPU includes other work")
		default:
			b.close()
			return nil, err
		}
	}
	b.rdb, b.rdbErr = connectRedis(ctx, b.redisURL)
	if b.rdb != nil {
		b.cleanup = append(b.cleanup, func() { _ = b.rdb.Close() })
		if b.redisPID == 0 {
			if pid, err := redisPID(ctx, b.rdb); err == nil {
				b.redisPID = pid
			}
		}
	}
	return b, nil
}

// close undoes newBench, last step first.
func (b *bench) close() {
	for i := len(b.cleanup) - 1; i >= 0; i-- {
		b.cleanup[i]()
	}
	b.cleanup = nil
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// listen opens n more receiver URLs.
func (b *bench) listen(n int) ([]string, error) { return b.rx.Listen(n) }

// system is one system under test and the connections that drive it.
type system struct {
	b  *bench
	tg *target
	nc *nats.Conn
	js jetstream.JetStream
	// burstJS publishes bursts on a connection of its own: a burst's
	// async publishes awaiting their acks fill the connection's window,
	// and other hubs' publishes would wait behind them in this tool (in
	// production, hubs publish from processes of their own).
	burstNC *nats.Conn
	burstJS jetstream.JetStream
	conn    *grpc.ClientConn
	config  hubhooksv1.ConfigServiceClient
	procs   []proc // the target's, then Redis and this tool
	hubs    int    // hubs configured so far (their ids' suffix)
	done    bool
}

// startSystem starts the system under test (hubd, or attaches to the
// external deployment) and connects to it.
func (b *bench) startSystem(ctx context.Context, pprof bool) (*system, error) {
	c := b.c
	b.systems++
	s := &system{b: b}
	switch c.target {
	case "hubd":
		tg, err := startHubd(ctx, hubdOptions{
			bin: c.hubdBin, redisURL: b.redisURL, prefix: fmt.Sprintf("hubbench:%s-%d:", b.runID, b.systems),
			pprof: pprof, keep: c.keep, log: b.logWriter(), traces: b.traces,
		})
		if err != nil {
			return nil, err
		}
		s.tg = tg
	default:
		procs, err := parsePids(c.pids)
		if err != nil {
			return nil, err
		}
		s.tg = &target{natsURL: c.natsURL, grpcAddr: c.grpcAddr, prefix: c.redisPrefix, procs: procs, stop: func() error { return nil }}
	}
	s.procs = append(s.procs, s.tg.procs...)
	if b.redisPID != 0 {
		if _, err := procstat.Read(b.redisPID); err == nil {
			s.procs = append(s.procs, proc{name: "redis-server", pid: b.redisPID})
		}
	}
	s.procs = append(s.procs, proc{name: toolProcName, pid: os.Getpid()})

	var err error
	if s.nc, err = nats.Connect(s.tg.natsURL, nats.Name("hubbench"), nats.MaxReconnects(-1)); err != nil {
		_ = s.stop(ctx)
		return nil, fmt.Errorf("connect nats %s: %w", s.tg.natsURL, err)
	}
	if s.js, err = jetstream.New(s.nc, jetstream.WithPublishAsyncMaxPending(c.window+256+16)); err != nil {
		_ = s.stop(ctx)
		return nil, err
	}
	if s.burstNC, err = nats.Connect(s.tg.natsURL, nats.Name("hubbench-burst"), nats.MaxReconnects(-1)); err != nil {
		_ = s.stop(ctx)
		return nil, fmt.Errorf("connect nats %s: %w", s.tg.natsURL, err)
	}
	if s.burstJS, err = jetstream.New(s.burstNC, jetstream.WithPublishAsyncMaxPending(c.fair.burstWindow+16)); err != nil {
		_ = s.stop(ctx)
		return nil, err
	}
	if s.conn, err = dialGRPC(s.tg.grpcAddr, c.adminToken); err != nil {
		_ = s.stop(ctx)
		return nil, err
	}
	s.config = hubhooksv1.NewConfigServiceClient(s.conn)
	return s, nil
}

// toolProcName names this tool in the process rows.
const toolProcName = "hubbench (this tool)"

// logWriter writes the bench's log lines (for hubd's start message).
func (b *bench) logWriter() io.Writer { return logFunc(b.logf) }

type logFunc func(string, ...any)

func (f logFunc) Write(p []byte) (int, error) {
	f("%s", strings.TrimSuffix(strings.TrimPrefix(string(p), "hubbench: "), "\n"))
	return len(p), nil
}

// stop closes the connections, stops hubd and deletes its Redis keys (not
// an external deployment's). It runs once.
func (s *system) stop(ctx context.Context) error {
	if s.done {
		return nil
	}
	s.done = true
	if s.conn != nil {
		_ = s.conn.Close()
	}
	for _, nc := range []*nats.Conn{s.nc, s.burstNC} {
		if nc != nil {
			nc.Close()
		}
	}
	if s.tg == nil {
		return nil
	}
	err := s.tg.stop()
	if s.b.c.target == "hubd" && s.b.rdb != nil && !s.b.c.keep {
		deleteKeys(context.WithoutCancel(ctx), s.b.rdb, s.tg.prefix, 60*time.Second)
	}
	return err
}

// metricsURLs are the /metrics URLs of the system: -metrics, and hubd's.
func (s *system) metricsURLs() []string {
	urls := strings.FieldsFunc(s.b.c.metricsURLs, func(r rune) bool { return r == ',' })
	if s.tg.httpAddr != "" {
		urls = append(urls, "http://"+s.tg.httpAddr+"/metrics")
	}
	return urls
}

func dialGRPC(addr, token string) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerCredentials(token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}
