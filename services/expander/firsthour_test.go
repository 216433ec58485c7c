package expander_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	"github.com/hubhooks/hubhooks/services/expander"
)

// TestCreatedAtIsWhenHubhooksAcceptedTheEvent: whatever the publisher claims
// in occurred_at (ten days ago, a day ahead, nothing), the jobs and the
// webhook body's created_at are the time JetStream stored the domain event;
// the body's domain_event.occurred_at is the claim, as made.
func TestCreatedAtIsWhenHubhooksAcceptedTheEvent(t *testing.T) {
	e := start(t, expander.Config{})
	hub := "hub-time"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	now := time.Now().UTC().Truncate(time.Second)
	claims := map[string]*timestamppb.Timestamp{
		"evt_old":     timestamppb.New(now.Add(-10 * 24 * time.Hour)),
		"evt_future":  timestamppb.New(now.Add(24 * time.Hour)),
		"evt_missing": nil,
	}
	stored := map[string]time.Time{}
	for id, claim := range claims {
		ev := domainEvent(t, id, hub, "TEAM.CREATED", map[string]any{"team": map[string]any{"id": "t1"}})
		ev.OccurredAt = claim
		ack := publishEvent(t, e.js, ev)
		s, err := e.js.Stream(context.Background(), eventbus.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetMsg(context.Background(), ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		stored[id] = m.Time.UTC()
	}
	e.idle(t)
	got := jobs(t, e.js, hub)
	if len(got) != 3*3 { // TEAM.CREATED: APP.CREATED, APP_KEY.CREATED, TEAM.CREATED
		t.Fatalf("%d jobs, want 9", len(got))
	}
	for _, j := range got {
		id := j.GetDomainEventId()
		if !j.GetCreatedAt().AsTime().Equal(stored[id]) {
			t.Errorf("%s: job created_at %v, want the stored time %v", id, j.GetCreatedAt().AsTime(), stored[id])
		}
		var body webhook.Event
		if err := json.Unmarshal(j.GetBody(), &body); err != nil {
			t.Fatal(err)
		}
		if !body.CreatedAt.Equal(stored[id]) {
			t.Errorf("%s: body created_at %v, want %v", id, body.CreatedAt, stored[id])
		}
		claim := claims[id]
		switch {
		case claim == nil && strings.Contains(string(j.GetBody()), "occurred_at"):
			t.Errorf("%s: body %s has an occurred_at the publisher did not give", id, j.GetBody())
		case claim != nil && !body.DomainEvent.OccurredAt.Equal(claim.AsTime()):
			t.Errorf("%s: body occurred_at %v, want the claim %v", id, body.DomainEvent.OccurredAt, claim.AsTime())
		}
	}
}

// TestRepeatedDomainEventIsNotExpandedAgain: a domain event published again
// as another message (no Nats-Msg-Id, or after JetStream's de-duplication
// window) is not expanded a second time within the seen window; the same id
// on another hub is its own event.
func TestRepeatedDomainEventIsNotExpandedAgain(t *testing.T) {
	e := start(t, expander.Config{})
	e.cfgs.set(hubConfig("hub-a", 1, true, "u1"))
	e.cfgs.set(hubConfig("hub-b", 1, true, "u1"))
	body := `{"id":"evt-1","hubId":"%s","data":{"app":{"id":"a1"}}}`
	for _, hub := range []string{"hub-a", "hub-a", "hub-b"} {
		// No Nats-Msg-Id: JetStream stores each copy.
		publishRaw(t, e.js, "APP.CREATED", []byte(strings.Replace(body, "%s", hub, 1)), map[string]string{"Content-Type": "application/json"})
	}
	e.idle(t)
	checkJobs(t, jobs(t, e.js, "hub-a"), "hub-a", "evt-1", "APP.CREATED", []string{"APP.CREATED", "APP_KEY.CREATED"}, []string{"u1"}, 1)
	checkJobs(t, jobs(t, e.js, "hub-b"), "hub-b", "evt-1", "APP.CREATED", []string{"APP.CREATED", "APP_KEY.CREATED"}, []string{"u1"}, 1)
	if n := metric(t, e.reg, "hubhooks_expander_events_skipped_total", "reason", "seen_before"); n != 1 {
		t.Errorf("seen_before skips = %v, want 1", n)
	}
}

// TestSeenAnswersEveryQuestionOfAPipeline: questions asked at the same time
// share a pipeline; each gets its own answer. 100 events published twice at
// once (another stream message each time): exactly one message of each is
// expanded, and that one again when delivered again.
func TestSeenAnswersEveryQuestionOfAPipeline(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.New(t)
	seen, err := expander.NewSeen(rdb, prefix, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	const events = 100
	var mu sync.Mutex
	winner := map[int]uint64{} // event -> the sequence that was expanded
	var wg sync.WaitGroup
	for i := range events {
		for copy := range 2 {
			seq := uint64(2*i + copy + 1)
			wg.Go(func() {
				got, err := seen.Remember(ctx, "hub1", "evt-"+strconv.Itoa(i), seq, false)
				if err != nil {
					t.Error(err)
					return
				}
				if got == expander.Unseen {
					mu.Lock()
					if prev, dup := winner[i]; dup {
						t.Errorf("event %d expanded twice (sequences %d and %d)", i, prev, seq)
					}
					winner[i] = seq
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(winner) != events {
		t.Fatalf("%d of %d events expanded", len(winner), events)
	}
	for i, seq := range winner {
		if again, err := seen.Remember(ctx, "hub1", "evt-"+strconv.Itoa(i), seq, false); err != nil || again != expander.SeenThisMessage {
			t.Fatalf("the expanded message of event %d delivered again: %v, %v; want SeenThisMessage", i, again, err)
		}
	}
}

// TestSeenWindow: the memory tells the first message of an event from that
// same message delivered again and from another message, and forgets the
// event when its window ends (Redis expires it).
func TestSeenWindow(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.New(t)
	seen, err := expander.NewSeen(rdb, prefix, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		hub, id string
		seq     uint64
		want    expander.Sighting
	}{
		{"hub1", "evt-1", 5, expander.Unseen},
		{"hub1", "evt-1", 5, expander.SeenThisMessage},  // delivered again
		{"hub1", "evt-1", 9, expander.SeenOtherMessage}, // published again
		{"hub2", "evt-1", 9, expander.Unseen},           // another hub's event
		{"hub1", "evt-2", 9, expander.Unseen},
	} {
		got, err := seen.Remember(ctx, step.hub, step.id, step.seq, false)
		if err != nil || got != step.want {
			t.Fatalf("Remember(%s, %s, %d) = %v, %v; want %v", step.hub, step.id, step.seq, got, err, step.want)
		}
	}
	keys, err := rdb.Keys(ctx, prefix+"seen:{hub1}:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	for _, k := range keys {
		if ttl := rdb.TTL(ctx, k).Val(); ttl <= 9*time.Minute || ttl > 10*time.Minute {
			t.Errorf("%s expires in %v, want the window (10m)", k, ttl)
		}
		// The window ends.
		if err := rdb.PExpire(ctx, k, time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 5*time.Second, "keys expired", func() bool {
		n, _ := rdb.Exists(ctx, keys...).Result()
		return n == 0
	})
	if got, err := seen.Remember(ctx, "hub1", "evt-1", 12, false); err != nil || got != expander.Unseen {
		t.Fatalf("after the window: %v, %v; want the event expanded again", got, err)
	}
}

// TestJSONWithoutContentType: a JSON body published without its header
// ("nats pub" without -H) is read as JSON, not dead-lettered.
func TestJSONWithoutContentType(t *testing.T) {
	e := start(t, expander.Config{})
	hub := "hub-noct"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	publishRaw(t, e.js, "USER.UPDATED", []byte(` {"id":"evt_noct","hubId":"hub-noct","data":{"user":{"id":"u9"}}}`), nil)
	e.idle(t)
	checkJobs(t, jobs(t, e.js, hub), hub, "evt_noct", "USER.UPDATED", []string{"USER.UPDATED"}, []string{"u1"}, 1)
}

// TestDeadLetterLogLines: the log line of a dead-lettered event names its
// event id and its sequence in the events stream (where HUBHOOKS_DLQ's
// copy says it came from).
func TestDeadLetterLogLines(t *testing.T) {
	var logs syncBuffer
	e := start(t, expander.Config{Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	e.cfgs.set(hubConfig("hub-dl", 1, true, "u1"))
	mismatch, err := proto.Marshal(&eventsv1.DomainEvent{Id: "evt_mismatch", HubId: "hub-dl", Type: "TEAM.DELETED"})
	if err != nil {
		t.Fatal(err)
	}
	acks := []*jetstream.PubAck{
		publishRaw(t, e.js, "TEAM.CREATED", []byte(`{"id":"evt_bad_json","hubId":"hub-dl","colour":"red"}`), nil),
		publishRaw(t, e.js, "TEAM.CREATED", mismatch, map[string]string{"Content-Type": "application/protobuf"}),
	}
	e.idle(t)
	lines := map[string]map[string]any{}
	for _, l := range bytes.Split([]byte(logs.String()), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil && strings.Contains(m["msg"].(string), "dead-lettered") {
			lines[m["event_id"].(string)] = m
		}
	}
	for i, id := range []string{"evt_bad_json", "evt_mismatch"} {
		l, ok := lines[id]
		if !ok {
			t.Fatalf("no dead-letter line with event_id %s in\n%s", id, logs.String())
		}
		if seq, _ := l["stream_seq"].(float64); uint64(seq) != acks[i].Sequence {
			t.Errorf("%s: stream_seq %v, want %d", id, l["stream_seq"], acks[i].Sequence)
		}
	}
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSeenMemoryAwayExpandsAnyway: when Redis does not answer, events are
// expanded (a repeat may then reach receivers again, with the same
// webhook-id) rather than held up.
func TestSeenMemoryAwayExpandsAnyway(t *testing.T) {
	_, nc, js := natstest.Start(t)
	away := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = away.Close() })
	seen, err := expander.NewSeen(away, "hhtest:away:", expander.DefaultSeenWindow)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{js: js, nc: nc, cfgs: newConfigs(), rules: cascade.Default(), seen: seen}
	e.run(t)
	hub := "hub-away"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	for _, id := range []string{"evt_a1", "evt_a2"} {
		publishEvent(t, e.js, domainEvent(t, id, hub, "USER.UPDATED", map[string]any{"user": map[string]any{"id": id}}))
	}
	e.idle(t)
	got := jobs(t, e.js, hub)
	checkJobs(t, got, hub, "evt_a1", "USER.UPDATED", []string{"USER.UPDATED"}, []string{"u1"}, 1)
	checkJobs(t, got, hub, "evt_a2", "USER.UPDATED", []string{"USER.UPDATED"}, []string{"u1"}, 1)
	if n := metric(t, e.reg, "hubhooks_expander_seen_errors_total"); n < 1 {
		t.Errorf("seen errors %v, want at least 1", n)
	}
}

// holdPipelines holds every pipeline that asks about hub until release is
// closed.
type holdPipelines struct {
	hub     string
	release chan struct{}
}

func (h holdPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h holdPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h holdPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if key, ok := c.Args()[1].(string); ok && strings.Contains(key, "{"+h.hub+"}") {
				<-h.release
				break
			}
		}
		return next(ctx, cmds)
	}
}

// TestSeenQuestionOfAQuietHubDoesNotWaitForAFlood: while the questions of
// a hub with a backlog are held in Redis round trips, a quiet hub's
// question is answered: the two have senders of their own.
func TestSeenQuestionOfAQuietHubDoesNotWaitForAFlood(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.New(t)
	release := make(chan struct{})
	rdb.AddHook(holdPipelines{hub: "flood", release: release})
	seen, err := expander.NewSeen(rdb, prefix, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release) // before the wait: the held questions finish
	for i := range 8 {   // more than the flood's senders
		wg.Go(func() {
			if _, err := seen.Remember(ctx, "flood", "evt-"+strconv.Itoa(i), uint64(i+1), true); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // every sender of the flood's is held
	answered := make(chan error, 1)
	go func() {
		_, err := seen.Remember(ctx, "quiet", "evt-q", 100, false)
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the quiet hub's question waited for the flood's round trips")
	}
}
