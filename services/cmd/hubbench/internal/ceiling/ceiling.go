// Package ceiling measures the two rates the pipeline is compared with, on
// the same machine and in the same run: raw webhook POSTs per second from
// the deliverer's HTTP client to the load tool's receiver, and raw JetStream
// publish+consume per second on an embedded file-backed server.
package ceiling

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/natsembed"
	"github.com/hubhooks/hubhooks/pkg/webhook"
)

// Result is one ceiling measurement.
type Result struct {
	// Ops counts completed operations (a 2xx POST; a consumed and acked message).
	Ops int64 `json:"ops"`
	// Errors counts failed operations.
	Errors int64 `json:"errors"`
	// Seconds is the measured window.
	Seconds float64 `json:"seconds"`
	// PerSecond is Ops / Seconds.
	PerSecond float64 `json:"per_second"`
	// Concurrency is the number of concurrent senders (POST) or the
	// in-flight publish window (JetStream).
	Concurrency int `json:"concurrency"`
	// BodyBytes is the size of each POST body or message.
	BodyBytes int `json:"body_bytes"`
	// CPUSeconds is the CPU the sending process spent in the window, when
	// the sender ran in a process of its own (the POST ceiling); 0 when
	// not measured.
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
}

// CPUPerOp is CPUSeconds per operation, 0 when not measured.
func (r Result) CPUPerOp() time.Duration {
	if r.CPUSeconds <= 0 || r.Ops <= 0 {
		return 0
	}
	return time.Duration(r.CPUSeconds / float64(r.Ops) * float64(time.Second))
}

// HTTPConfig configures the POST ceiling.
type HTTPConfig struct {
	// Sender posts; pass the deliverer's own client (webhook.NewClient with
	// the same options) so the ceiling uses the same connection settings.
	Sender webhook.Sender
	// URLs are posted to round-robin (the same receiver URLs the pipeline uses).
	URLs []string
	// Body is the exact body posted.
	Body []byte
	// Secret signs every request, as the deliverer does.
	Secret string
	// Concurrency is the number of concurrent senders.
	Concurrency int
	// Duration is how long to post.
	Duration time.Duration
	// IDPrefix prefixes the webhook-id of each request.
	IDPrefix string
}

// Validate reports every problem at once.
func (c HTTPConfig) Validate() error {
	var errs []error
	if c.Sender == nil {
		errs = append(errs, errors.New("ceiling: nil sender"))
	}
	if len(c.URLs) == 0 {
		errs = append(errs, errors.New("ceiling: no URLs"))
	}
	if c.Concurrency <= 0 {
		errs = append(errs, errors.New("ceiling: concurrency must be positive"))
	}
	if c.Duration <= 0 {
		errs = append(errs, errors.New("ceiling: duration must be positive"))
	}
	if c.Secret == "" {
		errs = append(errs, errors.New("ceiling: no secret"))
	}
	return errors.Join(errs...)
}

// HTTP posts cfg.Body to cfg.URLs from cfg.Concurrency goroutines for
// cfg.Duration and returns the rate of 2xx answers.
func HTTP(ctx context.Context, cfg HTTPConfig) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var ok, failed, seq atomic.Int64
	secrets := []string{cfg.Secret}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				res := cfg.Sender.Send(ctx, webhook.Request{
					URL:       cfg.URLs[i%len(cfg.URLs)],
					WebhookID: cfg.IDPrefix + strconv.FormatInt(seq.Add(1), 10),
					Body:      cfg.Body,
					Secrets:   secrets,
				})
				switch {
				case res.Succeeded():
					ok.Add(1)
				case ctx.Err() == nil:
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	return Result{
		Ops: ok.Load(), Errors: failed.Load(), Seconds: secs, PerSecond: float64(ok.Load()) / secs,
		Concurrency: cfg.Concurrency, BodyBytes: len(cfg.Body),
	}, nil
}

