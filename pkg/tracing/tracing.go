package tracing

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// instrumentation names hubhooks' tracer.
const instrumentation = "github.com/hubhooks/hubhooks"

// Config says where spans go.
type Config struct {
	// Endpoint is the OTLP/gRPC collector address (host:port); empty
	// leaves tracing off.
	Endpoint string
	// Insecure sends OTLP without TLS (a collector on the same host or
	// network).
	Insecure bool
	// Service is the service.name of the spans.
	Service string
	// SampleRatio is the share of new traces recorded, 0 to 1; a trace
	// begun upstream keeps its parent's decision, so 0 records only the
	// traces publishers began and sampled.
	SampleRatio float64
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Endpoint != "" && c.Service == "" {
		errs = append(errs, errors.New("tracing: a service name is required"))
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("tracing: sample ratio %v: must be between 0 and 1", c.SampleRatio))
	}
	return errors.Join(errs...)
}

// Setup installs an OTLP exporter as the global tracer provider and the W3C
// trace context as the global propagator when cfg has an endpoint, and
// does nothing otherwise. stop flushes and shuts the exporter down.
func Setup(ctx context.Context, cfg Config) (stop func(context.Context) error, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(Sampler(cfg.SampleRatio)),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", cfg.Service))),
	)
	Install(tp)
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return tp.Shutdown(ctx)
	}, nil
}

// Sampler records ratio of the traces begun here and, whatever ratio is,
// every trace whose parent (a publisher's traceparent) was sampled.
func Sampler(ratio float64) sdktrace.Sampler {
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
}

// enabled is set once a tracer provider is installed.
var enabled atomic.Bool

// Install makes tp the global tracer provider and the W3C trace context
// the global propagator (Setup does it for OTLP; tests give a recorder).
func Install(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	enabled.Store(true)
}

// Enabled reports whether a tracer provider was installed: instrumentation
// whose cost matters when tracing is off (the HTTP client's spans, the
// logger's span per record) is only set up then.
func Enabled() bool { return enabled.Load() }

// tracer is taken once: a tracer of the global provider follows the
// provider Install sets later.
var tracer = otel.Tracer(instrumentation)

// Tracer is hubhooks' tracer of the global provider.
func Tracer() trace.Tracer { return tracer }

// noopSpan records nothing.
var noopSpan = trace.SpanFromContext(context.Background())

// Start starts a span with hubhooks' tracer. With tracing off it returns
// ctx as it is and a span that records nothing, allocating nothing: the
// hot paths call it once per event and per attempt.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noopSpan
	}
	return tracer.Start(ctx, name, opts...)
}

// HeaderCarrier adapts NATS message headers to OpenTelemetry propagation.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set sets key to value.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes ctx's trace context into h (nothing when tracing is off
// or ctx has no span).
func Inject(ctx context.Context, h nats.Header) {
	if h == nil || !Enabled() {
		return
	}
	otel.GetTextMapPropagator().Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx with the trace context of h, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 || !Enabled() {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier(h))
}

// mapCarrier is a one-header carrier for the traceparent field of a job.
type mapCarrier map[string]string

func (c mapCarrier) Get(key string) string { return c[key] }
func (c mapCarrier) Set(key, value string) { c[key] = value }
func (c mapCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// TraceParent is the W3C traceparent of ctx's span, "" when it has none
// (tracing off).
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := mapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceParent returns ctx under the remote span of a W3C traceparent
// (ctx unchanged when tp is empty or malformed).
func WithTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, mapCarrier{"traceparent": tp})
}

// TraceID is the trace id (32 hex digits) of a W3C traceparent, "" when
// tp is empty or malformed.
func TraceID(tp string) string {
	sc := trace.SpanContextFromContext(WithTraceParent(context.Background(), tp))
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// Events on a webhook's spans that time its way through the pipeline, for
// a trace viewer and for hubbench's per-stage report. The expansion span
// ("expand <subject>") starts when an expander worker takes the event;
// the attempt span ("deliver attempt") when the POST begins, and it ends
// with the answer.
const (
	// EventStored: the domain event was stored in the events stream (its
	// JetStream time; an events-overflow copy has its original's).
	EventStored = "hubhooks.event.stored"
	// EventRead: the expander's reader took it into the read-ahead.
	EventRead = "hubhooks.event.read"
	// EventSeenAnswered: the seen memory answered whether it came before.
	EventSeenAnswered = "hubhooks.event.seen_answered"
	// EventFanoutsStored: its fan-outs were stored in the deliveries
	// stream (their publish acknowledged).
	EventFanoutsStored = "hubhooks.event.fanouts_stored"
	// EventJobStored: the message carrying the job was stored in the
	// deliveries stream (its JetStream time).
	EventJobStored = "hubhooks.job.stored"
	// EventJobTaken: the deliverer took the job from its message, to its
	// URL's lane.
	EventJobTaken = "hubhooks.job.taken"
)

// AddEvent adds the event name to span, now, when it records.
func AddEvent(span trace.Span, name string) {
	if span.IsRecording() {
		span.AddEvent(name)
	}
}

// AddEventAt adds the event name at t to span when it records and t is
// set.
func AddEventAt(span trace.Span, name string, t time.Time) {
	if span.IsRecording() && !t.IsZero() {
		span.AddEvent(name, trace.WithTimestamp(t))
	}
}
