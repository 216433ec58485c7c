package deliverer

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

const ms = time.Millisecond

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	guard, err := urlguard.New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		respond   func(int, http.ResponseWriter, *http.Request)
		schedule  []time.Duration
		sender    []webhook.ClientOption
		test      bool
		want      []hubhooksv1.DeliveryStatus
		wantPosts int
	}{
		{
			name: "2xx succeeds", respond: status(200), schedule: []time.Duration{0, 50 * ms},
			want: []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded}, wantPosts: 1,
		},
		{
			name: "flaky endpoint succeeds on attempt N+1",
			respond: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n <= 3 {
					w.WriteHeader(500)
				}
			},
			schedule:  []time.Duration{0, 50 * ms, 100 * ms, 150 * ms},
			want:      []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusRetrying, hubhooksv1.StatusRetrying, hubhooksv1.StatusSucceeded},
			wantPosts: 4,
		},
		{
			name: "always 500 ends dead after len(schedule) attempts", respond: status(500),
			schedule:  []time.Duration{0, 50 * ms, 100 * ms, 150 * ms},
			want:      []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusRetrying, hubhooksv1.StatusRetrying, hubhooksv1.StatusDead},
			wantPosts: 4,
		},
		{
			name: "410 Gone stops after one attempt", respond: status(410),
			schedule: []time.Duration{0, 50 * ms, 100 * ms}, want: []hubhooksv1.DeliveryStatus{hubhooksv1.StatusFailed}, wantPosts: 1,
		},
		{
			name: "3xx is a failure and is not followed",
			respond: func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://example.invalid/elsewhere", http.StatusMovedPermanently)
			},
			schedule: []time.Duration{0, 50 * ms}, want: []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusDead}, wantPosts: 2,
		},
		{
			name: "URL refused by the guard fails without retry", respond: status(200),
			schedule: []time.Duration{0, 50 * ms}, sender: []webhook.ClientOption{webhook.WithGuard(guard)},
			want: []hubhooksv1.DeliveryStatus{hubhooksv1.StatusFailed}, wantPosts: 0,
		},
		{
			name: "failed test job is not retried", respond: status(500), test: true,
			schedule: []time.Duration{0, 50 * ms}, want: []hubhooksv1.DeliveryStatus{hubhooksv1.StatusFailed}, wantPosts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			h := &hook{respond: tt.respond}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL + "/hook"}
			cfg := e.addHub("hub1", u)
			e.start(t, baseConfig(e.prefix, tt.schedule...), newSender(t, tt.sender...))
			job := e.publishJob(t, cfg, u, 1, tt.test)

			poll.Until(t, 15*time.Second, "a terminal record", func() bool { return e.records.final(job.GetDeliveryId()) })
			poll.Until(t, 5*time.Second, "the job acked", func() bool { return e.consumerDrained(t) })
			recs := e.records.of(job.GetDeliveryId())
			if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, tt.want) {
				t.Fatalf("statuses %v, want %v", got, tt.want)
			}
			if h.count() != tt.wantPosts {
				t.Fatalf("POSTs %d, want %d", h.count(), tt.wantPosts)
			}
			for i, rec := range recs {
				if rec.GetAttempt() != int32(i+1) {
					t.Errorf("record %d has attempt %d", i, rec.GetAttempt())
				}
				if rec.GetStatus() == hubhooksv1.StatusRetrying && rec.GetNextAttemptAt() == nil {
					t.Errorf("retrying record %d without next_attempt_at", i)
				}
				if rec.GetRequest().GetHeaders()[webhook.HeaderSecret] != webhook.MaskSecret {
					t.Errorf("record %d: secret header not masked: %q", i, rec.GetRequest().GetHeaders()[webhook.HeaderSecret])
				}
				if strings.Contains(rec.String(), cfg.GetSecret()) {
					t.Errorf("record %d contains the secret", i)
				}
			}
			if n, err := e.newStore().pending(context.Background()); err != nil || n != 0 {
				t.Errorf("pending retries %d (%v), want 0", n, err)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			for i, hdr := range h.headers {
				if err := webhook.Verify(cfg.GetSecret(), hdr, h.bodies[i], time.Minute, time.Now()); err != nil {
					t.Errorf("POST %d: signature: %v", i, err)
				}
				if hdr.Get(webhook.HeaderID) != job.GetWebhookEventId() {
					t.Errorf("POST %d: webhook-id %q", i, hdr.Get(webhook.HeaderID))
				}
			}
		})
	}
}

func (e *testEnv) newStore() *retryStore { return newRetryStore(e.rdb, e.prefix) }

