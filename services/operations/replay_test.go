package operations_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

// replayAll runs a replay to its end and returns its last progress.
func (e *env) replayAll(ctx context.Context, t *testing.T, req *hubhooksv1.ReplayDomainEventsRequest) (*hubhooksv1.ReplayDomainEventsProgress, error) {
	t.Helper()
	stream, err := e.ops.ReplayDomainEvents(ctx, req)
	if err != nil {
		return nil, err
	}
	var last *hubhooksv1.ReplayDomainEventsProgress
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if last == nil || !last.GetDone() {
				t.Fatalf("replay ended without done: %v", last)
			}
			return last, nil
		}
		if err != nil {
			return last, err
		}
		last = p
	}
}

func TestReplayBackfillsANewURL(t *testing.T) {
	e := start(t, nil)
	ctx := ctxT(t)
	a, b := newReceiver(t, http.StatusOK), newReceiver(t, http.StatusOK)
	e.hub(t, "acme", a.URL+"/a")
	before := timestamppb.New(time.Now().Add(-time.Second))
	// TEAM.CREATED makes APP.CREATED, APP_KEY.CREATED, TEAM.CREATED.
	for i := range 5 {
		e.publish(t, "acme", fmt.Sprintf("evt-team-%d", i), "TEAM.CREATED", map[string]any{"team": map[string]any{"id": i}})
	}
	// Another hub's events share the stream and are not replayed.
	e.hub(t, "other", a.URL+"/other")
	e.publish(t, "other", "evt-other", "TEAM.CREATED", nil)
	poll.Until(t, 20*time.Second, "the live deliveries", func() bool { return len(a.events()) == 18 })

	cfg, err := e.Config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: "acme", Url: b.URL + "/b"})
	if err != nil {
		t.Fatal(err)
	}
	bID := cfg.GetCallbackUrls()[1].GetId()
	w := e.watch(t, "acme", nil)
	req := &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme", Since: before, Urls: []string{bID}, DryRun: true}
	p, err := e.replayAll(ctx, t, req)
	if err != nil {
		t.Fatal(err)
	}
	if p.GetDomainEventsTotal() != 6 || p.GetDomainEventsScanned() != 6 || p.GetDomainEventsMatched() != 5 || p.GetWebhookEvents() != 15 || p.GetDeliveries() != 15 || !p.GetDryRun() {
		t.Fatalf("dry run: %v", p)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(b.events()); n != 0 {
		t.Fatalf("the dry run sent %d webhooks", n)
	}

	req.DryRun = false
	if p, err = e.replayAll(ctx, t, req); err != nil {
		t.Fatal(err)
	}
	if p.GetDeliveries() != 15 || p.GetAlreadyReplayed() != 0 {
		t.Fatalf("replay: %v", p)
	}
	// It says so on the hub's operational events; the dry run did not.
	poll.Until(t, 10*time.Second, "REPLAY_FINISHED", func() bool {
		return len(w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_REPLAY_FINISHED)) > 0
	})
	if evs := w.of(hubhooksv1.OperationalEventType_OPERATIONAL_EVENT_TYPE_REPLAY_FINISHED); len(evs) != 1 || evs[0].GetDeliveries() != 15 {
		t.Errorf("REPLAY_FINISHED events: %v", evs)
	}
	poll.Until(t, 20*time.Second, "15 replayed webhooks at the new URL", func() bool { return len(b.events()) == 15 })
	// They went through the hub's overflow shard, behind live traffic.
	if n := e.metric(t, "hubhooks_deliverer_overflow_taken_total"); n == 0 {
		t.Error("the replay's deliveries were not taken from overflow")
	}
	for _, ev := range b.events() {
		if !strings.HasPrefix(ev.ID, webhook.ReplayIDPrefix) || !strings.HasPrefix(ev.ReplayOf, "msg_") || !strings.HasPrefix(ev.DomainEvent.ID, "evt-team-") {
			t.Errorf("replayed webhook id %q, replay_of %q, domain event %q", ev.ID, ev.ReplayOf, ev.DomainEvent.ID)
		}
	}
	if n := len(a.events()); n != 18 {
		t.Errorf("the old URL got %d webhooks, want its 18 live ones only", n)
	}
	// In the log, linked to the original domain event.
	poll.Until(t, 20*time.Second, "the replays logged", func() bool {
		got := e.logs(t, &hubhooksv1.ListEventLogsRequest{HubId: "acme", Url: b.URL + "/b", Status: "succeeded"})
		for _, l := range got {
			if !strings.HasPrefix(l.GetDomainEventId(), "evt-team-") || !strings.HasPrefix(l.GetEventId(), webhook.ReplayIDPrefix) {
				t.Fatalf("replayed entry %v", l)
			}
		}
		return len(got) == 15
	})
	ex, err := e.ops.ExplainDomainEvent(ctx, &hubhooksv1.ExplainDomainEventRequest{HubId: "acme", DomainEventId: "evt-team-0", DomainEventType: "TEAM.CREATED"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ex.GetWebhookEvents()); n != 6 || ex.GetWebhookEvents()[1].GetReplayOf() != ex.GetWebhookEvents()[0].GetId() {
		t.Errorf("explain shows %d webhook events (want 3 and their 3 replays): %v", n, ex)
	}

	// The same request again delivers nothing.
	if p, err = e.replayAll(ctx, t, req); err != nil {
		t.Fatal(err)
	}
	if p.GetDeliveries() != 0 || p.GetAlreadyReplayed() != 15 {
		t.Fatalf("replay again: %v", p)
	}
	// Every URL, one type: the old URL gets the five TEAM.CREATED replays;
	// the new URL has them already.
	p, err = e.replayAll(ctx, t, &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme", Since: before, EventTypes: []string{"TEAM.CREATED"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetDeliveries() != 5 || p.GetAlreadyReplayed() != 5 || p.GetWebhookEvents() != 5 {
		t.Fatalf("replay TEAM.CREATED to every URL: %v", p)
	}
	poll.Until(t, 20*time.Second, "five more at the old URL", func() bool { return len(a.events()) == 23 })
	time.Sleep(300 * time.Millisecond)
	if n := len(b.events()); n != 15 {
		t.Errorf("the new URL got %d webhooks, want 15: nothing twice", n)
	}
}

