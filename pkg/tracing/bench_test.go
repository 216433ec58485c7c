package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/hubhooks/hubhooks/pkg/tracing"
)

// BenchmarkOffPerDelivery is what tracing adds to one event with one
// delivery while it is off (run it alone: -run '^$'; TestTraceContext turns
// tracing on for the rest of the process): the publisher's span and
// header injection, the expander's extraction, span, stage events and trace
// parent, the attempt's span from the job's (empty) trace parent and its
// stage events.
func BenchmarkOffPerDelivery(b *testing.B) {
	if tracing.Enabled() {
		b.Skip("tracing was turned on by a test of this process; run the benchmark alone")
	}
	ctx := context.Background()
	h := nats.Header{"Nats-Msg-Id": []string{"x"}}
	b.ReportAllocs()
	for b.Loop() {
		pctx, pub := tracing.Start(ctx, "publish")
		tracing.Inject(pctx, h)
		pub.End()
		ectx, exp := tracing.Start(tracing.Extract(ctx, h), "expand")
		if exp.IsRecording() {
			b.Fatal("recording while off")
		}
		tp := tracing.TraceParent(ectx)
		span := trace.SpanFromContext(ectx)
		tracing.AddEvent(span, tracing.EventSeenAnswered)
		tracing.AddEvent(span, tracing.EventFanoutsStored)
		exp.End()
		_, att := tracing.Start(tracing.WithTraceParent(ctx, tp), "deliver attempt")
		tracing.AddEventAt(att, tracing.EventJobStored, time.Time{})
		tracing.AddEventAt(att, tracing.EventJobTaken, time.Time{})
		att.End()
	}
}