func TestRetryAfterHonouredWithinBounds(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := &hook{respond: func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(429)
		}
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 10*ms, 10*ms)
	c.MaxRetryAfter = 700 * ms
	e.start(t, c, newSender(t))
	job := e.publishJob(t, cfg, u, 1, false)
	poll.Until(t, 10*time.Second, "success", func() bool { return e.records.final(job.GetDeliveryId()) })
	recs := e.records.of(job.GetDeliveryId())
	if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusSucceeded}) {
		t.Fatalf("statuses %v", got)
	}
	first := recs[0]
	wait := first.GetNextAttemptAt().AsTime().Sub(first.GetStartedAt().AsTime())
	// Retry-After (1h) beats the schedule (10ms) but is capped at 700ms.
	if wait < 700*ms || wait > 700*ms+time.Duration(first.GetResponse().GetDurationMs())*ms+200*ms {
		t.Fatalf("next attempt %s after the first, want about 700ms", wait)
	}
	if second := recs[1].GetStartedAt().AsTime(); second.Before(first.GetNextAttemptAt().AsTime()) {
		t.Fatalf("second attempt at %s, before next_attempt_at %s", second, first.GetNextAttemptAt().AsTime())
	}
}

func TestCancelPendingRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*hubhooksv1.HubConfig)
	}{
		{"URL removed", func(c *hubhooksv1.HubConfig) { c.CallbackUrls = c.CallbackUrls[1:] }},
		{"triggers disabled", func(c *hubhooksv1.HubConfig) { c.EventsEnabled = false }},
		{"URL disabled", func(c *hubhooksv1.HubConfig) { c.CallbackUrls[0].Disabled = true }},
		{"type taken away", func(c *hubhooksv1.HubConfig) { c.CallbackUrls[0].EventTypes = []string{"API.UPDATED"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			h := &hook{respond: status(500)}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			ua := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL + "/a"}
			ub := &hubhooksv1.CallbackUrl{Id: "url_b", Url: srv.URL + "/b"}
			cfg := e.addHub("hub1", ua, ub)
			// Long enough that the retry is still pending when the config changes.
			e.start(t, baseConfig(e.prefix, 0, 30*time.Second, 30*time.Second), newSender(t))
			job := e.publishJob(t, cfg, ua, 1, false)
			poll.Until(t, 10*time.Second, "first attempt recorded", func() bool {
				return slices.Equal(e.records.statuses(job.GetDeliveryId()), []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying})
			})
			poll.Until(t, 5*time.Second, "retry stored", func() bool {
				n, _ := e.newStore().pending(context.Background())
				return n == 1
			})

			e.configs.set("hub1", tc.change)

			poll.Until(t, 10*time.Second, "cancelled record", func() bool { return e.records.final(job.GetDeliveryId()) })
			recs := e.records.of(job.GetDeliveryId())
			last := recs[len(recs)-1]
			if last.GetStatus() != hubhooksv1.StatusCancelled || last.GetAttempt() != 2 {
				t.Fatalf("last record %s attempt %d, want cancelled attempt 2", last.GetStatus(), last.GetAttempt())
			}
			// Nothing left anywhere that could POST again.
			poll.Until(t, 5*time.Second, "retry and outbox empty", func() bool {
				n1, _ := e.rdb.ZCard(context.Background(), e.prefix+"{retry}:due").Result()
				n2, _ := e.rdb.ZCard(context.Background(), e.prefix+"{retry}:cancel:due").Result()
				n3, _ := e.rdb.HLen(context.Background(), e.prefix+"{retry}:cancel:jobs").Result()
				n4, _ := e.rdb.HLen(context.Background(), e.prefix+"{retry}:hub:hub1").Result()
				return n1+n2+n3+n4 == 0
			})
			poll.Until(t, 5*time.Second, "job acked", func() bool { return e.consumerDrained(t) })
			if h.count() != 1 {
				t.Fatalf("POSTs %d, want 1", h.count())
			}
		})
	}
}

func TestJobForRemovedURLIsCancelled(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := &hook{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ua := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL}
	cfg := e.addHub("hub1", ua)
	e.configs.set("hub1", func(c *hubhooksv1.HubConfig) { c.CallbackUrls = nil })
	e.start(t, baseConfig(e.prefix, 0, 10*ms), newSender(t))
	job := e.publishJob(t, cfg, ua, 1, false)
	poll.Until(t, 10*time.Second, "terminal record", func() bool { return e.records.final(job.GetDeliveryId()) })
	if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusCancelled}) {
		t.Fatalf("statuses %v", got)
	}
	if h.count() != 0 {
		t.Fatalf("POSTs %d, want 0", h.count())
	}
}

