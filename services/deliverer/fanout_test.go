package deliverer

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// A fan-out message (one webhook event, several URLs) is delivered to each
// URL once, each target with its own outcome, and acknowledged when all are
// settled. A target that hits an infrastructure error is retried alone: the
// targets already delivered are not delivered again.
func TestFanoutDeliversEachTargetOnce(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200), status(204),
		func(n int, w http.ResponseWriter, _ *http.Request) { // flaky: 500 once
			if n == 1 {
				w.WriteHeader(500)
			}
		})
	cfg := e.addHub("hub1", urls...)
	// The first config lookup fails: one target of the first event must be
	// retried on its own.
	e.configs.mu.Lock()
	e.configs.failFetches = 1
	e.configs.mu.Unlock()
	e.start(t, baseConfig(e.prefix, 0, 20*ms), newSender(t))

	var jobs []*deliveryJob
	for n := range 5 {
		jobs = append(jobs, e.publishFanout(t, cfg, n, urls...)...)
	}
	poll.Until(t, 20*time.Second, "every target final", func() bool {
		for _, j := range jobs {
			if !e.records.final(j.GetDeliveryId()) {
				return false
			}
		}
		return true
	})
	poll.Until(t, 10*time.Second, "consumer drained", func() bool { return e.consumerDrained(t) })
	for _, j := range jobs {
		got := e.records.statuses(j.GetDeliveryId())
		if got[len(got)-1] != hubhooksv1.StatusSucceeded {
			t.Errorf("%s (%s): statuses %v", j.GetDeliveryId(), j.GetUrlId(), got)
		}
	}
	if got := e.records.statuses(jobs[2].GetDeliveryId()); !slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusRetrying, hubhooksv1.StatusSucceeded}) &&
		!slices.Equal(got, []hubhooksv1.DeliveryStatus{hubhooksv1.StatusSucceeded}) {
		t.Errorf("flaky target statuses %v", got)
	}
	// 5 events to each URL, plus one retry at the flaky URL: no target
	// delivered twice.
	for i, want := range []int{5, 5, 6} {
		if n := hooks[i].count(); n != want {
			t.Errorf("url_%d got %d POSTs, want %d", i, n, want)
		}
	}
	for i, h := range hooks {
		seen := map[string]int{}
		h.mu.Lock()
		for _, hd := range h.headers {
			seen[hd.Get(webhook.HeaderID)]++
		}
		h.mu.Unlock()
		if len(seen) != 5 {
			t.Errorf("url_%d got %d distinct webhook-ids, want 5", i, len(seen))
		}
	}
}

// TestRecheckedFanoutBatch: a fan-out batch (webhook events of several
// domain events) is delivered target by target and acked once all are done;
// marked with HeaderRecheck (the expander expanded its events again) it is
// checked against the log first, though delivered for the first time, and
// the jobs the log holds are not POSTed again.
func TestRecheckedFanoutBatch(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200), status(200))
	cfg := e.addHub("hub1", urls...)
	c := baseConfig(e.prefix, 0, 20*ms)
	for _, recheck := range []bool{false, true} {
		base := 10
		if recheck {
			base = 20
		}
		m, err := eventbus.NewFanoutBatchMsg("hub1", []*deliveryv1.DeliveryFanout{
			fanoutOf(t, cfg, base, urls...), fanoutOf(t, cfg, base+1, urls...), fanoutOf(t, cfg, base+2, urls...)})
		if recheck && err == nil {
			m.Header.Set(eventbus.HeaderRecheck, "1")
		}
		e.publish(t, m, err)
	}
	// The log holds the first target of each webhook event of the rechecked
	// batch, and of the other (which must not be asked about).
	var calls atomic.Int32
	e.eventLog = eventLogFunc(func(_ context.Context, hub string, ids []string, attempts []int32) ([]bool, error) {
		calls.Add(1)
		got := make([]bool, len(ids))
		for i := range ids {
			got[i] = i%2 == 0
		}
		return got, nil
	})
	e.start(t, c, newSender(t))
	poll.Until(t, 15*time.Second, "both messages acked", func() bool {
		return e.consumerDrained(t) && hooks[0].count()+hooks[1].count() == 9
	})
	if n0, n1 := hooks[0].count(), hooks[1].count(); n0 != 3 || n1 != 6 {
		t.Errorf("url_0 got %d POSTs, url_1 %d: want 3 (the plain batch) and 6 (both)", n0, n1)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the log was asked %d times, want once (about the rechecked batch)", n)
	}
}

