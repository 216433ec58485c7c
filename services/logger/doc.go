// Package logger is the hubhooks logger service: it consumes the attempt records
// the deliverer (and configsvc's test events) publish on HUBHOOKS_ATTEMPTS,
// persists them in Redis (package logstore), and serves EventLogService.
//
// Records are acked only after Redis confirmed the write; undecodable or
// invalid records are terminated and counted, never retried forever. Any
// number of replicas may run against one NATS and one Redis: they share the
// durable consumer, and writes converge whatever their order.
package logger
