package e2e_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestEventLogShowsWhatHappened: domain events whose publisher claims
// another time (ten days ago, a day ahead, none) are delivered and listed,
// at the time hubhooks accepted them, with and without filters; listing by
// domain event finds every delivery of one; and the same domain event
// published again as another message (no Nats-Msg-Id, as after
// JetStream's de-duplication window) delivers nothing new and leaves one
// row per delivery.
func TestEventLogShowsWhatHappened(t *testing.T) {
	h := startHub(t)
	ctx := ctxT(t)
	const hub = "acme-log"
	r := newReceiver(t)
	for _, path := range []string{"/a", "/b"} {
		if _, err := h.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: r.URL + path}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Second)
	claims := map[string]*timestamppb.Timestamp{
		"evt-old":     timestamppb.New(time.Now().Add(-10 * 24 * time.Hour)),
		"evt-future":  timestamppb.New(time.Now().Add(24 * time.Hour)),
		"evt-missing": nil,
	}
	for id, claim := range claims {
		ev := domainEvent(t, hub, id, "TEAM.CREATED", map[string]any{"team": map[string]any{"id": "team_" + id}})
		ev.OccurredAt = claim
		h.publish(t, ev, true)
	}
	// TEAM.CREATED sends three webhook events; two URLs.
	poll.Until(t, 20*time.Second, "18 webhooks", func() bool { return len(r.all()) >= 18 })
	end := time.Now().Add(time.Second)

	list := func(req *hubhooksv1.ListEventLogsRequest) []*hubhooksv1.EventLog {
		t.Helper()
		req.HubId, req.PageSize = hub, 100
		resp, err := h.logs.ListEventLogs(ctx, req)
		if err != nil {
			t.Fatalf("ListEventLogs(%v): %v", req, err)
		}
		return resp.GetEventLogs()
	}
	var logs []*hubhooksv1.EventLog
	poll.Until(t, 20*time.Second, "18 entries listed", func() bool {
		logs = list(&hubhooksv1.ListEventLogsRequest{})
		return len(logs) == 18
	})
	for _, l := range logs {
		if c := l.GetCreatedAt().AsTime(); c.Before(start) || c.After(end) {
			t.Errorf("%s (%s) created_at %v: want when hubhooks accepted it, between %v and %v", l.GetId(), l.GetDomainEventId(), c, start, end)
		}
	}
	if !slices.IsSortedFunc(logs, func(a, b *hubhooksv1.EventLog) int {
		return b.GetCreatedAt().AsTime().Compare(a.GetCreatedAt().AsTime())
	}) {
		t.Error("entries are not newest first")
	}
	if got := list(&hubhooksv1.ListEventLogsRequest{EventType: "TEAM.CREATED"}); len(got) != 6 {
		t.Errorf("event_type TEAM.CREATED: %d entries, want 6", len(got))
	}
	for id := range claims {
		got := list(&hubhooksv1.ListEventLogsRequest{DomainEventId: id})
		if len(got) != 6 {
			t.Errorf("domain_event_id %s: %d entries, want 6", id, len(got))
		}
		for _, l := range got {
			if l.GetDomainEventId() != id {
				t.Errorf("domain_event_id %s listed an entry of %s", id, l.GetDomainEventId())
			}
		}
	}
	// The receivers saw the publisher's claim as such.
	for _, g := range r.all() {
		claim := claims[g.Event.DomainEvent.ID]
		if (claim == nil) != g.Event.DomainEvent.OccurredAt.IsZero() ||
			(claim != nil && !g.Event.DomainEvent.OccurredAt.Equal(claim.AsTime().Truncate(time.Nanosecond))) {
			t.Errorf("%s: body occurred_at %v, want the claim %v", g.Event.DomainEvent.ID, g.Event.DomainEvent.OccurredAt, claim)
		}
		if c := g.Event.CreatedAt; c.Before(start) || c.After(end) {
			t.Errorf("%s: body created_at %v, want when hubhooks accepted it", g.Event.DomainEvent.ID, c)
		}
	}

	// evt-old published again as another message: nothing new arrives.
	ev := domainEvent(t, hub, "evt-old", "TEAM.CREATED", map[string]any{"team": map[string]any{"id": "team_evt-old"}})
	m := nats.NewMsg("TEAM.CREATED")
	m.Header.Set("Content-Type", "application/json")
	var err error
	if m.Data, err = protojson.Marshal(ev); err != nil {
		t.Fatal(err)
	}
	if ack, err := h.js.PublishMsg(ctx, m); err != nil || ack.Duplicate {
		t.Fatalf("publish again: %v, %v; want a new message", ack, err)
	}
	poll.Until(t, 20*time.Second, "the repeat expanded and skipped", func() bool {
		return h.counter(t, `hubhooks_expander_events_skipped_total{reason="seen_before"}`) == 1
	})
	if n := len(r.all()); n != 18 {
		t.Errorf("%d webhooks after the repeat, want still 18", n)
	}
	got := list(&hubhooksv1.ListEventLogsRequest{DomainEventId: "evt-old"})
	if len(got) != 6 {
		t.Fatalf("domain_event_id evt-old after the repeat: %d entries, want 6", len(got))
	}
	for _, l := range got {
		if l.GetAttempts() != 1 {
			t.Errorf("%s: %d attempts, want 1", l.GetId(), l.GetAttempts())
		}
	}
}
