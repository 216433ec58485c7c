package daemon

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestNewRedisClient(t *testing.T) {
	tests := []struct {
		name    string
		in      RedisConfig
		want    string // client type
		wantErr string
	}{
		{"single", RedisConfig{URL: "redis://127.0.0.1:6379/2"}, "*redis.Client", ""},
		{"sentinel", RedisConfig{URL: "redis://:pw@x:6379/1", SentinelAddrs: []string{"a:26379", "b:26379"}, SentinelMaster: "hubhooks"}, "*redis.Client", ""},
		{"cluster", RedisConfig{URL: "redis://x:6379/0", ClusterAddrs: []string{"a:7000", "b:7001"}}, "*redis.ClusterClient", ""},
		{"no url", RedisConfig{}, "", "redis url is required"},
		{"bad url", RedisConfig{URL: "http://x"}, "", "redis url"},
		{"sentinel without master", RedisConfig{URL: "redis://x:6379", SentinelAddrs: []string{"a:26379"}}, "", "go together"},
		{"master without sentinels", RedisConfig{URL: "redis://x:6379", SentinelMaster: "m"}, "", "go together"},
		{"both modes", RedisConfig{URL: "redis://x:6379", SentinelAddrs: []string{"a:1"}, SentinelMaster: "m", ClusterAddrs: []string{"b:2"}}, "", "exclude each other"},
		{"cluster with a database", RedisConfig{URL: "redis://x:6379/3", ClusterAddrs: []string{"a:7000"}}, "", "database 0 only"},
		{"address without port", RedisConfig{URL: "redis://x:6379", ClusterAddrs: []string{"a"}}, "", `redis address "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewRedisClient(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := typeName(c); got != tt.want {
				t.Errorf("client %s, want %s", got, tt.want)
			}
		})
	}
}

func typeName(c redis.UniversalClient) string {
	switch c.(type) {
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	case *redis.Client:
		return "*redis.Client"
	}
	return "other"
}