// A deliverer started before its config cache has the snapshot takes no job
// until the snapshot is there (each job would otherwise ask configsvc, or
// fail while configsvc starts), and then delivers.
func TestFetchWaitsForConfigSnapshot(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, nil)
	h, u := hooks[0], urls[0]
	cfg := e.addHub("hub1", u)
	job := e.publishJob(t, cfg, u, 1, false)
	e.configs.ready = make(chan struct{})
	e.run(t, baseConfig(e.prefix, 0), newSender(t))
	time.Sleep(500 * time.Millisecond) // five fetch waits: time enough to take the job
	if n := h.count(); n != 0 {
		t.Fatalf("%d POSTs before the config snapshot", n)
	}
	close(e.configs.ready)
	poll.Until(t, 10*time.Second, "delivered once the snapshot is there", func() bool { return e.records.final(job.GetDeliveryId()) })
	if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded}) || h.count() != 1 {
		t.Fatalf("statuses %v, POSTs %d", got, h.count())
	}
	if n := e.configs.fetches.Load(); n != 0 {
		t.Fatalf("%d config fetches: the job should have found its hub in the cache", n)
	}
}

func TestRestartResumesPendingRetries(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := &hook{respond: func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(503)
		}
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 2*time.Second)
	c.Jitter = -1
	_, stop := e.start(t, c, newSender(t))
	job := e.publishJob(t, cfg, u, 1, false)
	poll.Until(t, 10*time.Second, "retrying", func() bool {
		return slices.Equal(e.records.statuses(job.GetDeliveryId()), []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying})
	})
	stop()
	if n, err := e.newStore().pending(context.Background()); err != nil || n != 1 {
		t.Fatalf("after stop: pending retries %d (%v), want 1", n, err)
	}
	if !e.consumerDrained(t) {
		t.Fatal("job of attempt 1 not acked before stop returned")
	}

	e.start(t, c, newSender(t))
	poll.Until(t, 10*time.Second, "success after restart", func() bool { return e.records.final(job.GetDeliveryId()) })
	if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusSucceeded}) {
		t.Fatalf("statuses %v", got)
	}
	if h.count() != 2 {
		t.Fatalf("POSTs %d, want 2", h.count())
	}
}

func TestStuckEndpointFailsFast(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := &hook{respond: func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}}
	hangSrv := httptest.NewServer(hang)
	t.Cleanup(hangSrv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_hang", Url: hangSrv.URL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, time.Hour)
	c.PerURLConcurrency = 2
	c.PerURLQueue = 2
	e.start(t, c, newSender(t, webhook.WithTimeout(time.Minute)))
	for i := range 4 { // two POSTs hang, two wait in the queue
		e.publishJob(t, cfg, u, i, false)
	}
	poll.Until(t, 10*time.Second, "the hanging endpoint's slots taken", func() bool { return hang.count() == 2 })
	time.Sleep(1200 * time.Millisecond) // the lane has finished nothing for a second: stuck
	job := e.publishJob(t, cfg, u, 99, false)
	poll.Until(t, 10*time.Second, "the stuck URL's next job recorded", func() bool { return len(e.records.of(job.GetDeliveryId())) == 1 })
	rec := e.records.of(job.GetDeliveryId())[0]
	if rec.GetStatus() != hubhooksv1.StatusRetrying || rec.GetResponse().GetError() != ErrEndpointStuck.Error() {
		t.Fatalf("record: status %q error %q, want retrying with %q", rec.GetStatus(), rec.GetResponse().GetError(), ErrEndpointStuck)
	}
	if hang.count() != 2 {
		t.Fatalf("POSTs %d, want 2: the stuck URL's next job must not be POSTed", hang.count())
	}
}

