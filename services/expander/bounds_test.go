package expander_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	"github.com/hubhooks/hubhooks/services/expander"
)

// baseURLs is n elements of a baseUrls list.
func baseURLs(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"url": fmt.Sprintf("https://b%d.example.com", i)}
	}
	return out
}

// deadLetterReasons maps the ids of the dead-lettered domain events to
// their Hubhooks-Reason.
func deadLetterReasons(t *testing.T, e *env) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range streamMsgs(t, e.js, eventbus.StreamDeadLetters) {
		ev := &eventsv1.DomainEvent{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			t.Fatalf("dead letter: %v", err)
		}
		out[ev.GetId()] = nats.Header(m.Header).Get(eventbus.HeaderReason)
	}
	return out
}

// TestHostileEventsStaySmall: domain events built to expand into
// gigabytes — the one of issue 22 (a 1,000,000-character actor and 1,000
// base URLs: 1,005 webhooks of ~1 MB each), one whose webhooks all fall
// back to a ~900 KB data, one with 1,000 base URLs — are dead-lettered
// with the bound they break, before their webhooks are built: the
// expander's allocations stay a few times the events' own size, and the
// next event is expanded as usual.
func TestHostileEventsStaySmall(t *testing.T) {
	e := start(t, expander.Config{})
	const hub = "hub-hostile"
	e.cfgs.set(hubConfig(hub, 1, true, "u1", "u2", "u3", "u4", "u5"))
	big := strings.Repeat("x", 900_000)
	hostile := []struct {
		ev     *eventsv1.DomainEvent
		reason string
	}{
		{func() *eventsv1.DomainEvent {
			ev := domainEvent(t, "evt-actor", hub, "API.CREATED", map[string]any{"baseUrls": baseURLs(1000)})
			ev.Actor = strings.Repeat("a", 1_000_000)
			return ev
		}(), expander.ReasonBadActor},
		{domainEvent(t, "evt-fallback", hub, "API.CREATED", map[string]any{"blob": big}), expander.ReasonTooLarge},
		{domainEvent(t, "evt-count", hub, "API.CREATED", map[string]any{"baseUrls": baseURLs(1000)}), expander.ReasonTooLarge},
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, h := range hostile {
		publishEvent(t, e.js, h.ev)
	}
	poll.Until(t, 30*time.Second, "the hostile events dead-lettered", func() bool { return len(deadLetterReasons(t, e)) == len(hostile) })
	runtime.ReadMemStats(&after)
	reasons := deadLetterReasons(t, e)
	for _, h := range hostile {
		if r := reasons[h.ev.GetId()]; !strings.HasPrefix(r, h.reason+": ") {
			t.Errorf("%s dead-lettered as %q, want %s with the bound it breaks", h.ev.GetId(), r, h.reason)
		}
	}
	// The three events are ~2.8 MB; their expansions would have been
	// ~1 GB, ~22 MB and ~2 MB for each of the five URLs.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 200<<20 {
		t.Errorf("expanding the hostile events allocated %d MiB", alloc>>20)
	}
	if n := len(jobs(t, e.js, hub)); n != 0 {
		t.Errorf("%d delivery jobs made of hostile events", n)
	}

	publishEvent(t, e.js, domainEvent(t, "evt-fine", hub, "API.CREATED", map[string]any{"api": map[string]any{"id": "a"}, "baseUrls": baseURLs(3)}))
	poll.Until(t, 15*time.Second, "the next event expanded", func() bool { return len(jobs(t, e.js, hub)) == 8*5 })
}

// TestExpansionLimits: each bound of expander.Limits, at and over it.
func TestExpansionLimits(t *testing.T) {
	rules := cascade.Default()
	cfg := hubConfig("h", 1, true, "u1")
	ev := func(data map[string]any) *eventsv1.DomainEvent {
		return domainEvent(t, "e", "h", "API.CREATED", data)
	}
	tests := []struct {
		name    string
		ev      *eventsv1.DomainEvent
		lim     expander.Limits
		wantErr string
	}{
		{"within every bound", ev(map[string]any{"baseUrls": baseURLs(10)}), expander.Limits{}, ""},
		{"webhook count at the bound", ev(map[string]any{"baseUrls": baseURLs(5)}), expander.Limits{MaxWebhooks: 10}, ""},
		{"webhook count over", ev(map[string]any{"baseUrls": baseURLs(6)}), expander.Limits{MaxWebhooks: 10}, "11 webhook events, at most 10"},
		{"one body over", ev(map[string]any{"api": map[string]any{"d": strings.Repeat("d", 5000)}}), expander.Limits{MaxWebhookBytes: 4096}, "(API.CREATED) would be about"},
		{"all bodies over", ev(map[string]any{"d": strings.Repeat("d", 3000)}), expander.Limits{MaxTotalBytes: 12000}, "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, _, err := expander.Expansion{Event: tc.ev, Subject: "API.CREATED", Config: cfg, Limits: tc.lim}.Fanouts(rules)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr == "" && len(fs) == 0:
				t.Fatal("no fan-outs")
			case tc.wantErr != "" && (!errors.Is(err, expander.ErrTooLarge) || !errors.Is(err, expander.ErrExpansion) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want ErrTooLarge saying %q", err, tc.wantErr)
			}
		})
	}
}
