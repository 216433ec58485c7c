package deliverer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestJobGoesToTheConfiguredURL: a job naming the hub's real url_id and
// another URL (a forged job, or one made before the URL changed) is sent
// to the URL the hub's config holds for that id, never to its own.
func TestJobGoesToTheConfiguredURL(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200), status(200))
	good, evil := hooks[0], hooks[1]
	cfg := e.addHub("hub1", urls[0])
	e.start(t, baseConfig(e.prefix, 0), newSender(t))

	forged := &hubhooksv1.CallbackUrl{Id: urls[0].GetId(), Url: urls[1].GetUrl() + "/steal"}
	job := e.publishJob(t, cfg, forged, 1, false)
	poll.Until(t, 10*time.Second, "terminal record", func() bool { return e.records.final(job.GetDeliveryId()) })
	if good.count() != 1 || evil.count() != 0 {
		t.Fatalf("POSTs: configured URL %d, the job's own URL %d; want 1 and 0", good.count(), evil.count())
	}
	rec := e.records.of(job.GetDeliveryId())[0]
	if rec.GetStatus() != hubhooksv1.StatusSucceeded || rec.GetJob().GetUrl() != urls[0].GetUrl() {
		t.Fatalf("record: %v to %s, want succeeded to %s", rec.GetStatus(), rec.GetJob().GetUrl(), urls[0].GetUrl())
	}
}

// TestJobsThatCanNeverBeAttemptedAreDeadLettered: a job whose hub id
// configsvc would refuse, without a url_id, or on another hub's subject is
// moved to the dead-letter stream with the reason, not retried, not sent.
func TestJobsThatCanNeverBeAttemptedAreDeadLettered(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200))
	cfg := e.addHub("hub1", urls[0])
	e.start(t, baseConfig(e.prefix, 0, 10*ms), newSender(t))

	base := &deliveryv1.DeliveryJob{
		DeliveryId: "dlv_bad", HubId: "hub1", WebhookEventId: "msg_bad", EventType: "API.CREATED",
		UrlId: urls[0].GetId(), Url: urls[0].GetUrl(), Body: []byte("{}"), Attempt: 1, ConfigVersion: cfg.GetVersion(),
	}
	with := func(change func(*deliveryv1.DeliveryJob)) *deliveryv1.DeliveryJob {
		j := proto.Clone(base).(*deliveryv1.DeliveryJob)
		change(j)
		return j
	}
	cases := []struct {
		name    string
		job     *deliveryv1.DeliveryJob
		subject string // "" is the job's own hub's subject
		reason  string
	}{
		{"hub id with a character hub ids never have", with(func(j *deliveryv1.DeliveryJob) { j.HubId, j.DeliveryId = "h@b", "dlv_1" }), "", "hub_id"},
		{"hub id too long", with(func(j *deliveryv1.DeliveryJob) { j.HubId, j.DeliveryId = strings.Repeat("h", 65), "dlv_2" }), "", "hub_id"},
		{"no url_id", with(func(j *deliveryv1.DeliveryJob) { j.UrlId, j.DeliveryId = "", "dlv_3" }), "", "without url_id"},
		{"another hub's subject", with(func(j *deliveryv1.DeliveryJob) { j.DeliveryId = "dlv_4" }), eventbus.DeliverySubject("hub2"), "of another hub"},
		{"another hub's overflow subject", with(func(j *deliveryv1.DeliveryJob) { j.DeliveryId = "dlv_5" }), eventbus.OverflowDeliverySubject("hub2"), "of another hub"},
	}
	for _, tc := range cases {
		m, err := eventbus.NewJobMsg(tc.job)
		if tc.subject != "" {
			m.Subject = tc.subject
		}
		e.publish(t, m, err)
	}
	reasons := func() map[string]string {
		out := map[string]string{}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		oc, err := e.js.OrderedConsumer(ctx, eventbus.StreamDeadLetters, jetstream.OrderedConsumerConfig{FilterSubjects: []string{eventbus.SubjectDeadLetterJobs}})
		if err != nil {
			return out
		}
		b, err := oc.Fetch(10, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			return out
		}
		for msg := range b.Messages() {
			jobs, err := eventbus.DecodeJobs(msg.Headers(), msg.Data())
			if err == nil && len(jobs) == 1 {
				out[jobs[0].GetDeliveryId()] = msg.Headers().Get(eventbus.HeaderReason)
			}
		}
		return out
	}
	var got map[string]string
	poll.Until(t, 15*time.Second, "a dead letter for each", func() bool { got = reasons(); return len(got) == len(cases) })
	for _, tc := range cases {
		if r := got[tc.job.GetDeliveryId()]; !strings.Contains(r, tc.reason) {
			t.Errorf("%s: dead-letter reason %q, want it to say %q", tc.name, r, tc.reason)
		}
	}
	poll.Until(t, 10*time.Second, "deliveries consumer drained (nothing retried)", func() bool { return e.consumerDrained(t) })
	if hooks[0].count() != 0 {
		t.Errorf("%d POSTs of jobs that should have been dead-lettered", hooks[0].count())
	}
}