func TestHangingEndpointDoesNotDelayHealthyOne(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	hang := &hook{respond: func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}}
	healthy := &hook{respond: status(204)}
	hangSrv := httptest.NewServer(hang)
	okSrv := httptest.NewServer(healthy)
	t.Cleanup(okSrv.Close)
	t.Cleanup(hangSrv.Close)
	t.Cleanup(unblock) // runs before the servers close
	ua := &hubhooksv1.CallbackUrl{Id: "url_hang", Url: hangSrv.URL}
	ub := &hubhooksv1.CallbackUrl{Id: "url_ok", Url: okSrv.URL}
	cfg := e.addHub("hub1", ua, ub)
	c := baseConfig(e.prefix, 0, 10*ms)
	c.Concurrency = 8
	c.PerURLConcurrency = 2
	c.PerURLQueue = 2
	c.PerHubConcurrency = 4
	e.start(t, c, newSender(t, webhook.WithTimeout(time.Minute)))

	// The hanging URL's jobs go first, more than its slots and queue hold.
	var hung []string
	for i := range 10 {
		hung = append(hung, e.publishJob(t, cfg, ua, i, false).GetDeliveryId())
	}
	poll.Until(t, 10*time.Second, "the hanging endpoint's slots taken", func() bool { return hang.count() == 2 })
	var ok []string
	for i := range 20 {
		ok = append(ok, e.publishJob(t, cfg, ub, i, false).GetDeliveryId())
	}
	poll.Until(t, 20*time.Second, "every healthy delivery succeeded", func() bool {
		for _, id := range ok {
			if !slices.Equal(e.records.statuses(id), []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded}) {
				return false
			}
		}
		return true
	})
	// The hanging endpoint still holds its first POSTs: none of its
	// deliveries has been recorded, and no more than its slots were used.
	for _, id := range hung {
		if got := e.records.statuses(id); len(got) != 0 {
			t.Fatalf("hanging delivery %s recorded %v before release", id, got)
		}
	}
	if n := hang.count(); n != 2 {
		t.Fatalf("hanging endpoint got %d concurrent POSTs, want its limit 2", n)
	}

	unblock()
	poll.Until(t, 20*time.Second, "hanging deliveries completed after release", func() bool {
		for _, id := range hung {
			if !e.records.final(id) {
				return false
			}
		}
		return true
	})
}

func TestSecretRotationSignsWithBoth(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := &hook{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL}
	e.addHub("hub1", u)
	oldSecret, _ := e.configs.Get("hub1")
	newSecret := webhook.NewSecret()
	cfg := e.configs.set("hub1", func(c *hubhooksv1.HubConfig) {
		c.PreviousSecrets = []*hubhooksv1.PreviousSecret{
			{Secret: c.Secret, ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))},
			{Secret: webhook.NewSecret(), ExpiresAt: timestamppb.New(time.Now().Add(-time.Hour))}, // expired
		}
		c.Secret = newSecret
	})
	e.start(t, baseConfig(e.prefix, 0), newSender(t))
	job := e.publishJob(t, cfg, u, 1, false)
	poll.Until(t, 10*time.Second, "success", func() bool { return e.records.final(job.GetDeliveryId()) })
	h.mu.Lock()
	defer h.mu.Unlock()
	hdr, body := h.headers[0], h.bodies[0]
	if got := hdr.Get(webhook.HeaderSecret); got != newSecret {
		t.Errorf("x-rapidapi-webhook-secret is not the new secret")
	}
	if n := len(strings.Fields(hdr.Get(webhook.HeaderSignature))); n != 2 {
		t.Errorf("want 2 signatures (new, previous), got %d", n)
	}
	for _, s := range []string{newSecret, oldSecret.GetSecret()} {
		if err := webhook.Verify(s, hdr, body, time.Minute, time.Now()); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
}

func TestBreakerOpensAndFailsFast(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// An endpoint that refuses connections: every attempt is a transport failure.
	srv := httptest.NewServer(http.NotFoundHandler())
	deadURL := srv.URL
	srv.Close()
	u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: deadURL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 10*ms, 10*ms, 10*ms)
	c.BreakerFailures = 2
	c.BreakerCooldown = 400 * ms
	e.start(t, c, newSender(t))
	job := e.publishJob(t, cfg, u, 1, false)
	poll.Until(t, 10*time.Second, "dead", func() bool { return e.records.final(job.GetDeliveryId()) })
	recs := e.records.of(job.GetDeliveryId())
	if got := e.records.statuses(job.GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusRetrying, hubhooksv1.StatusRetrying, hubhooksv1.StatusDead}) {
		t.Fatalf("statuses %v", got)
	}
	for _, rec := range recs[:2] {
		if rec.GetResponse().GetError() == ErrCircuitOpen.Error() {
			t.Errorf("attempt %d failed fast before the breaker could open", rec.GetAttempt())
		}
	}
	// Attempt 3 fails fast; attempt 4 waits for the cool-down (not the 10 ms
	// of the schedule) and is the half-open probe: a real, failed POST.
	if recs[2].GetResponse().GetError() != ErrCircuitOpen.Error() {
		t.Errorf("attempt 3 error %q, want %q", recs[2].GetResponse().GetError(), ErrCircuitOpen)
	}
	if gap := recs[3].GetStartedAt().AsTime().Sub(recs[2].GetStartedAt().AsTime()); gap < 300*ms {
		t.Errorf("attempt 4 came %s after the failed-fast attempt 3, want at least the cool-down (400 ms, jittered)", gap)
	}
	if recs[3].GetResponse().GetError() == ErrCircuitOpen.Error() {
		t.Errorf("attempt 4 failed fast; want the half-open probe")
	}
}

func TestPromptErrorAnswersDoNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := &hook{respond: status(500)}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 10*ms, 10*ms, 10*ms)
	c.BreakerFailures = 2
	c.BreakerCooldown = time.Hour
	e.start(t, c, newSender(t))
	job := e.publishJob(t, cfg, u, 1, false)
	poll.Until(t, 10*time.Second, "dead", func() bool { return e.records.final(job.GetDeliveryId()) })
	if h.count() != 4 {
		t.Fatalf("POSTs %d, want 4: a prompt 500 is retried on the schedule, not failed fast", h.count())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{"zero is valid", Config{}, nil},
		{"negative schedule", Config{Schedule: []time.Duration{0, -time.Second}}, []string{"schedule[1]"}},
		{"everything wrong at once", Config{Concurrency: -1, AckWait: time.Second, Jitter: 0.9, ClaimLease: 10 * ms},
			[]string{"concurrency", "ack wait", "jitter", "claim lease"}},
		{"lease and ack wait beyond half the duplicate window", Config{AckWait: 31 * time.Second, ClaimLease: time.Minute},
			[]string{"ack wait 31s: must be at most half", "claim lease 1m0s: must be at most half"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNewRejectsNilDeps(t *testing.T) {
	_, err := New(Config{}, nil, nil, nil, nil, nil)
	if err == nil {
		t.Fatal("want error")
	}
	for _, w := range []string{"JetStream", "Redis", "config source", "event log", "sender"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestOutcomeDelays(t *testing.T) {
	s := &Service{cfg: Config{Schedule: []time.Duration{0, time.Minute, time.Hour}, Jitter: 0.2, MaxRetryAfter: 2 * time.Hour}.WithDefaults()}
	now := time.Unix(1000, 0)
	job := func(attempt int32) *deliveryJob { return &deliveryJob{Attempt: attempt} }
	tests := []struct {
		name     string
		attempt  int32
		res      webhook.Result
		want     hubhooksv1.DeliveryStatus
		min, max time.Duration
	}{
		{"first failure uses schedule[1] with jitter", 1, webhook.Result{StatusCode: 500}, hubhooksv1.StatusRetrying, 48 * time.Second, 72 * time.Second},
		{"429 Retry-After longer than the schedule", 1, webhook.Result{StatusCode: 429, RetryAfter: 10 * time.Minute}, hubhooksv1.StatusRetrying, 10 * time.Minute, 10 * time.Minute},
		{"503 Retry-After capped", 1, webhook.Result{StatusCode: 503, RetryAfter: 100 * time.Hour}, hubhooksv1.StatusRetrying, 2 * time.Hour, 2 * time.Hour},
		{"Retry-After shorter than the schedule", 2, webhook.Result{StatusCode: 503, RetryAfter: time.Second}, hubhooksv1.StatusRetrying, 48 * time.Minute, 72 * time.Minute},
		{"Retry-After ignored on 500", 1, webhook.Result{StatusCode: 500, RetryAfter: 10 * time.Hour}, hubhooksv1.StatusRetrying, 48 * time.Second, 72 * time.Second},
		{"last attempt dead", 3, webhook.Result{StatusCode: 500}, hubhooksv1.StatusDead, 0, 0},
		{"beyond the schedule dead", 9, webhook.Result{StatusCode: 500}, hubhooksv1.StatusDead, 0, 0},
		{"2xx", 3, webhook.Result{StatusCode: 201}, hubhooksv1.StatusSucceeded, 0, 0},
		{"410", 1, webhook.Result{StatusCode: 410}, hubhooksv1.StatusFailed, 0, 0},
		{"guard", 1, webhook.Result{Err: fmt.Errorf("dial: %w", urlguard.ErrBlocked)}, hubhooksv1.StatusFailed, 0, 0},
		{"circuit open retried", 1, webhook.Result{Err: ErrCircuitOpen}, hubhooksv1.StatusRetrying, 48 * time.Second, 72 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := s.outcome(job(tt.attempt), tt.res, now)
			if got != tt.want {
				t.Fatalf("status %s, want %s", got, tt.want)
			}
			if got != hubhooksv1.StatusRetrying {
				return
			}
			if d := next.Sub(now); d < tt.min || d > tt.max {
				t.Fatalf("delay %s, want in [%s, %s]", d, tt.min, tt.max)
			}
		})
	}
}

func TestShutdownFinishesInFlightPOSTs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		release    bool // the endpoint answers during the shutdown
		wantStatus []hubhooksv1.DeliveryStatus
	}{
		{"in-flight POST finishes, is recorded and acked", true, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded}},
		{"shutdown timeout abandons the POST unrecorded", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			release := make(chan struct{})
			var once sync.Once
			unblock := func() { once.Do(func() { close(release) }) }
			h := &hook{respond: func(_ int, w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			t.Cleanup(unblock)
			u := &hubhooksv1.CallbackUrl{Id: "url_a", Url: srv.URL}
			cfg := e.addHub("hub1", u)
			c := baseConfig(e.prefix, 0, 10*ms)
			c.PerURLConcurrency = 1
			c.ShutdownTimeout = 500 * ms
			if tc.release {
				c.ShutdownTimeout = 10 * time.Second
			}
			svc, stop := e.start(t, c, newSender(t, webhook.WithTimeout(time.Minute)))
			first := e.publishJob(t, cfg, u, 1, false)
			second := e.publishJob(t, cfg, u, 2, false) // queued behind the first
			poll.Until(t, 10*time.Second, "first POST in flight", func() bool { return h.count() == 1 })
			poll.Until(t, 10*time.Second, "second job queued", func() bool {
				return svc.held.count() == 2
			})
			stopped := make(chan struct{})
			go func() { stop(); close(stopped) }()
			poll.Until(t, 5*time.Second, "shutdown started", func() bool { return svc.stopCtx.Err() != nil })
			if tc.release {
				unblock()
			}
			select {
			case <-stopped:
			case <-time.After(15 * time.Second):
				t.Fatal("Run did not return")
			}
			if tc.wantStatus != nil {
				poll.Until(t, 5*time.Second, "record of the in-flight POST", func() bool { return e.records.final(first.GetDeliveryId()) })
			}
			if got := e.records.statuses(first.GetDeliveryId()); !slices.Equal(got, tc.wantStatus) {
				t.Fatalf("first delivery statuses %v, want %v", got, tc.wantStatus)
			}
			if got := e.records.statuses(second.GetDeliveryId()); len(got) != 0 {
				t.Fatalf("queued delivery was attempted: %v", got)
			}
			if h.count() != 1 {
				t.Fatalf("POSTs %d, want 1", h.count())
			}
			// What was not finished is back in JetStream for another replica.
			ctx := context.Background()
			cons, err := e.js.Consumer(ctx, eventbus.StreamDeliveries, eventbus.ConsumerDeliverer)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{second.GetDeliveryId()}
			if !tc.release {
				want = []string{first.GetDeliveryId(), second.GetDeliveryId()}
			}
			var got []string
			deadline := time.Now().Add(5 * time.Second)
			for len(got) < len(want) && time.Now().Before(deadline) {
				batch, err := cons.Fetch(10, jetstream.FetchMaxWait(500*ms))
				if err != nil {
					t.Fatal(err)
				}
				for m := range batch.Messages() {
					jobs, err := eventbus.DecodeJobs(m.Headers(), m.Data())
					if err != nil {
						t.Fatal(err)
					}
					for _, job := range jobs {
						got = append(got, job.GetDeliveryId())
					}
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("jobs back in JetStream %v, want %v", got, want)
			}
		})
	}
}

// A fan-out message (one webhook event, several URLs) is delivered to each
// URL once, each target with its own outcome, and acknowledged when all are
// settled. A target that hits an infrastructure error is retried alone: the
// targets already delivered are not delivered again.
func TestFanoutDeliversEachTargetOnce(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200), status(204),
		func(n int, w http.ResponseWriter, _ *http.Request) { // flaky: 500 once
			if n == 1 {
				w.WriteHeader(500)
			}
		})
	cfg := e.addHub("hub1", urls...)
	// The first config lookup fails: one target of the first event must be
	// retried on its own.
	e.configs.mu.Lock()
	e.configs.failFetches = 1
	e.configs.mu.Unlock()
	e.start(t, baseConfig(e.prefix, 0, 20*ms), newSender(t))

	var jobs []*deliveryJob
	for n := range 5 {
		jobs = append(jobs, e.publishFanout(t, cfg, n, urls...)...)
	}
	poll.Until(t, 20*time.Second, "every target final", func() bool {
		for _, j := range jobs {
			if !e.records.final(j.GetDeliveryId()) {
				return false
			}
		}
		return true
	})
	poll.Until(t, 10*time.Second, "consumer drained", func() bool { return e.consumerDrained(t) })
	for _, j := range jobs {
		got := e.records.statuses(j.GetDeliveryId())
		if got[len(got)-1] != hubhooksv1.StatusSucceeded {
			t.Errorf("%s (%s): statuses %v", j.GetDeliveryId(), j.GetUrlId(), got)
		}
	}
	if got := e.records.statuses(jobs[2].GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusSucceeded}) &&
		!slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded}) {
		t.Errorf("flaky target statuses %v", got)
	}
	// 5 events to each URL, plus one retry at the flaky URL: no target
	// delivered twice.
	for i, want := range []int{5, 5, 6} {
		if n := hooks[i].count(); n != want {
			t.Errorf("url_%d got %d POSTs, want %d", i, n, want)
		}
	}
	for i, h := range hooks {
		seen := map[string]int{}
		h.mu.Lock()
		for _, hd := range h.headers {
			seen[hd.Get(webhook.HeaderID)]++
		}
		h.mu.Unlock()
		if len(seen) != 5 {
			t.Errorf("url_%d got %d distinct webhook-ids, want 5", i, len(seen))
		}
	}
}

