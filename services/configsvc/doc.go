// Package configsvc is the ConfigService gRPC API (proto/hubhooks/v1/config.proto)
// over hub configurations stored in Redis.
//
// Each hub's configuration (the "Enable event triggers" toggle, up to five
// callback URLs, the signing secret and the previous secrets still in their
// grace period) is one versioned record. Writes are compare-and-set on the
// version in one Lua script, so any number of replicas can write at once
// without losing an update or exceeding the URL limit; every write appends
// {hub, version, kind} to a Redis stream, the change feed.
//
// Each Service runs one feed reader (Run) that loads the changed configs and
// fans them out to its WatchHubConfig streams. A stream first gets the
// header "x-hubhooks-snapshot-count: N", then N current configs, then every
// change; clients apply configs by version, so duplicates are harmless. A
// stream that falls behind is ended with RESOURCE_EXHAUSTED. When the reader
// loses its place (Redis restarted, the feed trimmed past it) it re-sends a
// fresh snapshot on every stream; when Redis lost its data it ends every
// stream with UNAVAILABLE so clients replace their state with a new snapshot.
//
// Disabling triggers and removing a URL are ordinary config changes; the
// deliverer, watching them, cancels the affected retries.
//
// Wiring:
//
//	svc, err := configsvc.New(configsvc.Config{RedisPrefix: p, SecretGrace: g, Registerer: reg, Log: log, Rules: rules},
//		rdb, js, guard, sender, tokens)
//	svc.Register(grpcServer)
//	go svc.Run(ctx)
package configsvc
