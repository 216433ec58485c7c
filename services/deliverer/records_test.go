package deliverer

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestRecordBatcher: records published concurrently by many workers arrive
// exactly once, in messages on their own hub's subject that the logger
// decodes, several records per message. (pkg/batch tests the batching
// itself: limits, and each publish getting its own message's outcome.)
func TestRecordBatcher(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{} // delivery id -> times sent
	var msgs int
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{metrics: m, records: newRecordBatcher(func(m *nats.Msg) error {
		time.Sleep(time.Millisecond) // a round trip, so records pile up
		recs, err := eventbus.DecodeAttempts(m.Header, m.Data)
		if err != nil {
			t.Error(err)
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		msgs++
		for _, r := range recs {
			if m.Subject != eventbus.AttemptSubject(r.GetJob().GetHubId()) {
				t.Errorf("record of %s on %s", r.GetJob().GetHubId(), m.Subject)
			}
			got[r.GetJob().GetDeliveryId()]++
		}
		return nil
	}, 0)}
	const workers, per = 50, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				rec := &deliveryv1.AttemptRecorded{
					Job:     &deliveryv1.DeliveryJob{DeliveryId: fmt.Sprintf("dlv_%d_%d", w, i), HubId: fmt.Sprintf("hub-%d", w%3)},
					Attempt: 1, Status: hubhooksv1.StatusSucceeded,
				}
				if err := s.publishRecord(rec); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(got) != workers*per {
		t.Fatalf("%d records sent, want %d", len(got), workers*per)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s sent %d times", id, n)
		}
	}
	if msgs >= workers*per {
		t.Errorf("%d messages for %d records: nothing was batched", msgs, workers*per)
	}
}

// TestRecordWaitsForTheAttemptsStream: the attempts stream takes nothing
// for a while after a POST (as while it elects a leader), so the record's
// publish fails; it is retried until stored, and the job, whose attempt is
// made, is not handed back to be POSTed again.
func TestRecordWaitsForTheAttemptsStream(t *testing.T) {
	e := newTestEnv(t)
	setSubjects := func(subjects ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cfg := eventbus.AttemptsStreamConfig(eventbus.Options{})
		cfg.Subjects = subjects
		if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
			t.Error(err)
		}
	}
	taken := eventbus.AttemptsStreamConfig(eventbus.Options{}).Subjects
	outage := 4 * time.Second // longer than a nak'ed job's delay
	hooks, urls := hookServers(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			setSubjects("hubhooks.test.nowhere")
			time.AfterFunc(outage, func() { setSubjects(taken...) })
		}
		w.WriteHeader(http.StatusNoContent)
	})
	cfg := e.addHub("hub-rec", urls[0])
	e.start(t, baseConfig(e.prefix), newSender(t))
	job := e.publishJob(t, cfg, urls[0], 1, false)
	poll.Until(t, 3*outage, "the attempt recorded", func() bool { return e.records.final(job.GetDeliveryId()) })
	time.Sleep(time.Second) // a job handed back would be POSTed by now
	if n := hooks[0].count(); n != 1 {
		t.Fatalf("%d POSTs, want 1", n)
	}
	if recs := e.records.of(job.GetDeliveryId()); len(recs) != 1 {
		t.Errorf("%d records, want 1", len(recs))
	}
}
