// Package configcache keeps an in-memory copy of every hub's webhook
// configuration, kept current by configsvc's WatchHubConfig stream.
//
// Run opens WatchHubConfig(all=true). The response header
// "x-hubhooks-snapshot-count" says how many messages form the initial
// snapshot; once they have arrived the cache is Ready. Later messages are
// changes, applied by version: a config whose version is not newer than the
// cached one is ignored, so duplicates and re-sent snapshots are harmless.
// When the stream breaks, Run reconnects with exponential backoff and
// applies the new snapshot as the whole truth: hubs that changed while
// disconnected are updated, hubs missing from it are removed, and OnChange
// callbacks fire for both.
//
// Get answers from memory. Fetch does too when the cached version is recent
// enough, and asks GetHubConfig otherwise, e.g. for a delivery job created
// under a newer config than the stream has brought yet.
//
//	cache, _ := configcache.New(hubhooksv1.NewConfigServiceClient(conn), log)
//	go cache.Run(ctx)
//	cache.OnChange(func(old, new *hubhooksv1.HubConfig) { ... })
//	_ = cache.WaitReady(ctx)
//	cfg, ok := cache.Get("hub-1")
package configcache
