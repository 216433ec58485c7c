// Package tracing carries OpenTelemetry traces across hubhooks: from the
// publisher SDK through the expander, the deliverer (one span per attempt,
// with the HTTP client's span under it) and the logger.
//
// The W3C trace context travels in NATS message headers (traceparent,
// tracestate) between publisher and expander, and in the delivery job
// itself (DeliveryJob.trace_parent) from the expander on, because one
// message may carry the jobs of several events and a job waits in Redis
// between retries. The logger keeps the job, so GetEventLog answers the
// trace id of each log entry.
//
// Tracing is off unless Setup is given an OTLP endpoint (or a test calls
// Install): Start then returns its context unchanged with a span that
// records nothing, nothing is added to messages, and a job's trace_parent
// stays empty (BenchmarkOffPerDelivery measures what is left).
//
//	stop, err := tracing.Setup(ctx, tracing.Config{Endpoint: "otel-collector:4317", Service: "deliverer", SampleRatio: 1})
//	defer stop(context.Background())
//	ctx, span := tracing.Start(tracing.Extract(ctx, msg.Headers()), "expand")
package tracing
