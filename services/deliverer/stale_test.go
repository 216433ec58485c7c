package deliverer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// An attempt made again after its delivery moved on (its message came
// back after an outage lost its record and ack, and the event log did not
// hold it yet) must not take the later attempt's retry away: its retry
// (the attempt after it) would replace the later one in the store, and
// its job, republished under a Nats-Msg-Id JetStream saw already, would be
// dropped as a duplicate, the entry removed, and the delivery left
// "retrying" for good.
func TestStaleAttemptKeepsTheLaterRetry(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(500))
	cfg := e.addHub("hub1", urls[0])
	c := baseConfig(e.prefix, 0, 20*ms, time.Second)
	c.AckWait = 20 * time.Second // attempt 1's message comes back when nak'd
	ctx := context.Background()

	// Attempt 1 was made by a deliverer that lost its record and its ack
	// (NATS went down): its message stays unacknowledged, held here, and
	// its retry (attempt 2) is in the store.
	job := e.publishJob(t, cfg, urls[0], 1, false)
	cons, err := eventbus.EnsureConsumer(ctx, e.js, eventbus.StreamDeliveries,
		eventbus.ConsumerConfig(eventbus.ConsumerDeliverer, c.AckWait, 100))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var first jetstream.Msg
	for m := range batch.Messages() {
		first = m
	}
	if first == nil {
		t.Fatal("attempt 1's message not fetched")
	}
	second := proto.Clone(job).(*deliveryv1.DeliveryJob)
	second.Attempt = 2
	if err := e.newStore().store(ctx, second, time.Now()); err != nil {
		t.Fatal(err)
	}

	// The scheduler republishes attempt 2, which fails and stores attempt
	// 3, due a second later.
	e.start(t, c, newSender(t))
	d := job.GetDeliveryId()
	poll.Until(t, 10*time.Second, "attempt 2 recorded", func() bool { return len(e.records.of(d)) == 1 })

	// Attempt 1's message comes back; the log does not hold it yet, so it
	// is made again.
	if err := first.Nak(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the delivery's last attempt", func() bool { return e.records.final(d) })
	want := []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusRetrying, hubhooksv1.StatusDead}
	if got := e.records.statuses(d); !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if n := hooks[0].count(); n != 3 {
		t.Errorf("POSTs %d, want 3 (attempts 2, 1 again, 3)", n)
	}
	if n, err := e.newStore().pending(ctx); err != nil || n != 0 {
		t.Errorf("pending retries %d (%v), want none", n, err)
	}
}

// The store keeps an entry of a later attempt of the same run and replaces
// one of the same or an earlier attempt, or of another run, whatever the
// job's other fields hold.
func TestStoreKeepsALaterAttempt(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	store, ctx := e.newStore(), context.Background()
	body := make([]byte, 70_000) // a length of three varint bytes, ':' and high bytes inside
	for i := range body {
		body[i] = byte(i)
	}
	run := timestamppb.New(time.Unix(1_700_000_000, 123_456_789))
	job := func(attempt int32, url string) *deliveryv1.DeliveryJob {
		return &deliveryv1.DeliveryJob{DeliveryId: "d1", HubId: "hub1", UrlId: "url:a", Url: url, Body: body,
			CreatedAt: run, Attempt: attempt, ConfigVersion: 300}
	}
	stored := func() *deliveryv1.DeliveryJob {
		v, err := e.rdb.HGet(ctx, store.hubKey("hub1"), "d1").Result()
		if err != nil {
			t.Fatal(err)
		}
		j, err := decodeEntry(v)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	for _, step := range []struct {
		attempt int32
		url     string
		want    string
	}{
		{3, "http://a", "http://a"},
		{2, "http://stale", "http://a"},     // earlier: kept
		{3, "http://again", "http://again"}, // same attempt: replaced
		{200, "http://later", "http://later"},
		{199, "http://stale", "http://later"},
		{1, "http://next-run", "http://next-run"}, // a later run: replaced
	} {
		j := job(step.attempt, step.url)
		if step.url == "http://next-run" {
			j.CreatedAt = timestamppb.Now()
		}
		if err := store.store(ctx, j, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got := stored().GetUrl(); got != step.want {
			t.Errorf("after storing attempt %d: entry of %s, want %s", step.attempt, got, step.want)
		}
	}
	// The same attempt parked more often is further along too: an older
	// copy of it parked again late (fewer deferrals) leaves it, or the
	// scheduler would republish a job whose Nats-Msg-Id JetStream has seen.
	for _, step := range []struct {
		attempt, deferrals int32
		url, want          string
	}{
		{300, 2, "http://parked-twice", "http://parked-twice"}, // this run again: replaces the other run's
		{300, 1, "http://stale", "http://parked-twice"},
		{300, 0, "http://stale", "http://parked-twice"},
		{300, 2, "http://again", "http://again"},
		{300, 3, "http://thrice", "http://thrice"},
		{301, 0, "http://retry", "http://retry"},
	} {
		j := job(step.attempt, step.url)
		j.Deferrals = step.deferrals
		if err := store.store(ctx, j, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got := stored().GetUrl(); got != step.want {
			t.Errorf("after storing attempt %d parked %d times: entry of %s, want %s", step.attempt, step.deferrals, got, step.want)
		}
	}
}
