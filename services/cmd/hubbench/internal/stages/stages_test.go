package stages_test

import (
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/hubhooks/hubhooks/pkg/tracing"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/stages"
)

// TestStagesOfATracedEvent sends, over OTLP as hubd does, the spans of an
// event whose trace the tool began and of one it did not (a burst's), and
// reads the first one's stages back.
func TestStagesOfATracedEvent(t *testing.T) {
	c, err := stages.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(c.Addr()), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(tracing.Sampler(0)))
	tracer := tp.Tracer("test")

	m := nats.NewMsg("USER.UPDATED")
	c.Begin(m, "q1")
	base := time.Now()
	ms := func(n int) time.Time { return base.Add(time.Duration(n) * time.Millisecond) }
	// One event: stored 1 ms after it was sent, read 2 ms later, ... The
	// times need not be real, only in order.
	expCtx, expand := tracer.Start(tracing.WithTraceParent(ctx, m.Header.Get("traceparent")), "expand USER.UPDATED", trace.WithTimestamp(ms(6)))
	expand.AddEvent(tracing.EventStored, trace.WithTimestamp(ms(1)))
	expand.AddEvent(tracing.EventRead, trace.WithTimestamp(ms(3)))
	expand.AddEvent(tracing.EventSeenAnswered, trace.WithTimestamp(ms(10)))
	expand.End(trace.WithTimestamp(ms(20)))
	for _, attempt := range []int{1, 2} { // a retry is not counted
		_, a := tracer.Start(expCtx, "deliver attempt", trace.WithTimestamp(ms(30)))
		a.SetAttributes(attribute.Int("hubhooks.attempt", attempt))
		a.AddEvent(tracing.EventJobStored, trace.WithTimestamp(ms(15)))
		a.AddEvent(tracing.EventJobTaken, trace.WithTimestamp(ms(21)))
		a.End(trace.WithTimestamp(ms(37)))
	}
	// A burst's event: no trace begun, so nothing recorded.
	_, burst := tracer.Start(ctx, "expand USER.UPDATED")
	burst.AddEvent(tracing.EventRead)
	burst.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	got, deliveries, incomplete := c.Of("q1")
	if deliveries != 1 || incomplete != 0 {
		t.Fatalf("%d deliveries, %d events incomplete; want 1 and 0", deliveries, incomplete)
	}
	// publish → stored is from Begin to 1 ms after the test began: about
	// 1 ms. The others are exact.
	want := map[string]float64{
		"stored → read": 2, "read → taken": 3, "taken → seen answered": 4, "seen → job stored": 5,
		"job stored → taken": 6, "taken → POST": 9, "POST → answer": 7,
	}
	if len(got) != len(stages.Names) {
		t.Fatalf("%d stages, want %d", len(got), len(stages.Names))
	}
	for _, s := range got {
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		if d := s.Latency.P50Ms - w; d < -0.01 || d > 0.01 || s.SlowestMeanMs-w < -0.01 || s.SlowestMeanMs-w > 0.01 {
			t.Errorf("%s: p50 %.3f ms, slowest mean %.3f ms; want %.0f", s.Name, s.Latency.P50Ms, s.SlowestMeanMs, w)
		}
	}
	if total := got[len(got)-1].Latency.P50Ms; total < 37 || total > 60 {
		t.Errorf("publish → answer %.1f ms, want about 37", total)
	}
	if _, n, _ := c.Of("b2"); n != 0 {
		t.Errorf("%d deliveries of a traffic not traced", n)
	}

	var csvOut strings.Builder
	if err := c.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(csvOut.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || len(rows[1]) != 2+len(stages.Names) || rows[1][0] != "q1" || rows[1][3] != "2.000" {
		t.Errorf("CSV %q, want a header and q1's row with stored → read 2.000", rows)
	}
}
