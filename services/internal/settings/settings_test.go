package settings

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/publisher"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	"github.com/hubhooks/hubhooks/services/configsvc"
	"github.com/hubhooks/hubhooks/services/deliverer"
	"github.com/hubhooks/hubhooks/services/expander"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
	"github.com/hubhooks/hubhooks/services/operations"
)

func parse(t *testing.T, env map[string]string, args ...string) (*Settings, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	return Parse("hubd", args, Defaults{GRPCAddr: "127.0.0.1:7000", HTTPAddr: "127.0.0.1:9000"})
}

func TestDefaults(t *testing.T) {
	s, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.EventsMaxAge != 72*time.Hour || s.EventsMaxBytes != 0 || s.DedupeWindow != 2*time.Minute || s.StreamReplicas != 1 {
		t.Fatalf("events max age %s, max bytes %d, dedupe window %s, replicas %d", s.EventsMaxAge, s.EventsMaxBytes, s.DedupeWindow, s.StreamReplicas)
	}
}

// TestDefaultsAreTheServices: a knob left unset takes the default of the
// service it tunes, and the retry schedule's default reads back as itself.
func TestDefaultsAreTheServices(t *testing.T) {
	s, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	del := deliverer.Config{}.WithDefaults()
	if !slices.Equal(s.RetrySchedule, deliverer.DefaultSchedule) {
		t.Errorf("retry schedule %v, want %v", s.RetrySchedule, deliverer.DefaultSchedule)
	}
	if got := formatDurations(deliverer.DefaultSchedule); got != "0s,5s,5m,30m,2h,5h,10h,10h" {
		t.Errorf("default schedule spelled %q", got)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"deliver-concurrency", s.DeliverConcurrency, del.Concurrency},
		{"per-url-concurrency", s.PerURLConcurrency, del.PerURLConcurrency},
		{"per-hub-concurrency", s.PerHubConcurrency, del.PerHubConcurrency},
		{"breaker-failures", s.BreakerFailures, del.BreakerFailures},
		{"breaker-cooldown", s.BreakerCooldown, del.BreakerCooldown},
		{"hold-limit", s.HoldLimit, del.HoldLimit},
		{"max-retry-after", s.MaxRetryAfter, del.MaxRetryAfter},
		{"webhook-timeout", s.WebhookTimeout, webhook.DefaultTimeout},
		{"secret-grace", s.SecretGrace, configsvc.DefaultSecretGrace},
		{"log-retention", s.LogRetention, logstore.DefaultRetention},
		{"log-max-entries-per-hub", s.LogMaxEntriesPerHub, logstore.DefaultMaxEntriesPerHub},
		{"log-max-bytes-per-hub", s.LogMaxBytesPerHub, int64(logstore.DefaultMaxBytesPerHub)},
		{"max-event-bytes", s.MaxEventBytes, publisher.MaxEventBytes},
		{"read-ahead-bytes", s.ReadAheadBytes, expander.DefaultReadAheadBytes},
		{"bulk-rate", s.BulkRate, operations.DefaultBulkRate},
		{"bulk-max-backlog", s.BulkMaxBacklog, operations.DefaultBulkMaxBacklog},
	} {
		if c.got != c.want {
			t.Errorf("%s default %v, want the service's %v", c.name, c.got, c.want)
		}
	}
}

func TestEventsStreamLimits(t *testing.T) {
	s, err := parse(t, map[string]string{"HUBHOOKS_EVENTS_MAX_AGE": "24h", "HUBHOOKS_EVENTS_MAX_BYTES": "1073741824"})
	if err != nil {
		t.Fatal(err)
	}
	if s.EventsMaxAge != 24*time.Hour || s.EventsMaxBytes != 1<<30 {
		t.Fatalf("from the environment: %s, %d", s.EventsMaxAge, s.EventsMaxBytes)
	}
	if s, err = parse(t, nil, "-events-max-bytes", "33554432"); err != nil || s.EventsMaxBytes != 32<<20 {
		t.Fatalf("from a flag: %v, %v", s, err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HUBHOOKS_EVENTS_MAX_BYTES": "10GB"}, "HUBHOOKS_EVENTS_MAX_BYTES=\"10GB\": not an integer"},
		{map[string]string{"HUBHOOKS_EVENTS_MAX_BYTES": "-1"}, "events-max-bytes -1: must be 0 (no cap) or at least"},
		{map[string]string{"HUBHOOKS_EVENTS_MAX_BYTES": "1000"}, "events-max-bytes 1000: must be 0 (no cap) or at least"},
		{map[string]string{"HUBHOOKS_EVENTS_MAX_AGE": "30s"}, "events-max-age 30s: must be at least 1m"},
	} {
		if _, err := parse(t, tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.env, err, tc.want)
		}
	}
}

// TestEveryProblemAtOnce: Validate reports all bad settings, not the first.
func TestEveryProblemAtOnce(t *testing.T) {
	_, err := parse(t, map[string]string{"HUBHOOKS_STREAM_REPLICAS": "7", "HUBHOOKS_DEDUPE_WINDOW": "10ms", "HUBHOOKS_EVENTS_MAX_AGE": "1s"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"stream-replicas 7", "dedupe-window 10ms", "events-max-age 1s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// TestNATSCredentials: the NATS credential settings go in pairs, one kind
// at a time, and the publisher password is long enough.
func TestNATSCredentials(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		s, err := parse(t, map[string]string{"HUBHOOKS_NATS_USER": "expander", "HUBHOOKS_NATS_PASSWORD": "pw", "HUBHOOKS_NATS_TLS_CA": "/ca.pem"})
		if err != nil || s.NATSUser != "expander" || s.NATSPassword != "pw" || s.NATSTLSCA != "/ca.pem" {
			t.Fatalf("settings %+v, err %v", s, err)
		}
	})
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HUBHOOKS_NATS_USER": "expander"}, "nats-user and nats-password go together"},
		{map[string]string{"HUBHOOKS_NATS_CREDS": "/x.creds", "HUBHOOKS_NATS_USER": "a", "HUBHOOKS_NATS_PASSWORD": "b"}, "not both"},
		{map[string]string{"HUBHOOKS_NATS_TLS_CERT": "/c.pem"}, "nats-tls-cert and nats-tls-key go together"},
		{map[string]string{"HUBHOOKS_NATS_PUBLISHER_PASSWORD": "short"}, "nats-publisher-password must be at least 16"},
		{map[string]string{"HUBHOOKS_NATS_PUBLISHER_PASSWORD": "has spaces in it, sixteen+"}, "nats-publisher-password must be at least 16"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if _, err := parse(t, tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: error %v, want %q", tc.env, err, tc.want)
			}
		})
	}
}
