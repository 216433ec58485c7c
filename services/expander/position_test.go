package expander_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/services/expander"
)

// userUpdated publishes a USER.UPDATED (one webhook event) for hub.
func userUpdated(t *testing.T, e *env, hub, id string) {
	t.Helper()
	publishEvent(t, e.js, domainEvent(t, id, hub, "USER.UPDATED", map[string]any{"user": map[string]any{"id": id}}))
}

// expanded counts the jobs of each domain event of hub.
func expanded(t *testing.T, e *env, hub string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, j := range jobs(t, e.js, hub) {
		out[j.GetDomainEventId()]++
	}
	return out
}

// TestConsumerDeletedWhileRunning: the expander's consumer deleted under
// it is made again from where the expander was, loudly: the events it
// had expanded are not expanded again, the next ones are.
func TestConsumerDeletedWhileRunning(t *testing.T) {
	var logs syncBuffer
	e := start(t, expander.Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	const hub = "hub-lost"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	for _, id := range []string{"a", "b", "c"} {
		userUpdated(t, e, hub, id)
	}
	e.idle(t)
	poll.Until(t, 10*time.Second, "the expander's position read", func() bool {
		return gauge(t, e.reg, "hubhooks_expander_acked_through_sequence") >= 3
	})
	if err := e.js.DeleteConsumer(context.Background(), eventbus.StreamEvents, eventbus.ConsumerExpander); err != nil {
		t.Fatal(err)
	}
	userUpdated(t, e, hub, "d")
	poll.Until(t, 15*time.Second, "the event after the deletion expanded", func() bool { return expanded(t, e, hub)["d"] == 1 })
	e.idle(t)
	for id, n := range expanded(t, e, hub) {
		if n != 1 {
			t.Errorf("event %s expanded into %d jobs, want 1 (expanded again after the consumer was made again?)", id, n)
		}
	}
	// Fan-outs published again would be dropped as duplicates: count what
	// the expander read.
	if n := metric(t, e.reg, "hubhooks_expander_events_received_total"); n != 4 {
		t.Errorf("events read %v, want 4 (a, b, c once, then d): the stream was read again from before", n)
	}
	if n := metric(t, e.reg, "hubhooks_expander_consumer_lost_total"); n != 1 {
		t.Errorf("consumer lost counted %v times, want 1", n)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "deleted while the expander ran") {
		t.Errorf("no ERROR line about the deleted consumer in:\n%s", logs.String())
	}
}

// TestConsumerDeletedWhileDown: a consumer missing at start-up on a
// stream the expander consumed before is made again for new events only,
// with an ERROR line saying which events it does not expand.
func TestConsumerDeletedWhileDown(t *testing.T) {
	var logs syncBuffer
	e := start(t, expander.Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	const hub = "hub-down"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	userUpdated(t, e, hub, "before")
	e.idle(t)
	e.stop()
	if err := e.js.DeleteConsumer(context.Background(), eventbus.StreamEvents, eventbus.ConsumerExpander); err != nil {
		t.Fatal(err)
	}
	userUpdated(t, e, hub, "while-down")
	e.run(t)
	userUpdated(t, e, hub, "after")
	poll.Until(t, 15*time.Second, "the event after the restart expanded", func() bool { return expanded(t, e, hub)["after"] == 1 })
	e.idle(t)
	got := expanded(t, e, hub)
	if got["before"] != 1 || got["while-down"] != 0 {
		t.Errorf("jobs per event %v: want before 1 (not again), while-down 0 (left for a deliberate replay)", got)
	}
	if n := metric(t, e.reg, "hubhooks_expander_consumer_lost_total"); n != 1 {
		t.Errorf("consumer lost counted %v times, want 1", n)
	}
	if !strings.Contains(logs.String(), "deleted while the expander was down") || !strings.Contains(logs.String(), "last_sequence=2") {
		t.Errorf("no ERROR line naming the events not expanded in:\n%s", logs.String())
	}
}

// TestFirstStartExpandsWhatWaits: on a stream someone made before the
// expander's first start, the events waiting are expanded (nothing says a
// consumer existed).
func TestFirstStartExpandsWhatWaits(t *testing.T) {
	st := start(t, expander.Config{})
	st.stop()
	// A fresh stream without the expander's mark: delete and make it as an
	// operator would.
	ctx := context.Background()
	if err := st.js.DeleteStream(ctx, eventbus.StreamEvents); err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Ensure(ctx, st.js, eventbus.EventsStreamConfig(st.rules.StreamSubjects(), eventbus.Options{})); err != nil {
		t.Fatal(err)
	}
	const hub = "hub-first"
	st.cfgs.set(hubConfig(hub, 1, true, "u1"))
	userUpdated(t, st, hub, "waiting")
	st.run(t)
	poll.Until(t, 15*time.Second, "the waiting event expanded", func() bool { return expanded(t, st, hub)["waiting"] == 1 })
	if n := metric(t, st.reg, "hubhooks_expander_consumer_lost_total"); n != 0 {
		t.Errorf("consumer lost counted %v times on a first start, want 0", n)
	}
}
