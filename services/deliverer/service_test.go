package deliverer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

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
			h, u, unblock := hangingServer(t, "url_a")
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

func (timelessSender) Send(context.Context, webhook.Request) webhook.Result { return webhook.Result{} }
