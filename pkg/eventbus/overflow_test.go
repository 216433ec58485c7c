package eventbus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/natstest"
)

func TestHubOfDeliverySubject(t *testing.T) {
	tests := []struct {
		subject      string
		hub          string
		overflow, ok bool
	}{
		{DeliverySubject("acme"), "acme", false, true},
		{DeliverySubject("overflow"), "overflow", false, true}, // a hub named overflow would be live on its own subject
		{OverflowDeliverySubject("acme"), "acme", true, true},
		{OverflowDeliverySubject("overflow"), "overflow", true, true},
		{"hubhooks.deliveries.", "", false, false},
		{"hubhooks.deliveries.overflow.3", "", false, false},
		{"hubhooks.deliveries.x.acme", "", false, false},
		{"hubhooks.attempts.acme", "", false, false},
	}
	for _, tt := range tests {
		hub, overflow, ok := HubOfDeliverySubject(tt.subject)
		if hub != tt.hub || overflow != tt.overflow || ok != tt.ok {
			t.Errorf("HubOfDeliverySubject(%q) = %q %v %v, want %q %v %v", tt.subject, hub, overflow, ok, tt.hub, tt.overflow, tt.ok)
		}
	}
}

func TestOverflowShardsSpreadHubs(t *testing.T) {
	seen := map[int]int{}
	for i := range 1600 {
		s := OverflowShard(fmt.Sprintf("hub-%d", i))
		if s < 0 || s >= OverflowShards {
			t.Fatalf("shard %d out of range", s)
		}
		seen[s]++
	}
	for s := range OverflowShards {
		// 100 expected per shard; a hash this uneven would pair hubs far
		// more often than one time in OverflowShards.
		if seen[s] < 50 || seen[s] > 150 {
			t.Errorf("shard %d holds %d of 1600 hubs", s, seen[s])
		}
	}
	if OverflowShard("acme") != OverflowShard("acme") {
		t.Error("a hub's shard is not stable")
	}
}

// The live consumer and the overflow consumers share the work-queue stream
// without overlapping, and each gets only its own messages.
func TestLiveAndOverflowConsumers(t *testing.T) {
	_, _, js := natstest.Start(t)
	ctx := context.Background()
	if err := Ensure(ctx, js, DeliveriesStreamConfig(Options{})); err != nil {
		t.Fatal(err)
	}
	live, err := EnsureConsumer(ctx, js, StreamDeliveries, LiveConsumerConfig(30*time.Second, 100))
	if err != nil {
		t.Fatal(err)
	}
	over := make([]jetstream.Consumer, OverflowShards)
	for s := range OverflowShards {
		if over[s], err = EnsureConsumer(ctx, js, StreamDeliveries, OverflowConsumerConfig(s, 30*time.Second, 100)); err != nil {
			t.Fatalf("overflow consumer %d: %v", s, err)
		}
	}
	orig := &nats.Msg{Subject: DeliverySubject("acme"), Header: nats.Header{}, Data: []byte("jobs")}
	orig.Header.Set(HeaderContentType, ContentTypeFanoutBatch)
	orig.Header.Set(jetstream.MsgIDHeader, "fan.x.1")
	for _, m := range []*nats.Msg{orig, OverflowCopyOf("acme", orig.Header, orig.Data, ""), OverflowCopyOf("acme", orig.Header, orig.Data, RecheckDone)} {
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got := func(c jetstream.Consumer) []jetstream.Msg {
		t.Helper()
		// Not FetchNoWait: a message just stored may not be pending yet.
		b, err := c.Fetch(10, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		var out []jetstream.Msg
		for m := range b.Messages() {
			out = append(out, m)
			_ = m.Ack()
		}
		return out
	}
	if ms := got(live); len(ms) != 1 || ms[0].Subject() != DeliverySubject("acme") {
		t.Fatalf("live consumer got %d messages, want the live one", len(ms))
	}
	// The second copy has the same id: stored once.
	ms := got(over[OverflowShard("acme")])
	if len(ms) != 1 {
		t.Fatalf("the hub's overflow consumer got %d messages, want 1 (the second copy is a duplicate)", len(ms))
	}
	h := ms[0].Headers()
	if h.Get(HeaderContentType) != ContentTypeFanoutBatch || h.Get(jetstream.MsgIDHeader) != "overflow.fan.x.1" || h.Get(HeaderRecheck) != "" || string(ms[0].Data()) != "jobs" {
		t.Errorf("overflow copy: headers %v, data %q", h, ms[0].Data())
	}
	for s := range OverflowShards {
		if s != OverflowShard("acme") && len(got(over[s])) != 0 {
			t.Errorf("overflow shard %d got another hub's message", s)
		}
	}
	again := OverflowCopyOf("acme", nats.Header{}, nil, RecheckDone)
	if again.Header.Get(HeaderRecheck) != RecheckDone || again.Header.Get(jetstream.MsgIDHeader) != "" {
		t.Errorf("copy of a message delivered again without an id: headers %v, want the recheck mark and no id", again.Header)
	}
	inFlight := nats.Header{}
	inFlight.Set(HeaderRecheck, RecheckInFlight)
	if h := OverflowCopyOf("acme", inFlight, nil, RecheckDone).Header; h.Get(HeaderRecheck) != RecheckInFlight {
		t.Errorf("copy of a message marked %q: headers %v, want the mark kept", RecheckInFlight, h)
	}
}