// JetStreamConfig configures the JetStream ceiling.
type JetStreamConfig struct {
	// StoreDir is the embedded server's file store (a temp dir).
	StoreDir string
	// MsgBytes is the size of each message.
	MsgBytes int
	// Window bounds unacknowledged async publishes.
	Window int
	// Batch is the pull consumer's fetch batch size.
	Batch int
	// Duration is how long to publish and consume.
	Duration time.Duration
}

// Validate reports every problem at once.
func (c JetStreamConfig) Validate() error {
	var errs []error
	if c.StoreDir == "" {
		errs = append(errs, errors.New("ceiling: no store dir"))
	}
	if c.Window <= 0 || c.Batch <= 0 {
		errs = append(errs, errors.New("ceiling: window and batch must be positive"))
	}
	if c.Duration <= 0 {
		errs = append(errs, errors.New("ceiling: duration must be positive"))
	}
	return errors.Join(errs...)
}

// JetStream starts an embedded nats-server with a file store, creates one
// stream and a durable pull consumer with explicit acks, and for
// cfg.Duration publishes asynchronously (at most cfg.Window unacknowledged)
// while consuming and acking. The rate is messages consumed per second.
func JetStream(ctx context.Context, cfg JetStreamConfig) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	srv, err := natsembed.Start(natsembed.Config{Listen: "127.0.0.1:0", StoreDir: cfg.StoreDir, ServerName: "hubbench-ceiling"})
	if err != nil {
		return Result{}, err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := nats.Connect(srv.ClientURL(), nats.Name("hubbench-ceiling"))
	if err != nil {
		return Result{}, fmt.Errorf("ceiling: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.Window))
	if err != nil {
		return Result{}, fmt.Errorf("ceiling: jetstream: %w", err)
	}
	setup, cancelSetup := context.WithTimeout(ctx, 10*time.Second)
	defer cancelSetup()
	stream, err := js.CreateStream(setup, jetstream.StreamConfig{
		Name: "HUBBENCH_CEILING", Subjects: []string{"hubbench.ceiling"}, Storage: jetstream.FileStorage,
		Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return Result{}, fmt.Errorf("ceiling: stream: %w", err)
	}
	cons, err := stream.CreateOrUpdateConsumer(setup, jetstream.ConsumerConfig{
		Durable: "ceiling", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 10 * cfg.Batch,
	})
	if err != nil {
		return Result{}, fmt.Errorf("ceiling: consumer: %w", err)
	}

	var consumed, failed atomic.Int64
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := m.Ack(); err != nil {
			failed.Add(1)
			return
		}
		consumed.Add(1)
	}, jetstream.PullMaxMessages(cfg.Batch))
	if err != nil {
		return Result{}, fmt.Errorf("ceiling: consume: %w", err)
	}
	defer cc.Stop()

	payload := make([]byte, cfg.MsgBytes)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	sem := make(chan struct{}, cfg.Window)
	var wg sync.WaitGroup
	start := time.Now()
	startConsumed := consumed.Load()
	for seq := 0; runCtx.Err() == nil; seq++ {
		select {
		case sem <- struct{}{}:
		case <-runCtx.Done():
			continue
		}
		m := nats.NewMsg("hubbench.ceiling")
		m.Header.Set(jetstream.MsgIDHeader, "c"+strconv.Itoa(seq))
		m.Data = payload
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			<-sem
			failed.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-f.Ok():
			case <-f.Err():
				failed.Add(1)
			case <-time.After(10 * time.Second):
				failed.Add(1)
			}
			<-sem
		}()
	}
	ops := consumed.Load() - startConsumed
	secs := time.Since(start).Seconds()
	wg.Wait()
	return Result{
		Ops: ops, Errors: failed.Load(), Seconds: secs, PerSecond: float64(ops) / secs,
		Concurrency: cfg.Window, BodyBytes: cfg.MsgBytes,
	}, nil
}