// Attempts that outlive the hold limit leave the stream (their messages
// are acknowledged, an entry in Redis stands for them) and still end once,
// with their outcome, when the POST returns.
func TestLongAttemptsLeaveTheStream(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	slow := &hook{respond: func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}}
	srv := httptest.NewServer(slow)
	t.Cleanup(srv.Close)
	t.Cleanup(unblock)
	u := &hubhooksv1.CallbackUrl{Id: "url_slow", Url: srv.URL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 50*ms)
	c.HoldLimit = 200 * ms
	c.PerURLConcurrency = 2 // 2 in flight, 2 queued
	svc, _ := e.start(t, c, newSender(t, webhook.WithTimeout(time.Minute)))

	var ids []string
	for i := range 4 {
		ids = append(ids, e.publishJob(t, cfg, u, i, false).GetDeliveryId())
	}
	poll.Until(t, 5*time.Second, "two POSTs in flight", func() bool { return slow.count() == 2 })
	// Queued jobs cycle between Redis and the lane's queue while the lane
	// is full; at some moment all four are out of the stream.
	poll.Until(t, 5*time.Second, "every message acknowledged, 4 entries in Redis, while the POSTs hang", func() bool {
		n, err := svc.retries.pending(context.Background())
		return err == nil && n == 4 && e.consumerDrained(t)
	})
	for _, id := range ids {
		if got := e.records.statuses(id); len(got) != 0 {
			t.Fatalf("%s recorded %v while its POST hangs", id, got)
		}
	}

	unblock()
	poll.Until(t, 20*time.Second, "every delivery succeeded", func() bool {
		for _, id := range ids {
			if !slices.Equal(e.records.statuses(id), []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded}) {
				return false
			}
		}
		return true
	})
	poll.Until(t, 5*time.Second, "no entry left in the retry store", func() bool {
		n, err := svc.retries.pending(context.Background())
		return err == nil && n == 0
	})
	time.Sleep(300 * ms) // nothing may come back
	if n := slow.count(); n != 4 {
		t.Fatalf("%d POSTs, want 4 (one per delivery)", n)
	}
}

