package tracing_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hubhooks/hubhooks/pkg/tracing"
)

func TestTraceContext(t *testing.T) {
	ctx := context.Background()
	// Off (the default): no span context, nothing written anywhere.
	off, span := tracing.Tracer().Start(ctx, "off")
	h := nats.Header{}
	tracing.Inject(off, h)
	if len(h) != 0 || tracing.TraceParent(off) != "" || span.IsRecording() {
		t.Fatalf("tracing off: headers %v, traceparent %q, recording %v", h, tracing.TraceParent(off), span.IsRecording())
	}
	span.End()
	if tracing.Enabled() {
		t.Fatal("Enabled before Install")
	}

	rec := tracetest.NewSpanRecorder()
	tracing.Install(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	if !tracing.Enabled() {
		t.Fatal("not Enabled after Install")
	}
	pub, span := tracing.Tracer().Start(ctx, "publish")
	tracing.Inject(pub, h)
	if h.Get("traceparent") == "" {
		t.Fatal("no traceparent header injected")
	}
	tp := tracing.TraceParent(pub)
	if tp != h.Get("traceparent") {
		t.Errorf("TraceParent %q, header %q", tp, h.Get("traceparent"))
	}
	want := span.SpanContext().TraceID().String()
	if got := tracing.TraceID(tp); got != want {
		t.Errorf("TraceID = %q, want %q", got, want)
	}
	// Across a NATS hop and a job field, the next spans join the trace.
	_, hop := tracing.Tracer().Start(tracing.Extract(ctx, h), "expand")
	_, job := tracing.Tracer().Start(tracing.WithTraceParent(ctx, tp), "attempt")
	hop.End()
	job.End()
	span.End()
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID().String() != want {
			t.Errorf("span %s in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), want)
		}
	}
	if n := len(rec.Ended()); n != 3 {
		t.Errorf("%d spans recorded, want 3", n)
	}
	for _, bad := range []string{"", "00-zz", "not a traceparent"} {
		if got := tracing.TraceID(bad); got != "" {
			t.Errorf("TraceID(%q) = %q, want empty", bad, got)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []tracing.Config{{Endpoint: "x:4317"}, {SampleRatio: 2}, {SampleRatio: -1}} {
		if _, err := tracing.Setup(context.Background(), c); err == nil {
			t.Errorf("Setup(%+v) accepted", c)
		}
	}
	stop, err := tracing.Setup(context.Background(), tracing.Config{})
	if err != nil || stop(context.Background()) != nil {
		t.Fatalf("Setup without an endpoint: %v", err)
	}
}

// A ratio of 0 records only what publishers began and sampled: a tool or
// an operator tracing one tenant's events pays nothing for the others.
func TestSamplerZeroKeepsThePublishersTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(tracing.Sampler(0)))
	tracer := tp.Tracer("test")
	_, root := tracer.Start(context.Background(), "root")
	root.End()
	if root.SpanContext().IsSampled() {
		t.Error("ratio 0 sampled a trace begun here")
	}
	const sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_, child := tracer.Start(tracing.WithTraceParent(context.Background(), sampled), "expand")
	child.End()
	if !child.SpanContext().IsSampled() {
		t.Error("ratio 0 dropped a trace its publisher sampled")
	}
	if n := len(rec.Ended()); n != 1 {
		t.Errorf("%d spans recorded, want 1", n)
	}
}
