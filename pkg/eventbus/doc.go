// Package eventbus names and creates the JetStream streams and consumers that
// connect the hubhooks services, and encodes the internal messages that flow
// through them.
//
//	stream               subjects                                    retention   consumer
//	HUBHOOKS_EVENTS      <ENTITY>.* (domain events)                  limits      expander
//	HUBHOOKS_DELIVERIES  hubhooks.deliveries.<hub>                   work queue  deliverer
//	                     hubhooks.deliveries.overflow.<shard>.<hub>              deliverer-overflow-<shard>
//	HUBHOOKS_ATTEMPTS    hubhooks.attempts.<hub>                     work queue  logger
//	HUBHOOKS_DLQ         hubhooks.dlq.>                              limits      (inspection)
//	(no stream)          hubhooks.logchanged.<hub>                   core NATS   TailEventLogs (change notices)
//
// Every service ensures the streams it touches at start-up with the Ensure
// functions; they are idempotent and safe to run from many replicas at once.
//
// One file per noun: streams.go (names, subjects, Options, stream configs,
// Ensure), consumers.go, headers.go (header names, content types),
// jobs.go (delivery jobs, fan-outs and their batches; DecodeJobs),
// attempts.go (attempt records and their batches; DecodeAttempts),
// frames.go (the length-prefixed framing of batches), deadletters.go,
// lag.go (consumer lag metrics), retry.go (retrying while JetStream is
// unavailable).
package eventbus
