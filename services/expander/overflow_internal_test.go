package expander

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/poll"
)

// TestMovedBatchSettlesOnceForAllItsEvents: the events of an
// events-overflow batch are read back as their originals; the batch is
// acknowledged once all of them are, and handed back once all settled when
// any asked to be tried again, its events then delivered again.
func TestMovedBatchSettlesOnceForAllItsEvents(t *testing.T) {
	_, _, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := eventbus.Ensure(ctx, js, eventbus.EventsStreamConfig([]string{"USER.*"}, eventbus.Options{}),
		eventbus.EventsOverflowStreamConfig(eventbus.Options{})); err != nil {
		t.Fatal(err)
	}
	live, err := eventbus.EnsureConsumer(ctx, js, eventbus.StreamEvents, eventbus.ConsumerConfig("expander", time.Minute, 100))
	if err != nil {
		t.Fatal(err)
	}
	shard := eventbus.OverflowShard("acme")
	back, err := eventbus.EnsureConsumer(ctx, js, eventbus.StreamEventsOverflow, eventbus.ExpanderOverflowConsumerConfig(shard, time.Minute, 100))
	if err != nil {
		t.Fatal(err)
	}
	// moveBatch publishes three events, moves them as one batch and
	// returns the batch's events read back.
	moveBatch := func() []jetstream.Msg {
		t.Helper()
		for _, body := range []string{"a", "b", "c"} {
			m := nats.NewMsg("USER.UPDATED")
			m.Data = []byte(body)
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		fetched, err := live.Fetch(3)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []jetstream.Msg
		var mds []*jetstream.MsgMetadata
		for m := range fetched.Messages() {
			md, _ := m.Metadata()
			msgs, mds = append(msgs, m), append(mds, md)
			_ = m.Ack()
		}
		if _, err := js.PublishMsg(ctx, eventbus.EventsOverflowBatchOf("acme", msgs, mds, make([]bool, len(msgs)))); err != nil {
			t.Fatal(err)
		}
		return readBatch(t, back, mds)
	}
	ackPending := func() int {
		t.Helper()
		info, err := back.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending + int(info.NumPending)
	}

	events := moveBatch()
	_ = events[0].Ack()
	_ = events[1].Term()
	_ = events[1].Ack() // settled already: no second count
	if n := ackPending(); n != 1 {
		t.Fatalf("%d copies unsettled with one event left, want the batch", n)
	}
	_ = events[2].Ack()
	poll.Until(t, 5*time.Second, "the batch acknowledged", func() bool { return ackPending() == 0 })

	events = moveBatch()
	_ = events[0].Ack()
	_ = events[1].NakWithDelay(100 * time.Millisecond)
	_ = events[2].Ack()
	again, err := back.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range again.Messages() {
		md, _ := m.Metadata()
		for _, e := range movedEventsOf(m, md) {
			n++
			if emd, _ := e.Metadata(); emd.NumDelivered < 2 {
				t.Errorf("event at %d of a batch handed back: delivered %d times, want again", emd.Sequence.Stream, emd.NumDelivered)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d events came back, want the batch's 3", n)
	}
}

// readBatch fetches one events-overflow message and returns its events,
// checking that they are the originals of mds.
func readBatch(t *testing.T, cons jetstream.Consumer, mds []*jetstream.MsgMetadata) []jetstream.Msg {
	t.Helper()
	fetched, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range fetched.Messages() {
		md, _ := m.Metadata()
		out = movedEventsOf(m, md)
	}
	if len(out) != len(mds) {
		t.Fatalf("%d events read back, want %d", len(out), len(mds))
	}
	for i, e := range out {
		md, err := e.Metadata()
		if err != nil || md.Stream != eventbus.StreamEvents || md.Sequence.Stream != mds[i].Sequence.Stream ||
			!md.Timestamp.Equal(mds[i].Timestamp) || e.Subject() != "USER.UPDATED" || md.NumDelivered != 1 {
			t.Errorf("event %d read back as %+v on %s, want the original at %d", i, md, e.Subject(), mds[i].Sequence.Stream)
		}
	}
	return out
}
