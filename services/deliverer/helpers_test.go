package deliverer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// testConfigs is a small in-memory ConfigSource.
type testConfigs struct {
	mu        sync.Mutex
	hubs      map[string]*hubhooksv1.HubConfig
	listeners []func(old, new *hubhooksv1.HubConfig)
	// failFetches makes the next Fetch calls fail (an unreachable configsvc).
	failFetches int
	// ready is closed once the snapshot has arrived (newTestConfigs closes
	// it; a test that starts without one replaces it before the service
	// starts and closes it later).
	ready chan struct{}
	// fetches counts Fetch calls.
	fetches atomic.Int64
}

func newTestConfigs() *testConfigs {
	ready := make(chan struct{})
	close(ready)
	return &testConfigs{hubs: map[string]*hubhooksv1.HubConfig{}, ready: ready}
}

func (c *testConfigs) Get(hub string) (*hubhooksv1.HubConfig, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failFetches > 0 {
		return nil, false // a cache that lost the hub; Fetch then fails
	}
	cfg, ok := c.hubs[hub]
	return cfg, ok
}

func (c *testConfigs) Fetch(_ context.Context, hub string, minVersion int64) (*hubhooksv1.HubConfig, error) {
	c.fetches.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failFetches > 0 {
		c.failFetches--
		return nil, errors.New("configsvc unavailable (test)")
	}
	cfg, ok := c.hubs[hub]
	if !ok {
		return &hubhooksv1.HubConfig{HubId: hub}, nil
	}
	if cfg.GetVersion() < minVersion {
		return nil, fmt.Errorf("hub %s: version %d < %d", hub, cfg.GetVersion(), minVersion)
	}
	return cfg, nil
}

func (c *testConfigs) OnChange(fn func(old, new *hubhooksv1.HubConfig)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, fn)
}

func (c *testConfigs) Ready() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

func (c *testConfigs) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// set stores a change of hub's config (made by mutate on a copy), bumping
// its version, and tells the listeners.
func (c *testConfigs) set(hub string, mutate func(*hubhooksv1.HubConfig)) *hubhooksv1.HubConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.hubs[hub]
	cur := &hubhooksv1.HubConfig{HubId: hub}
	if old != nil {
		cur = proto.Clone(old).(*hubhooksv1.HubConfig)
	}
	mutate(cur)
	cur.Version = old.GetVersion() + 1
	c.hubs[hub] = cur
	for _, fn := range c.listeners {
		fn(old, cur)
	}
	return cur
}

// eventLogFunc is an AttemptLog answering with a function.
type eventLogFunc func(ctx context.Context, hub string, ids []string, attempts []int32) ([]bool, error)

func (f eventLogFunc) RecordedAll(ctx context.Context, hub string, ids []string, attempts []int32) ([]bool, error) {
	return f(ctx, hub, ids, attempts)
}

// emptyEventLog holds no attempt: every job is attempted.
var emptyEventLog = eventLogFunc(func(_ context.Context, _ string, ids []string, _ []int32) ([]bool, error) {
	return make([]bool, len(ids)), nil
})

type testEnv struct {
	js      jetstream.JetStream
	rdb     *redis.Client
	prefix  string
	configs *testConfigs
	// eventLog is what the deliverers started by the env ask (default
	// emptyEventLog).
	eventLog AttemptLog
	records  *recorder
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	_, _, js := natstest.Start(t)
	rdb, prefix := redistest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := eventbus.Ensure(ctx, js, eventbus.DeliveriesStreamConfig(eventbus.Options{}), eventbus.AttemptsStreamConfig(eventbus.Options{})); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{js: js, rdb: rdb, prefix: prefix, configs: newTestConfigs(), eventLog: emptyEventLog}
	e.records = newRecorder(t, js)
	return e
}

// baseConfig is fast for tests.
func baseConfig(prefix string, schedule ...time.Duration) Config {
	return Config{
		RedisPrefix:     prefix,
		Schedule:        schedule,
		PollInterval:    20 * time.Millisecond,
		FetchWait:       100 * time.Millisecond,
		AckWait:         10 * time.Second,
		ShutdownTimeout: 5 * time.Second,
		QueueFullDelay:  50 * time.Millisecond,
		ClaimLease:      2 * time.Second,
	}
}

