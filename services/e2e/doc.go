// Package e2e holds the end-to-end tests: the all-in-one hubd run
// in-process against an embedded NATS and the real Redis, driven only
// through its public interfaces (JetStream publishes, gRPC, webhooks received
// over HTTP), and the chaos test that runs the real binaries as separate
// processes and kills them under load.
package e2e