func TestReplayWhatArrivedWhileTriggersWereOff(t *testing.T) {
	e := start(t, nil)
	ctx := ctxT(t)
	a := newReceiver(t, http.StatusOK)
	e.hub(t, "acme", a.URL)
	if _, err := e.Config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "acme"}); err != nil {
		t.Fatal(err)
	}
	// The expander's config cache learns of the change within milliseconds:
	// until a probe event is skipped, an event could still go out.
	for i := 0; e.skippedDisabled(t) == 0; i++ {
		if i == 200 {
			t.Fatal("the expander never skipped an event of the disabled hub")
		}
		e.publish(t, "acme", fmt.Sprintf("evt-probe-%d", i), "USER.UPDATED", nil)
		time.Sleep(50 * time.Millisecond)
	}
	since := timestamppb.Now()
	e.publish(t, "acme", "evt-off-1", "APP.UPDATED", map[string]any{"app": map[string]any{"id": 1}})
	e.publish(t, "acme", "evt-off-2", "APP.DELETED", map[string]any{"app": map[string]any{"id": 1}})
	// A malformed event of the hub (type contradicts its subject) is
	// counted, not replayed.
	bad := nats.NewMsg("APP.UPDATED")
	bad.Header.Set("Content-Type", "application/json")
	bad.Data = []byte(`{"id":"evt-bad","hubId":"acme","type":"APP.DELETED"}`)
	if _, err := e.JS.PublishMsg(ctx, bad); err != nil {
		t.Fatal(err)
	}
	_, err := e.replayAll(ctx, t, &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme", Since: since})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "switch them on") {
		t.Fatalf("replay with triggers off: %v, want FailedPrecondition", err)
	}
	offEvents := func() int {
		n := 0
		for _, ev := range a.events() {
			if strings.HasPrefix(ev.DomainEvent.ID, "evt-off-") {
				n++
			}
		}
		return n
	}
	time.Sleep(300 * time.Millisecond)
	if n := offEvents(); n != 0 {
		t.Fatalf("events published with the triggers off were delivered (%d)", n)
	}
	if _, err := e.Config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: "acme", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	p, err := e.replayAll(ctx, t, &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetDeliveries() != 2 || p.GetInvalid() != 1 || p.GetDomainEventsScanned() != 3 {
		t.Fatalf("replay: %v", p)
	}
	poll.Until(t, 20*time.Second, "both delivered", func() bool { return offEvents() == 2 })
}