func newSender(t *testing.T, opts ...webhook.ClientOption) webhook.Sender {
	t.Helper()
	c, err := webhook.NewClient(append([]webhook.ClientOption{webhook.WithTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs a Service until the returned stop is called (or the test ends),
// and returns once it is ready.
func (e *testEnv) start(t *testing.T, cfg Config, sender webhook.Sender) (*Service, func()) {
	t.Helper()
	svc, stop := e.run(t, cfg, sender)
	poll.Until(t, 10*time.Second, "service ready", func() bool { return svc.Ready(context.Background()) == nil })
	return svc, stop
}

// run is start without waiting for the service to be ready.
func (e *testEnv) run(t *testing.T, cfg Config, sender webhook.Sender) (*Service, func()) {
	t.Helper()
	svc, err := New(cfg, e.js, e.rdb, e.configs, e.eventLog, sender)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return svc, stop
}

func (e *testEnv) addHub(hub string, urls ...*hubhooksv1.CallbackUrl) *hubhooksv1.HubConfig {
	return e.configs.set(hub, func(c *hubhooksv1.HubConfig) {
		c.EventsEnabled = true
		c.Secret = webhook.NewSecret()
		c.CallbackUrls = urls
	})
}

// publishJob publishes attempt 1 of a delivery of a new webhook event to u.
func (e *testEnv) publishJob(t *testing.T, cfg *hubhooksv1.HubConfig, u *hubhooksv1.CallbackUrl, n int, test bool) *deliveryv1.DeliveryJob {
	t.Helper()
	job, m, err := newJob(cfg, u, n, test)
	e.publish(t, m, err)
	return job
}

// newJob is publishJob's job n and its message.
func newJob(cfg *hubhooksv1.HubConfig, u *hubhooksv1.CallbackUrl, n int, test bool) (*deliveryv1.DeliveryJob, *nats.Msg, error) {
	evID := webhook.EventID(cfg.GetHubId(), fmt.Sprintf("dom-%s-%d", u.GetId(), n), 0)
	ev := webhook.Event{ID: evID, Type: "API.CREATED", HubID: cfg.GetHubId(), CreatedAt: time.Now().UTC(), Test: test}
	body, err := ev.Marshal()
	if err != nil {
		return nil, nil, err
	}
	job := &deliveryv1.DeliveryJob{
		DeliveryId: webhook.DeliveryID(evID, u.GetId()), HubId: cfg.GetHubId(), WebhookEventId: evID,
		EventType: "API.CREATED", UrlId: u.GetId(), Url: u.GetUrl(), Body: body, CreatedAt: timestamppb.Now(),
		Attempt: 1, ConfigVersion: cfg.GetVersion(), Test: test,
	}
	m, err := eventbus.NewJobMsg(job)
	return job, m, err
}

// publish publishes m (made with error err) and waits for JetStream's ack.
func (e *testEnv) publish(t *testing.T, m *nats.Msg, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
}

// publishFanout publishes attempt 1 of a new webhook event to each of urls
// as one fan-out message, as the expander does, and returns its jobs.
func (e *testEnv) publishFanout(t *testing.T, cfg *hubhooksv1.HubConfig, n int, urls ...*hubhooksv1.CallbackUrl) []*deliveryv1.DeliveryJob {
	t.Helper()
	m, err := eventbus.NewFanoutMsg(fanoutOf(t, cfg, n, urls...))
	e.publish(t, m, err)
	jobs, err := eventbus.DecodeJobs(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// hookServers starts one receiver per responder, each a callback URL
// "url_<i>" of its own.
func hookServers(t *testing.T, responders ...func(int, http.ResponseWriter, *http.Request)) ([]*hook, []*hubhooksv1.CallbackUrl) {
	t.Helper()
	var hooks []*hook
	var urls []*hubhooksv1.CallbackUrl
	for i, respond := range responders {
		h := &hook{respond: respond}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		hooks = append(hooks, h)
		urls = append(urls, &hubhooksv1.CallbackUrl{Id: fmt.Sprint("url_", i), Url: srv.URL})
	}
	return hooks, urls
}

// fanoutOf is the fan-out of webhook event n of cfg's hub to urls.
func fanoutOf(t *testing.T, cfg *hubhooksv1.HubConfig, n int, urls ...*hubhooksv1.CallbackUrl) *deliveryv1.DeliveryFanout {
	t.Helper()
	evID := webhook.EventID(cfg.GetHubId(), fmt.Sprintf("dom-fan-%d", n), 0)
	ev := webhook.Event{ID: evID, Type: "API.CREATED", HubID: cfg.GetHubId(), CreatedAt: time.Now().UTC()}
	body, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f := &deliveryv1.DeliveryFanout{Job: &deliveryv1.DeliveryJob{
		HubId: cfg.GetHubId(), WebhookEventId: evID, EventType: "API.CREATED", Body: body,
		CreatedAt: timestamppb.Now(), Attempt: 1, ConfigVersion: cfg.GetVersion(),
	}}
	for _, u := range urls {
		f.Targets = append(f.Targets, &deliveryv1.FanoutTarget{DeliveryId: webhook.DeliveryID(evID, u.GetId()), UrlId: u.GetId(), Url: u.GetUrl()})
	}
	return f
}

// recorder collects every AttemptRecorded from the attempts stream.
type recorder struct {
	mu   sync.Mutex
	recs []*deliveryv1.AttemptRecorded
}

func newRecorder(t *testing.T, js jetstream.JetStream) *recorder {
	t.Helper()
	r := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, eventbus.StreamAttempts, jetstream.ConsumerConfig{
		Durable: "test-recorder", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		recs, err := eventbus.DecodeAttempts(m.Headers(), m.Data())
		if err != nil {
			t.Errorf("decode attempt: %v", err)
			return
		}
		r.mu.Lock()
		r.recs = append(r.recs, recs...)
		r.mu.Unlock()
		_ = m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return r
}

// of returns the records of one delivery, by attempt then arrival.
func (r *recorder) of(deliveryID string) []*deliveryv1.AttemptRecorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*deliveryv1.AttemptRecorded
	for _, rec := range r.recs {
		if rec.GetJob().GetDeliveryId() == deliveryID {
			out = append(out, rec)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetAttempt() < out[j].GetAttempt() })
	return out
}

func (r *recorder) statuses(deliveryID string) []hubhooksv1.DeliveryStatus {
	var out []hubhooksv1.DeliveryStatus
	for _, rec := range r.of(deliveryID) {
		out = append(out, rec.GetStatus())
	}
	return out
}

// final reports whether the delivery has a terminal record.
func (r *recorder) final(deliveryID string) bool {
	for _, rec := range r.of(deliveryID) {
		switch rec.GetStatus() {
		case hubhooksv1.StatusSucceeded, hubhooksv1.StatusFailed, hubhooksv1.StatusDead, hubhooksv1.StatusCancelled:
			return true
		}
	}
	return false
}

// consumerDrained reports whether the deliverer consumer has nothing pending
// or unacknowledged.
func (e *testEnv) consumerDrained(t *testing.T) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := e.js.Consumer(ctx, eventbus.StreamDeliveries, eventbus.ConsumerDeliverer)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return false
		}
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}

// hook is a test receiver that counts POSTs and answers with respond.
type hook struct {
	mu      sync.Mutex
	posts   int
	headers []http.Header
	bodies  [][]byte
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.posts++
	n := h.posts
	h.headers = append(h.headers, r.Header.Clone())
	h.bodies = append(h.bodies, body)
	h.mu.Unlock()
	if h.respond != nil {
		h.respond(n, w, r)
	}
}

func (h *hook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.posts
}

type deliveryJob = deliveryv1.DeliveryJob

const ms = time.Millisecond

// status is a responder that answers every POST with code.
func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// newStore is the retry store of the env's deliverers.
func (e *testEnv) newStore() *retryStore { return newRetryStore(e.rdb, e.prefix, 0, 0) }

// hangingServer starts a receiver, callback URL id, whose POSTs hang until
// unblock is called or their request ends. unblock may be called more than
// once; it runs at cleanup too, before the server closes.
func hangingServer(t *testing.T, id string) (h *hook, u *hubhooksv1.CallbackUrl, unblock func()) {
	t.Helper()
	release := make(chan struct{})
	var once sync.Once
	unblock = func() { once.Do(func() { close(release) }) }
	h = &hook{respond: func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(unblock)
	return h, &hubhooksv1.CallbackUrl{Id: id, Url: srv.URL}, unblock
}
