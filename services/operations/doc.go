// Package operations is the OperationsService: what operators of a hub's
// webhooks do beyond configuration. ExplainDomainEvent says which webhook
// events a domain event makes and where each goes (pkg/routing, the rules
// the expander routes by), and what the event log holds of them;
// RecoverDeliveries delivers again, in bulk, what became dead or failed.
//
// It runs beside the EventLogService (in the logger process, and in hubd),
// reads the event log through the LogStore port (*logstore.Store), the hub
// configuration through configsvc's gRPC API (Configs) and publishes
// delivery jobs on the deliveries stream. Bulk work is paced (pacer): at
// most Config.BulkRate deliveries a second, and none while the deliverer
// has more than Config.BulkMaxBacklog messages waiting, so live deliveries
// never queue behind it for long.
//
//	ops, err := operations.New(operations.Config{}, js, logStore, configClient, rules)
//	ops.Register(grpcServer)
//	go ops.Run(ctx)
package operations