// A target of a fan-out message that may be done, handed back (a nak) and
// republished as a job of its own, keeps the message's check: the job
// carries the message's HeaderRecheck, or its check's mark, and is not
// POSTed when the log holds the target by then (an earlier attempt, in
// flight when the message was checked, has been recorded). A target of a
// plain message is republished without it, and POSTed.
func TestRepublishedTargetKeepsRecheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		recheck     string // the message's HeaderRecheck
		redelivered bool
		want        string // the republished job's
		posts       int
	}{
		{name: "plain", want: "", posts: 2},
		{name: "marked", recheck: eventbus.RecheckDone, want: eventbus.RecheckDone, posts: 1},
		{name: "redelivered", redelivered: true, want: eventbus.RecheckInFlight, posts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			hooks, urls := hookServers(t, status(200), status(200))
			cfg := e.addHub("hub1", urls...)
			c := baseConfig(e.prefix, 0, 20*ms)
			// The log lacks both targets when the message is checked, and
			// holds every job asked about after.
			var calls atomic.Int32
			e.eventLog = eventLogFunc(func(_ context.Context, _ string, ids []string, _ []int32) ([]bool, error) {
				logged := calls.Add(1) > 1
				got := make([]bool, len(ids))
				for i := range got {
					got[i] = logged
				}
				return got, nil
			})
			// The single jobs published on the hub's subject: the
			// republished target.
			var mu sync.Mutex
			var republished []nats.Header
			sub, err := e.js.Conn().Subscribe(eventbus.DeliverySubject("hub1"), func(m *nats.Msg) {
				if m.Header.Get(eventbus.HeaderContentType) == eventbus.ContentTypeProtobuf {
					mu.Lock()
					republished = append(republished, m.Header)
					mu.Unlock()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			if err := e.js.Conn().Flush(); err != nil {
				t.Fatal(err)
			}

			m, err := eventbus.NewFanoutMsg(fanoutOf(t, cfg, 1, urls...))
			if tc.recheck != "" && err == nil {
				m.Header.Set(eventbus.HeaderRecheck, tc.recheck)
			}
			e.publish(t, m, err)
			if tc.redelivered { // a deliverer took it and handed it back
				cons, err := eventbus.EnsureConsumer(context.Background(), e.js, eventbus.StreamDeliveries,
					eventbus.LiveConsumerConfig(c.AckWait, 100))
				if err != nil {
					t.Fatal(err)
				}
				b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				for taken := range b.Messages() {
					if err := taken.Nak(); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The first config lookup fails: one target is handed back.
			e.configs.mu.Lock()
			e.configs.failFetches = 1
			e.configs.mu.Unlock()
			e.start(t, c, newSender(t))

			poll.Until(t, 15*time.Second, "the target republished and settled", func() bool {
				mu.Lock()
				n := len(republished)
				mu.Unlock()
				return n > 0 && e.consumerDrained(t)
			})
			mu.Lock()
			defer mu.Unlock()
			if len(republished) != 1 {
				t.Fatalf("%d jobs republished, want 1", len(republished))
			}
			if got := republished[0].Get(eventbus.HeaderRecheck); got != tc.want {
				t.Errorf("republished job's %s = %q, want %q", eventbus.HeaderRecheck, got, tc.want)
			}
			if n := hooks[0].count() + hooks[1].count(); n != tc.posts {
				t.Errorf("%d POSTs, want %d", n, tc.posts)
			}
		})
	}
}

// A target of a plain fan-out message whose republished job is stored but
// its ack lost (a leader election) is published again, the same message,
// which JetStream acks as a duplicate: the fan-out message is acked, not
// handed back, and no target is POSTed twice (the stored job and the
// message's copy).
func TestFanoutRepublishLostAck(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	js := &lostAckJS{JetStream: e.js}
	e.js = js
	hooks, urls := hookServers(t, status(200), status(200))
	cfg := e.addHub("hub1", urls...)
	c := baseConfig(e.prefix, 0, 20*ms)
	c.OpTimeout = 3 * time.Second // a second a try
	e.publishFanout(t, cfg, 1, urls...)
	// The first config lookup fails: one target is handed back.
	e.configs.mu.Lock()
	e.configs.failFetches = 1
	e.configs.mu.Unlock()
	e.start(t, c, newSender(t))

	poll.Until(t, 15*time.Second, "both targets POSTed and the consumer drained", func() bool {
		return hooks[0].count() > 0 && hooks[1].count() > 0 && e.consumerDrained(t)
	})
	if !js.lost.Load() {
		t.Fatal("no republished job's ack was lost")
	}
	time.Sleep(500 * time.Millisecond) // a message handed back comes back at once
	for i, h := range hooks {
		if n := h.count(); n != 1 {
			t.Errorf("url_%d got %d POSTs, want 1", i, n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := e.js.Stream(ctx, eventbus.StreamDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	if last := stream.CachedInfo().State.LastSeq; last != 2 {
		t.Errorf("deliveries stream stored %d messages, want 2 (the fan-out, the republished job once)", last)
	}
	cons, err := e.js.Consumer(ctx, eventbus.StreamDeliveries, eventbus.ConsumerDeliverer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.Delivered.Consumer; n != 2 || info.NumAckPending != 0 {
		t.Errorf("consumer handed out %d messages (%d unacked), want 2 (the fan-out once, the job) all acked", n, info.NumAckPending)
	}
}

// lostAckJS is a JetStream whose first single job published async is
// stored, but its future reports a timeout: a lost ack.
type lostAckJS struct {
	jetstream.JetStream
	lost atomic.Bool
}

func (j *lostAckJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	fut, err := j.JetStream.PublishMsgAsync(m, opts...)
	if err != nil || m.Header.Get(eventbus.HeaderContentType) != eventbus.ContentTypeProtobuf || !j.lost.CompareAndSwap(false, true) {
		return fut, err
	}
	lost := &lostAck{msg: m, err: make(chan error, 1)}
	go func() {
		select {
		case <-fut.Ok(): // stored
			lost.err <- nats.ErrTimeout
		case err := <-fut.Err():
			lost.err <- err
		}
	}()
	return lost, nil
}

// lostAck is the future of a publish whose ack was lost.
type lostAck struct {
	msg *nats.Msg
	err chan error
}

func (a *lostAck) Ok() <-chan *jetstream.PubAck { return nil }
func (a *lostAck) Err() <-chan error            { return a.err }
func (a *lostAck) Msg() *nats.Msg               { return a.msg }
