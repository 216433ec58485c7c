// Package operations is the OperationsService: what operators of a hub's
// webhooks do beyond configuration. ExplainDomainEvent says which webhook
// events a domain event makes and where each goes (pkg/routing, the rules
// the expander routes by), and what the event log holds of them;
// RecoverDeliveries delivers again, in bulk, what became dead or failed.
//
// It runs beside the EventLogService (in the logger process, and in hubd),
// reads the event log through the LogStore port (*logstore.Store), the hub
// configuration through configsvc's gRPC API (Configs) and publishes
// delivery jobs on the deliveries stream. Bulk work (recoveries, replays)
// goes on the hub's overflow subject, which the deliverer serves only with
// the room live traffic leaves, and is paced (pacer): at most
// Config.BulkRate deliveries a second, and none while the hub's overflow
// shard has more than Config.BulkMaxBacklog messages waiting.
//
//	ops, err := operations.New(operations.Config{}, js, logStore, configClient, rules)
//	ops.Register(grpcServer)
//	go ops.Run(ctx)
package operations
