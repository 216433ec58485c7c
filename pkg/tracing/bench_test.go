package tracing_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/hubhooks/hubhooks/pkg/tracing"
)

// BenchmarkOffPerDelivery is what tracing adds to one event with one
// delivery while it is off (run it alone: -run '^$'; TestTraceContext turns
// tracing on for the rest of the process): the publisher's span and
// header injection, the expander's extraction, span and trace parent, the
// attempt's span from the job's (empty) trace parent.
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
		tp := tracing.TraceParent(ectx)
		exp.End()
		_, att := tracing.Start(tracing.WithTraceParent(ctx, tp), "deliver attempt")
		att.End()
	}
}
