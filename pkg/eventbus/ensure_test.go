package eventbus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/natstest"
)

// TestEnsureUpdatesOnlyWhatChanged: a replica starting against streams and
// consumers that already have its config sends no create or update
// request (replicas starting together would otherwise each propose the
// same change); a changed setting is applied.
func TestEnsureUpdatesOnlyWhatChanged(t *testing.T) {
	srv, _, js := natstest.Start(t)
	ctx := context.Background()
	// The server may hand a request to the JetStream API, and the API's
	// answer to the caller, before it hands the request to this watcher: a
	// request is counted once it arrives, waiting for the ones expected and
	// a little longer for any more.
	writes := make(chan *nats.Msg, 64)
	watch, _ := natstest.Connect(t, srv)
	for _, subj := range []string{"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.DURABLE.CREATE.>"} {
		if _, err := watch.ChanSubscribe(subj, writes); err != nil {
			t.Fatal(err)
		}
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	ensure := func(o Options, ackWait time.Duration) {
		t.Helper()
		if err := Ensure(ctx, js, EventsOverflowStreamConfig(o)); err != nil {
			t.Fatal(err)
		}
		cfgs := []jetstream.ConsumerConfig{ExpanderOverflowConsumerConfig(0, ackWait, 100), ExpanderOverflowConsumerConfig(1, ackWait, 100)}
		if _, err := EnsureConsumers(ctx, js, StreamEventsOverflow, cfgs...); err != nil {
			t.Fatal(err)
		}
	}
	writesOf := func(what string, want int) {
		t.Helper()
		got := 0
		deadline := time.After(5 * time.Second)
		for got < want {
			select {
			case <-writes:
				got++
			case <-deadline:
				t.Fatalf("%s: %d create or update requests in 5s, want %d", what, got, want)
			}
		}
		extra := time.After(200 * time.Millisecond)
		for waiting := true; waiting; {
			select {
			case <-writes:
				got++
			case <-extra:
				waiting = false
			}
		}
		if got != want {
			t.Errorf("%s: %d create or update requests, want %d", what, got, want)
		}
	}
	ensure(Options{}, time.Minute)
	writesOf("first start", 4) // the stream (an update refused, a create), two consumers
	ensure(Options{}, time.Minute)
	writesOf("the same config again", 0)
	ensure(Options{}, 2*time.Minute)
	writesOf("a consumer setting changed", 2)
	ensure(Options{DuplicateWindow: 30 * time.Second}, 2*time.Minute)
	writesOf("a stream setting changed", 1)
	info, err := js.Stream(ctx, StreamEventsOverflow)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().Config.Duplicates; got != 30*time.Second {
		t.Errorf("stream duplicate window %s, want the changed 30s", got)
	}
}
