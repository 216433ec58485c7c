// Package expander is the hubhooks expander service: it consumes domain events
// from the HUBHOOKS_EVENTS stream (durable pull consumer "expander", shared by
// every replica), applies the cascade rules and the hub's configuration, and
// publishes the delivery jobs, one per (webhook event, callback URL), to
// hubhooks.deliveries.<hub>: one DeliveryFanout per webhook event (its URLs
// as targets), and under load one batch of the fan-outs of the events of a
// hub expanded at the same time (eventbus.NewFanoutBatchMsg).
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
//   - Each webhook event goes to the URLs that take it (pkg/routing): an
//     enabled URL whose event type filter is empty or lists the type, added
//     before the domain event arrived. An event none of whose webhook events
//     any URL takes is acknowledged ("skipped", reason "filtered"). Webhook
//     event ids keep their position in the cascade whatever is left out.
//   - Otherwise every job is published and the domain event is acknowledged
//     only once JetStream acknowledged the message(s) carrying its jobs; any
//     failure naks the event with a delay. A lone fan-out carries a
//     de-duplicating Nats-Msg-Id, a batch none: an event delivered again is
//     therefore published alone, with the same ids and the Hubhooks-Recheck
//     header, and the deliverer asks the event log which of those jobs are
//     done before it attempts them, so republishing is harmless (a job still
//     in flight from the first expansion may be POSTed twice, with the same
//     webhook-id).
//
// Fairness: events are read ahead of the workers into one queue per hub
// (readAhead) and handed out in turns across hubs, so one hub's flood does
// not delay another hub's events. The read-ahead's second half is for hubs
// without a backlog: once it is half full, an event of a hub with more than
// Config.OverflowAfter events queued is copied to the hub's events-overflow
// subject (hubhooks.events.overflow.<shard>.<hub>, stream
// HUBHOOKS_EVENTS_OVERFLOW, which only the expander may publish to) and
// acknowledged, and the hub's later events follow it until this replica has
// read its copies back (up to 64 events of a hub per copy); copies are
// read back into the first half only, in
// turns across the 16 shards (overflow.go). A copy is expanded as its
// original (subject, headers, stream sequence and time; a copy of an event
// delivered again carries Hubhooks-Recheck and is published alone). The
// fan-outs of a hub with a backlog in the read-ahead, or read back from
// overflow, go to its delivery overflow shard (Config.OverflowAfter),
// served by the deliverer after live traffic, through senders of their own;
// their seen-memory questions have senders of their own too (seen.go).
// A quarter of the workers take only events of hubs without such a backlog.
// See docs/delivery.md.
//
// Run drains on shutdown: it stops pulling, hands the events still waiting
// for their turn back to their stream (nak), finishes the events in flight
// and the moves to overflow in flight (each acks or naks its originals), and
// returns.
package expander