// TestConsumerDeletedWhileRunning: the deliverer's consumer deleted under
// it is made again, loudly, and the jobs published after are delivered.
func TestConsumerDeletedWhileRunning(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200))
	cfg := e.addHub("hub1", urls[0])
	reg := prometheus.NewRegistry()
	c := baseConfig(e.prefix, 0)
	c.Registerer = reg
	e.start(t, c, newSender(t))
	first := e.publishJob(t, cfg, urls[0], 1, false)
	poll.Until(t, 10*time.Second, "first job delivered", func() bool { return e.records.final(first.GetDeliveryId()) })

	if err := e.js.DeleteConsumer(context.Background(), eventbus.StreamDeliveries, eventbus.ConsumerDeliverer); err != nil {
		t.Fatal(err)
	}
	second := e.publishJob(t, cfg, urls[0], 2, false)
	poll.Until(t, 20*time.Second, "the job after the deletion delivered", func() bool { return e.records.final(second.GetDeliveryId()) })
	if hooks[0].count() != 2 {
		t.Errorf("POSTs %d, want 2", hooks[0].count())
	}
	if n := counterValue(t, reg, "hubhooks_deliverer_consumer_lost_total"); n != 1 {
		t.Errorf("consumer lost counted %v times, want 1", n)
	}
}

// counterValue is the value of the counter name (without labels) in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestStreamDeletedWhileRunning: the deliveries stream deleted under the
// deliverer is made again with its consumer, and the jobs published after
// are delivered at once: the new stream's sequences start over, and are
// not taken for messages handed out before (rewinds).
func TestStreamDeletedWhileRunning(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	hooks, urls := hookServers(t, status(200))
	cfg := e.addHub("hub1", urls[0])
	reg := prometheus.NewRegistry()
	c := baseConfig(e.prefix, 0)
	c.Registerer = reg
	e.start(t, c, newSender(t))
	for i := range 3 {
		job := e.publishJob(t, cfg, urls[0], i, false)
		poll.Until(t, 10*time.Second, "job delivered", func() bool { return e.records.final(job.GetDeliveryId()) })
	}

	if err := e.js.DeleteStream(context.Background(), eventbus.StreamDeliveries); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the stream made again", func() bool {
		if counterValue(t, reg, "hubhooks_deliverer_consumer_lost_total") < 1 {
			return false
		}
		_, err := e.js.Consumer(context.Background(), eventbus.StreamDeliveries, eventbus.ConsumerDeliverer)
		return err == nil && e.consumerDrained(t)
	})
	// The stream made again may leave a first publish unanswered (seen on
	// a loaded machine, in CI); a publisher sends it again, and the
	// message's id keeps the copies one job.
	job, m, err := newJob(cfg, urls[0], 9, false)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the job after the deletion stored", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := e.js.PublishMsg(ctx, m)
		return err == nil
	})
	poll.Until(t, 10*time.Second, "the job after the deletion delivered", func() bool { return e.records.final(job.GetDeliveryId()) })
	if hooks[0].count() != 4 {
		t.Errorf("POSTs %d, want 4", hooks[0].count())
	}
	if n := counterValue(t, reg, "hubhooks_deliverer_rewound_messages_total"); n != 0 {
		t.Errorf("%v messages of the new stream taken for messages handed out before", n)
	}
}
