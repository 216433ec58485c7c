// Package deliverer is the deliverer service: it consumes delivery jobs from
// JetStream, POSTs them to callback URLs with a webhook.Sender, records every
// attempt on the attempts stream for the logger, stores retries durably in
// Redis and republishes them when due, and cancels a hub's pending retries
// when its URL is removed or its triggers are disabled.
//
// Each mechanism has its file and, where it keeps state, its type with its
// own lock:
//
//	service.go    Service: New, Run and the ordered shutdown, Ready
//	ports.go      what it needs from outside: ConfigSource, AttemptLog
//	fetch.go      the fetch loop: messages in, jobs out (fetchSizer), dead letters
//	overflow.go   fairness across hubs: moving a hub's surplus to its overflow shard, the overflow loop
//	fanout.go     a message of several jobs, acked once all are settled (jobMsg)
//	lanes.go      per-URL lanes: admit, queue, run (lanes); enqueue
//	slots.go      per-hub and replica POST limits (slots)
//	held.go       jobs holding their JetStream message (heldJobs), heartbeats
//	park.go       moving jobs out of the stream into the retry store (holdLoop)
//	attempt.go    one attempt: prepare, POST or fail fast, conclude, record and settle
//	runners.go    goroutines for per-job work that wait for more (runners)
//	breaker.go    per-URL circuit breakers and what they count as failure
//	retries.go    the retry decision (outcome) and storing the next attempt
//	retrystore.go the Redis layout of retries, parked jobs and the cancel outbox;
//	              stores batched (sendStores)
//	scheduler.go  republishing due retries; publishing cancellations
//	cancel.go     which jobs a hub's config no longer allows; cancelling a job
//	cancelloop.go cancelling the pending retries a config change disallows
//	logcheck.go   asking the event log which attempts were made already
//	records.go    attempt records, batched per hub
//
// Isolation: jobs are queued per (hub, URL) lane with a concurrency limit
// and a small queue per lane, a per-hub limit and a global limit, and a
// circuit breaker per lane, so a slow or dead URL never holds up other URLs.
// Fairness: a live message all of whose (hub, URL) lanes hold their share
// of live work (Config.LaneShare) waits in its hub's overflow shard, taken in
// turns with the room live traffic leaves, so one hub's burst never holds up
// other hubs, and one URL's full lane never sends its hub's other URLs there.
// README.md walks through the life of a job; docs/delivery.md has the
// design and its reasons.
package deliverer
