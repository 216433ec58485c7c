// Package publisher is the Go SDK hub domains use to publish domain events to
// hubhooks (the contract: docs/publishing.md).
//
// Build an event with the typed constructor of its subject (one per cascade
// rule, e.g. BillingPlanCreated for BILLINGPLAN.CREATED), then publish it:
//
//	p, err := publisher.New(js, publisher.WithRetry(5, 200*time.Millisecond))
//	ev, err := publisher.BillingPlanCreated(hubID, map[string]any{
//		"billingPlan": map[string]any{"id": "plan_1", "name": "Pro"},
//	}, publisher.WithActor("user_42"))
//	ack, err := p.Publish(ctx, ev)
//
// Publish validates the event (id, hub_id, a type known to the cascade
// rules), sends it on the subject equal to its type with Nats-Msg-Id = id (so
// the same event published twice is stored once) and waits for the JetStream
// ack. Transient failures (timeouts, no responders while a stream leader is
// elected, a reconnecting connection, JetStream temporarily unavailable) are
// retried with exponential backoff; invalid events are never retried and
// return an error wrapping ErrInvalidEvent.
//
// A Publisher is safe for concurrent use.
package publisher
