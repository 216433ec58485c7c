package configcache

import (
	"context"
	"fmt"
	"testing"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// benchCache is a cache holding 1,000 hubs, filled the way Run fills it. Its
// client is never called: every lookup below is a cache hit.
func benchCache(b *testing.B) *Cache {
	b.Helper()
	c, err := New(hubhooksv1.NewConfigServiceClient(nil), nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		c.apply(&hubhooksv1.HubConfig{HubId: fmt.Sprintf("hub-%d", i), Version: 3, EventsEnabled: true, Secret: "whsec_current"})
	}
	return c
}

// BenchmarkCacheGet: the expander's lookup, once per domain event.
func BenchmarkCacheGet(b *testing.B) {
	c := benchCache(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get("hub-500"); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkCacheFetchHit: the deliverer's lookup, once per delivery job
// (the job's config version is cached).
func BenchmarkCacheFetchHit(b *testing.B) {
	c := benchCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Fetch(ctx, "hub-500", 3); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheGetParallel: lookups from many workers at once (the read
// lock is shared).
func BenchmarkCacheGetParallel(b *testing.B) {
	c := benchCache(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.Get("hub-500"); !ok {
				b.Fatal("miss")
			}
		}
	})
}
