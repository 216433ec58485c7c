package settings

import (
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, env map[string]string, args ...string) (*Settings, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	return Parse("test", args, Defaults{GRPCAddr: "127.0.0.1:7000", HTTPAddr: "127.0.0.1:9000"})
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
