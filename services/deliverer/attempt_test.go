package deliverer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

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
