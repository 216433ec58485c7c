package e2e_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/publisher"
	"github.com/hubhooks/hubhooks/pkg/tracing"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// TestTraceAcrossServices follows one domain event's trace from the
// publisher SDK through the expander, the deliverer's attempt (with the
// HTTP client's span under it) and the logger, in hubd with a span
// recorder as the tracer provider, and reads the trace id back from the
// event log entry. Receivers get no trace context.
func TestTraceAcrossServices(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tracing.Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	h := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recv := newReceiver(t)
	const hub = "traced"
	if _, err := h.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: recv.URL + "/hook"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	pub, err := publisher.New(h.js)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := publisher.UserUpdated(hub, map[string]any{"user": map[string]any{"id": "u1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the webhook", func() bool { return len(recv.byDomainEvent(ev.GetId())) == 1 })
	if got := recv.byDomainEvent(ev.GetId())[0].Header.Get("traceparent"); got != "" {
		t.Errorf("the receiver got a traceparent header %q: trace context must not leave hubhooks", got)
	}

	var traceID string
	for _, s := range rec.Ended() {
		if s.Name() == "publish USER.UPDATED" {
			traceID = s.SpanContext().TraceID().String()
		}
	}
	if traceID == "" {
		t.Fatal("no publish span")
	}
	// Every hop's span in the publisher's trace, the HTTP span under the
	// attempt's.
	want := []string{"publish USER.UPDATED", "expand USER.UPDATED", "deliver attempt", "POST webhook", "log attempt"}
	poll.Until(t, 30*time.Second, "a span of every hop in the trace", func() bool {
		got := map[string]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID().String() == traceID {
				got[s.Name()] = s
			}
		}
		for _, name := range want {
			if got[name] == nil {
				return false
			}
		}
		if p := got["POST webhook"].Parent().SpanID(); p != got["deliver attempt"].SpanContext().SpanID() {
			t.Fatalf("the HTTP span's parent is %s, not the attempt's span", p)
		}
		checkStages(t, got["expand USER.UPDATED"], got["deliver attempt"])
		return true
	})

	list, err := h.logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub})
	if err != nil || len(list.GetEventLogs()) != 1 {
		t.Fatalf("ListEventLogs: %v, %d entries", err, len(list.GetEventLogs()))
	}
	entry, err := h.logs.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: hub, Id: list.GetEventLogs()[0].GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if entry.GetTraceId() != traceID {
		t.Errorf("the log entry's trace id is %q, want %q", entry.GetTraceId(), traceID)
	}
}

// checkStages checks that the expansion's and the attempt's spans time the
// event's way through the pipeline in order: stored, read, taken by a
// worker (the expansion's start), the seen memory's answer, then the job's
// message stored (before its publish is acknowledged, the expansion's
// fan-outs stored; the deliverer may take the job before that ack is
// back), the job taken by the deliverer, the POST (the attempt's start).
func checkStages(t *testing.T, expand, attempt sdktrace.ReadOnlySpan) {
	t.Helper()
	at := func(s sdktrace.ReadOnlySpan, name string) time.Time {
		for _, e := range s.Events() {
			if e.Name == name {
				return e.Time
			}
		}
		t.Fatalf("span %q has no event %s", s.Name(), name)
		return time.Time{}
	}
	type stage struct {
		name string
		at   time.Time
	}
	inOrder := func(stages ...stage) {
		for i := 1; i < len(stages); i++ {
			if stages[i].at.Before(stages[i-1].at) {
				t.Errorf("%s at %s, before %s at %s", stages[i].name, stages[i].at.Format(time.StampMicro), stages[i-1].name, stages[i-1].at.Format(time.StampMicro))
			}
		}
	}
	seen := stage{tracing.EventSeenAnswered, at(expand, tracing.EventSeenAnswered)}
	jobStored := stage{tracing.EventJobStored, at(attempt, tracing.EventJobStored)}
	inOrder(
		stage{tracing.EventStored, at(expand, tracing.EventStored)},
		stage{tracing.EventRead, at(expand, tracing.EventRead)},
		stage{"expansion start", expand.StartTime()},
		seen, jobStored,
		stage{tracing.EventJobTaken, at(attempt, tracing.EventJobTaken)},
		stage{"attempt start", attempt.StartTime()},
	)
	inOrder(seen, jobStored, stage{tracing.EventFanoutsStored, at(expand, tracing.EventFanoutsStored)})
}
