// Package redistest gives each test the real Redis with its own key prefix,
// and deletes every key under that prefix when the test ends. The server is
// HUBHOOKS_TEST_REDIS_URL, or redis://127.0.0.1:6379/0. A missing Redis fails
// the test: it is never skipped.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubhooks/hubhooks/pkg/daemon"
)

// URL is the Redis the tests use.
func URL() string {
	if u := os.Getenv("HUBHOOKS_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// New returns a client and a fresh key prefix ("hhtest:<random>:") for the
// test. Keys under the prefix are deleted and the client closed by t.Cleanup.
func New(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("redistest: parse %s: %v", URL(), err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redistest: Redis at %s does not answer (start one with `redis-server --daemonize yes`): %v", URL(), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "hhtest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		Cleanup(rdb, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

// Cleanup deletes every key that starts with prefix.
func Cleanup(rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = daemon.UnlinkPrefix(ctx, rdb, prefix)
}

// CPUMicros is the CPU time the Redis server has used (INFO cpu, user
// plus system): it covers reading and parsing commands as well as running
// them, which the per-command statistics leave out. Nothing else should use
// the server during a benchmark.
func CPUMicros(t testing.TB, rdb *redis.Client) float64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, f); ok {
				secs, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("INFO cpu %s: %v", line, err)
				}
				total += secs * 1e6
			}
		}
	}
	return total
}

// CommandCalls is how many times the Redis server has run cmd (INFO
// commandstats; a refused EVALSHA counts too).
func CommandCalls(t testing.TB, rdb *redis.Client, cmd string) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		v, err := strconv.Atoi(calls)
		if err != nil {
			t.Fatalf("commandstats %q: %v", line, err)
		}
		return v
	}
	return 0
}