func TestReplayRefusals(t *testing.T) {
	e := start(t, nil)
	ctx := ctxT(t)
	cfg := e.hub(t, "acme", "https://a.example.com/", "https://b.example.com/")
	if _, err := e.Config.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{HubId: "acme", Id: cfg.GetCallbackUrls()[1].GetId(), Enabled: proto.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	hour := timestamppb.New(time.Now().Add(-time.Hour))
	for _, tc := range []struct {
		name string
		req  *hubhooksv1.ReplayDomainEventsRequest
		code codes.Code
		want string
	}{
		{"no since", &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme"}, codes.InvalidArgument, "since is required"},
		{"unknown type", &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme", Since: hour, EventTypes: []string{"TEAM.VANISHED"}}, codes.InvalidArgument, "TEAM.VANISHED"},
		{"unknown URL", &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme", Since: hour, Urls: []string{"https://c.example.com/"}}, codes.InvalidArgument, "not a callback URL"},
		{"disabled URL", &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme", Since: hour, Urls: []string{"https://b.example.com/"}}, codes.FailedPrecondition, "disabled"},
		{"bad hub", &hubhooksv1.ReplayDomainEventsRequest{HubId: "a/b", Since: hour}, codes.InvalidArgument, "hub_id"},
	} {
		_, err := e.replayAll(ctx, t, tc.req)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s saying %q", tc.name, err, tc.code, tc.want)
		}
	}
	// Older than the stream's oldest event: it says where it starts.
	e.publish(t, "acme", "evt-1", "APP.UPDATED", nil)
	p, err := e.replayAll(ctx, t, &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme", Since: timestamppb.New(time.Now().Add(-24 * time.Hour)), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetOldestAvailable() == nil || p.GetDeliveries() != 1 {
		t.Errorf("replay from before the stream's oldest event: %v", p)
	}
}

// A replay cancelled half-way and run again delivers each replayed
// webhook once.
func TestReplayCancelledAndResumed(t *testing.T) {
	e := start(t, func(s *settings.Settings) { s.BulkRate = 20 })
	a := newReceiver(t, http.StatusOK)
	e.hub(t, "acme", a.URL)
	since := timestamppb.New(time.Now().Add(-time.Second))
	for i := range 40 {
		e.publish(t, "acme", fmt.Sprintf("evt-%d", i), "USER.UPDATED", nil)
	}
	poll.Until(t, 20*time.Second, "the live deliveries", func() bool { return len(a.events()) == 40 })
	ctx, cancel := context.WithCancel(ctxT(t))
	stream, err := e.ops.ReplayDomainEvents(ctx, &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := stream.Recv()
		if err != nil {
			t.Fatalf("progress: %v", err)
		}
		if p.GetDeliveries() >= 5 {
			break
		}
	}
	cancel()
	var n int
	poll.Until(t, 10*time.Second, "the replay stops", func() bool {
		before := len(a.events())
		time.Sleep(300 * time.Millisecond)
		n = len(a.events())
		return n == before
	})
	if n-40 >= 40 {
		t.Fatalf("the cancelled replay delivered all %d", n-40)
	}
	p, err := e.replayAll(ctxT(t), t, &hubhooksv1.ReplayDomainEventsRequest{HubId: "acme", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetDeliveries()+p.GetAlreadyReplayed() != 40 || p.GetAlreadyReplayed() == 0 {
		t.Fatalf("resumed: %v", p)
	}
	poll.Until(t, 20*time.Second, "40 replays", func() bool { return len(a.events()) == 80 })
	time.Sleep(300 * time.Millisecond)
	seen := map[string]int{}
	for _, ev := range a.events()[40:] {
		seen[ev.ID]++
	}
	if len(seen) != 40 {
		t.Errorf("%d distinct replayed webhooks of %d, want 40 once each", len(seen), len(a.events())-40)
	}
}