// A parked attempt whose deliverer dies before recording it is made again
// by the next deliverer, when its entry falls due.
func TestParkedAttemptSurvivesItsDeliverer(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var hang sync.Map // while set, the endpoint hangs
	hang.Store("on", true)
	h := &hook{respond: func(_ int, w http.ResponseWriter, r *http.Request) {
		if _, ok := hang.Load("on"); ok {
			<-r.Context().Done()
		}
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_1", Url: srv.URL}
	cfg := e.addHub("hub1", u)
	c := baseConfig(e.prefix, 0, 50*ms)
	c.HoldLimit = 200 * ms
	c.ShutdownTimeout = 100 * ms // the POST is abandoned at shutdown
	c.SendTimeout = time.Second
	c.OpTimeout = time.Second // the parked entry is due ~3s after parking
	_, stop := e.start(t, c, newSender(t, webhook.WithTimeout(time.Minute)))

	id := e.publishJob(t, cfg, u, 0, false).GetDeliveryId()
	poll.Until(t, 5*time.Second, "message acknowledged while the POST hangs", func() bool { return h.count() == 1 && e.consumerDrained(t) })
	stop()
	if got := e.records.statuses(id); len(got) != 0 {
		t.Fatalf("abandoned attempt recorded %v", got)
	}

	hang.Delete("on")
	e.start(t, c, newSender(t))
	poll.Until(t, 15*time.Second, "the attempt made again and recorded", func() bool {
		return slices.Equal(e.records.statuses(id), []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded})
	})
	if n := h.count(); n != 2 {
		t.Fatalf("%d POSTs, want 2 (the abandoned one and the new one)", n)
	}
}

// A message JetStream delivers again (its deliverer died before the ack)
// is not POSTed again for the jobs whose attempt the event log already
// holds.
func TestRedeliveredJobsAlreadyRecordedAreSkipped(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200), status(200), status(200))
	cfg := e.addHub("hub1", urls...)
	c := baseConfig(e.prefix, 0, 20*ms)
	c.AckWait = 2 * time.Second
	jobs := e.publishFanout(t, cfg, 0, urls...)
	// The log holds the attempts of the first two targets (their POSTs were
	// made by a deliverer that died before acking the message).
	recorded := map[string]bool{jobs[0].GetDeliveryId(): true, jobs[1].GetDeliveryId(): true}
	var asked sync.Map
	var calls atomic.Int32
	e.eventLog = eventLogFunc(func(_ context.Context, hub string, ids []string, attempts []int32) ([]bool, error) {
		calls.Add(1)
		got := make([]bool, len(ids))
		for i, id := range ids {
			asked.Store(id, attempts[i])
			got[i] = recorded[id]
		}
		return got, nil
	})

	// That deliverer: it fetched the message and never acked it.
	ctx := context.Background()
	cons, err := eventbus.EnsureConsumer(ctx, e.js, eventbus.StreamDeliveries,
		eventbus.ConsumerConfig(eventbus.ConsumerDeliverer, c.AckWait, 100))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}

	e.start(t, c, newSender(t))
	poll.Until(t, 15*time.Second, "the third target delivered and the message acked", func() bool {
		return e.records.final(jobs[2].GetDeliveryId()) && e.consumerDrained(t)
	})
	for i, want := range []int{0, 0, 1} {
		if n := hooks[i].count(); n != want {
			t.Errorf("url_%d got %d POSTs, want %d", i, n, want)
		}
	}
	if v, ok := asked.Load(jobs[2].GetDeliveryId()); !ok || v.(int32) != 1 {
		t.Errorf("the log was not asked about attempt 1 of the third target (%v, %v)", v, ok)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the log was asked %d times about one fan-out, want once", n)
	}
}

