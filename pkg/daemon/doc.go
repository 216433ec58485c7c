// Package daemon is the process scaffolding every hubhooks binary shares:
// settings from HUBHOOKS_* variables, structured logging, NATS and Redis
// connections that wait and reconnect instead of exiting, the metrics and
// health HTTP server, and gRPC servers with health, reflection and a graceful
// stop bounded by a hard-stop timer.
package daemon
