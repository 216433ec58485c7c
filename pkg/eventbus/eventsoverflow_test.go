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

// TestEventsOverflowCopy moves a domain event to its hub's events-overflow
// subject twice (the expander died between the copy and the ack) and
// reads the one copy back as the original.
func TestEventsOverflowCopy(t *testing.T) {
	_, _, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Ensure(ctx, js, EventsStreamConfig([]string{"USER.*"}, Options{}), EventsOverflowStreamConfig(Options{})); err != nil {
		t.Fatal(err)
	}
	orig := nats.NewMsg("USER.UPDATED")
	orig.Data = []byte("body")
	orig.Header.Set(HeaderContentType, ContentTypeProtobuf)
	orig.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	orig.Header.Set(jetstream.MsgIDHeader, "evt-1")
	if _, err := js.PublishMsg(ctx, orig, jetstream.WithExpectStream(StreamEvents)); err != nil {
		t.Fatal(err)
	}
	live, err := EnsureConsumer(ctx, js, StreamEvents, ConsumerConfig("expander", time.Minute, 10))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := live.Next()
	if err != nil {
		t.Fatal(err)
	}
	md, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	for i, again := range []bool{false, true} {
		// The original's Nats-Expected-Stream is not the copy's.
		ack, err := js.PublishMsg(ctx, EventsOverflowCopyOf("acme", msg, md, again), jetstream.WithExpectStream(StreamEventsOverflow))
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		if ack.Duplicate != (i == 1) {
			t.Errorf("copy %d: duplicate %v", i, ack.Duplicate)
		}
	}
	shard := OverflowShard("acme")
	c, err := EnsureConsumer(ctx, js, StreamEventsOverflow, ExpanderOverflowConsumerConfig(shard, time.Minute, 10))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.Info(ctx); err != nil || info.NumPending != 1 {
		t.Fatalf("shard %d: %v pending (%v), want the one copy", shard, info.NumPending, err)
	}
	cp, err := c.Next()
	if err != nil {
		t.Fatal(err)
	}
	if cp.Subject() != EventsOverflowSubject("acme") || string(cp.Data()) != "body" {
		t.Errorf("copy on %s: %q", cp.Subject(), cp.Data())
	}
	o, ok := OriginalOfEventsOverflow(cp.Headers())
	if !ok {
		t.Fatalf("the copy does not say what its original was: %v", cp.Headers())
	}
	if o.Subject != "USER.UPDATED" || o.Seq != md.Sequence.Stream || !o.Stored.Equal(md.Timestamp) || o.Again {
		t.Errorf("original %+v, want USER.UPDATED, sequence %d stored at %v, first delivery", o, md.Sequence.Stream, md.Timestamp)
	}
	want := nats.Header{HeaderContentType: {ContentTypeProtobuf}, "Traceparent": orig.Header.Values("Traceparent"), jetstream.MsgIDHeader: {"evt-1"}}
	if len(o.Header) != len(want) {
		t.Errorf("original's headers %v, want %v", o.Header, want)
	}
	for k := range want {
		if o.Header.Get(k) != want.Get(k) {
			t.Errorf("original's %s = %q, want %q", k, o.Header.Get(k), want.Get(k))
		}
	}
	// A copy of a message delivered again says so.
	h := EventsOverflowCopyOf("acme", msg, md, true).Header
	if o, _ := OriginalOfEventsOverflow(h); !o.Again {
		t.Error("a copy made of a message delivered again does not say so")
	}
	if _, ok := OriginalOfEventsOverflow(nats.Header{}); ok {
		t.Error("a message without the original's headers taken for a copy")
	}
}

// TestEventsOverflowBatch moves three domain events to their hub's
// events-overflow subject in one batch, twice (the second copy is dropped
// as a duplicate), and reads each back as its original.
func TestEventsOverflowBatch(t *testing.T) {
	_, _, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Ensure(ctx, js, EventsStreamConfig([]string{"USER.*"}, Options{}), EventsOverflowStreamConfig(Options{})); err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{"one", "two", ""} {
		m := nats.NewMsg("USER.UPDATED")
		m.Data = []byte(body)
		m.Header.Set(HeaderContentType, ContentTypeProtobuf)
		m.Header.Add("X-Many", "a")
		m.Header.Add("X-Many", "b")
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("evt-%d", i))
		if _, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(StreamEvents)); err != nil {
			t.Fatal(err)
		}
	}
	live, err := EnsureConsumer(ctx, js, StreamEvents, ConsumerConfig("expander", time.Minute, 10))
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := live.Fetch(3)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	var mds []*jetstream.MsgMetadata
	for m := range fetched.Messages() {
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		msgs, mds = append(msgs, m), append(mds, md)
	}
	if len(msgs) != 3 {
		t.Fatalf("fetched %d events, want 3", len(msgs))
	}
	again := []bool{false, true, false}
	for i := range 2 {
		ack, err := js.PublishMsg(ctx, EventsOverflowBatchOf("acme", msgs, mds, again), jetstream.WithExpectStream(StreamEventsOverflow))
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		if ack.Duplicate != (i == 1) {
			t.Errorf("copy %d: duplicate %v", i, ack.Duplicate)
		}
	}
	c, err := EnsureConsumer(ctx, js, StreamEventsOverflow, ExpanderOverflowConsumerConfig(OverflowShard("acme"), time.Minute, 10))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := c.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !IsEventsOverflowBatch(cp.Headers()) || cp.Subject() != EventsOverflowSubject("acme") {
		t.Fatalf("copy on %s with headers %v, want a batch", cp.Subject(), cp.Headers())
	}
	events, err := EventsOverflowBatch(cp.Data())
	if err != nil || len(events) != 3 {
		t.Fatalf("%d events (%v), want 3", len(events), err)
	}
	for i, ev := range events {
		if ev.Subject != "USER.UPDATED" || ev.Seq != mds[i].Sequence.Stream || !ev.Stored.Equal(mds[i].Timestamp) ||
			ev.Again != again[i] || string(ev.Data) != string(msgs[i].Data()) {
			t.Errorf("event %d: %+v, want the original at sequence %d", i, ev, mds[i].Sequence.Stream)
		}
		if got := ev.Header.Get(jetstream.MsgIDHeader); got != fmt.Sprintf("evt-%d", i) {
			t.Errorf("event %d: Nats-Msg-Id %q", i, got)
		}
		if got := ev.Header.Values("X-Many"); len(got) != 2 || got[0] != "a" || got[1] != "b" || ev.Header.Get(HeaderContentType) != ContentTypeProtobuf {
			t.Errorf("event %d: headers %v", i, ev.Header)
		}
		if ev.Header.Get("Nats-Expected-Stream") != "" {
			t.Errorf("event %d keeps the server's headers: %v", i, ev.Header)
		}
	}
	for _, bad := range [][]byte{{0x05, 0x0a}, {0x02, 0x08, 0x01}} {
		if _, err := EventsOverflowBatch(bad); err == nil {
			t.Errorf("batch %x decoded", bad)
		}
	}
}
