// Package expand is the hubhooks expander service: it consumes domain events
// from the HUBHOOKS_EVENTS stream (durable pull consumer "expander", shared by
// every replica), applies the cascade rules and the hub's configuration, and
// publishes one DeliveryJob per (webhook event, callback URL) to
// hubhooks.deliveries.<hub>.
//
// Message handling:
//
//   - A malformed domain event (undecodable body, oversize, missing or bad id
//     or hub_id, unknown subject, type contradicting the subject, invalid
//     occurred_at, payload that cannot be encoded) is copied to the dead-letter
//     stream (hubhooks.dlq.events) with a Hubhooks-Reason header
//     "<kind>: <detail>", counted, and acknowledged. A panic in the handler is
//     dead-lettered the same way with kind "panic".
//   - A hub with triggers off or no callback URL: the event is acknowledged
//     and nothing is published ("skipped"). The config cache may lag a change
//     by milliseconds, so a "not deliverable" answer is re-checked against
//     configsvc at most once per hub per RecheckInterval.
//   - Otherwise every job is published (with de-duplicating Nats-Msg-Ids) and
//     the domain event is acknowledged only once JetStream acknowledged every
//     job; any failure naks the event with a delay, and the redelivery yields
//     the same ids, so republishing is harmless.
//
// Run drains on shutdown: it stops pulling, finishes the events in flight and
// returns.
package expand