// TestRecheckedFanoutBatch: a fan-out batch (webhook events of several
// domain events) is delivered target by target and acked once all are done;
// marked with HeaderRecheck (the expander expanded its events again) it is
// checked against the log first, though delivered for the first time, and
// the jobs the log holds are not POSTed again.
func TestRecheckedFanoutBatch(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200), status(200))
	cfg := e.addHub("hub1", urls...)
	c := baseConfig(e.prefix, 0, 20*ms)
	for _, recheck := range []bool{false, true} {
		base := 10
		if recheck {
			base = 20
		}
		m, err := eventbus.NewFanoutBatchMsg("hub1", []*deliveryv1.DeliveryFanout{
			fanoutOf(t, cfg, base, urls...), fanoutOf(t, cfg, base+1, urls...), fanoutOf(t, cfg, base+2, urls...)})
		if recheck && err == nil {
			m.Header.Set(eventbus.HeaderRecheck, "1")
		}
		e.publish(t, m, err)
	}
	// The log holds the first target of each webhook event of the rechecked
	// batch, and of the other (which must not be asked about).
	var calls atomic.Int32
	e.eventLog = eventLogFunc(func(_ context.Context, hub string, ids []string, attempts []int32) ([]bool, error) {
		calls.Add(1)
		got := make([]bool, len(ids))
		for i := range ids {
			got[i] = i%2 == 0
		}
		return got, nil
	})
	e.start(t, c, newSender(t))
	poll.Until(t, 15*time.Second, "both messages acked", func() bool {
		return e.consumerDrained(t) && hooks[0].count()+hooks[1].count() == 9
	})
	if n0, n1 := hooks[0].count(), hooks[1].count(); n0 != 3 || n1 != 6 {
		t.Errorf("url_0 got %d POSTs, url_1 %d: want 3 (the plain batch) and 6 (both)", n0, n1)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the log was asked %d times, want once (about the rechecked batch)", n)
	}
}

// TestSendTimeoutFollowsTheSender: a parked attempt's entry is sized by the
// sender's own timeout unless Config.SendTimeout says otherwise.
func TestSendTimeoutFollowsTheSender(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, tc := range []struct {
		set, want time.Duration
		sender    webhook.Sender
	}{
		{0, 42 * time.Second, newSender(t, webhook.WithTimeout(42*time.Second))},
		{3 * time.Second, 3 * time.Second, newSender(t, webhook.WithTimeout(42*time.Second))},
		{0, webhook.DefaultTimeout, timelessSender{}},
	} {
		c := baseConfig(e.prefix, 0, 20*ms)
		c.SendTimeout = tc.set
		svc, err := New(c, e.js, e.rdb, e.configs, e.eventLog, tc.sender)
		if err != nil {
			t.Fatal(err)
		}
		if svc.cfg.SendTimeout != tc.want {
			t.Errorf("SendTimeout %s with Config.SendTimeout %s: want %s", svc.cfg.SendTimeout, tc.set, tc.want)
		}
	}
}

// timelessSender is a webhook.Sender that does not report a timeout.
type timelessSender struct{}

func (timelessSender) Send(context.Context, webhook.Request) webhook.Result { return webhook.Result{} }
