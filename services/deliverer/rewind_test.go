package deliverer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
)

// A consumer that hands out again, as a first delivery, a message older
// than one it handed out before (a clustered consumer's new leader that
// lost track of what it had delivered; here, a consumer deleted and made
// again) has its jobs checked against the event log, as a redelivery's
// are (TestRedeliveredJobsAlreadyRecordedAreSkipped).
func TestRewoundMessagesMayBeDone(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	_, urls := hookServers(t, status(200))
	cfg := e.addHub("hub1", urls...)
	c := baseConfig(e.prefix, 0, 20*ms)
	svc, err := New(c, e.js, e.rdb, e.configs, e.eventLog, newSender(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fetch := func() jetstream.Msg {
		t.Helper()
		cons, err := eventbus.EnsureConsumer(ctx, e.js, eventbus.StreamDeliveries,
			eventbus.LiveConsumerConfig(time.Minute/2, 100))
		if err != nil {
			t.Fatal(err)
		}
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			return m
		}
		t.Fatalf("no message: %v", b.Error())
		return nil
	}
	first := e.publishJob(t, cfg, urls[0], 1, false)
	e.publishJob(t, cfg, urls[0], 2, false)

	// A deliverer that died took the first message; this one the second.
	if m := fetch(); svc.mayBeDone(m) != noCheck {
		t.Error("a first delivery of a new message may be done")
	}
	if m := fetch(); svc.mayBeDone(m) != noCheck {
		t.Error("a first delivery of a newer message may be done")
	}
	// The consumer forgets what it delivered: the first message comes
	// again, counted as delivered once.
	if err := e.js.DeleteConsumer(ctx, eventbus.StreamDeliveries, eventbus.ConsumerDeliverer); err != nil {
		t.Fatal(err)
	}
	m := fetch()
	jobs, err := eventbus.DecodeJobs(m.Headers(), m.Data())
	if err != nil || len(jobs) != 1 || jobs[0].GetDeliveryId() != first.GetDeliveryId() {
		t.Fatalf("fetched %v (%v), want the first job again", jobs, err)
	}
	if md, _ := m.Metadata(); md.NumDelivered != 1 {
		t.Fatalf("delivered %d times, want once", md.NumDelivered)
	}
	if got := svc.mayBeDone(m); got != checkCopy {
		t.Errorf("a message handed out again, older than one handed out before: %v, want checkCopy", got)
	}
	if n := testutil.ToFloat64(svc.metrics.rewound); n != 1 {
		t.Errorf("rewound messages: %v, want 1", n)
	}
}

func TestRewindsPerConsumer(t *testing.T) {
	r := newRewinds()
	md := func(consumer string, seq uint64) *jetstream.MsgMetadata {
		return &jetstream.MsgMetadata{Consumer: consumer, Sequence: jetstream.SequencePair{Stream: seq}}
	}
	for _, step := range []struct {
		consumer string
		seq      uint64
		want     bool
	}{
		{"live", 5, false},
		{"live", 7, false},
		{"shard-1", 6, false}, // another consumer's sequences
		{"live", 6, true},     // below 7: handed out again
		{"live", 7, true},
		{"live", 8, false},
		{"shard-1", 6, true},
	} {
		if got := r.again(md(step.consumer, step.seq)); got != step.want {
			t.Errorf("again(%s, %d) = %v, want %v", step.consumer, step.seq, got, step.want)
		}
	}
	// The consumers made again (a stream made again starts its sequences
	// over): nothing they hand out is taken for handed out before.
	r.forget()
	if r.again(md("live", 1)) {
		t.Error("after forget, a first sequence taken for one handed out before")
	}
}

// A copy of a job (RecheckInFlight: its event expanded again) whose first
// attempt is still on its way when the copy arrives, and still after the
// first round, is asked about again, longer each round, until that attempt
// reached the event log, and not POSTed.
func TestCopyWaitsForItsOriginalAttempt(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200))
	cfg := e.addHub("hub1", urls...)
	var calls atomic.Int32
	e.eventLog = eventLogFunc(func(_ context.Context, _ string, ids []string, _ []int32) ([]bool, error) {
		logged := calls.Add(1) > 2 // the original's attempt ends after the second question
		got := make([]bool, len(ids))
		for i := range got {
			got[i] = logged
		}
		return got, nil
	})
	e.start(t, baseConfig(e.prefix, 0, 20*ms), newSender(t))
	m, err := eventbus.NewFanoutMsg(fanoutOf(t, cfg, 1, urls...))
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(eventbus.HeaderRecheck, eventbus.RecheckInFlight)
	sent := time.Now()
	e.publish(t, m, nil)
	poll.Until(t, 20*time.Second, "the copy acked", func() bool { return calls.Load() >= 3 && e.consumerDrained(t) })
	if waited, want := time.Since(sent), copySettle+2*copySettle; waited < want {
		t.Errorf("asked a third time after %v, want after %v (two rounds)", waited, want)
	}
	if n := hooks[0].count(); n != 0 {
		t.Errorf("the copy was POSTed %d times, want 0", n)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("the log was asked %d times, want 3", n)
	}
}
