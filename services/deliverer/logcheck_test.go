package deliverer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
)

// A message JetStream delivers again (its deliverer died before the ack)
// is not POSTed again for the jobs whose attempt the event log already
// holds.
func TestRedeliveredJobsAlreadyRecordedAreSkipped(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200), status(200), status(200))
	cfg := e.addHub("hub1", urls...)
	c := baseConfig(e.prefix, 0, 20*ms)
	c.AckWait = 2 * time.Second
	jobs := e.publishFanout(t, cfg, 0, urls...)
	// The log holds the attempts of the first two targets (their POSTs were
	// made by a deliverer that died before acking the message).
	recorded := map[string]bool{jobs[0].GetDeliveryId(): true, jobs[1].GetDeliveryId(): true}
	var asked sync.Map
	var calls atomic.Int32
	e.eventLog = eventLogFunc(func(_ context.Context, hub string, ids []string, attempts []int32) ([]bool, error) {
		calls.Add(1)
		got := make([]bool, len(ids))
		for i, id := range ids {
			asked.Store(id, attempts[i])
			got[i] = recorded[id]
		}
		return got, nil
	})

	// That deliverer: it fetched the message and never acked it.
	ctx := context.Background()
	cons, err := eventbus.EnsureConsumer(ctx, e.js, eventbus.StreamDeliveries,
		eventbus.ConsumerConfig(eventbus.ConsumerDeliverer, c.AckWait, 100))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}

	e.start(t, c, newSender(t))
	poll.Until(t, 15*time.Second, "the third target delivered and the message acked", func() bool {
		return e.records.final(jobs[2].GetDeliveryId()) && e.consumerDrained(t)
	})
	for i, want := range []int{0, 0, 1} {
		if n := hooks[i].count(); n != want {
			t.Errorf("url_%d got %d POSTs, want %d", i, n, want)
		}
	}
	if v, ok := asked.Load(jobs[2].GetDeliveryId()); !ok || v.(int32) != 1 {
		t.Errorf("the log was not asked about attempt 1 of the third target (%v, %v)", v, ok)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the log was asked %d times about one fan-out, want once", n)
	}
}
