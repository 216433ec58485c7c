package e2e_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubhooks/hubhooks/pkg/poll"
)

// redisServerPath is redis-server from PATH; the test fails without it.
func redisServerPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (install Debian's redis-server): %v", err)
	}
	return path
}

// startRedisNode starts a redis-server of the test's own on a free port
// with an append-only file and the given extra arguments.
func startRedisNode(t *testing.T, name string, extra ...string) *redisProc {
	t.Helper()
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{"--bind", host, "--port", port, "--dir", t.TempDir(), "--appendonly", "yes", "--save", "",
		"--repl-diskless-sync-delay", "0"}, extra...)
	return &redisProc{addr: addr, proc: startProc(t, name, redisServerPath(t), args, nil)}
}

// sentinelRedis is a primary, its replica and three Sentinels monitoring
// them as "hubhooks", all on loopback.
type sentinelRedis struct {
	primary, replica *redisProc
	sentinels        []*redisProc
}

const sentinelMaster = "hubhooks"

func startSentinelRedis(t *testing.T) *sentinelRedis {
	t.Helper()
	s := &sentinelRedis{primary: startRedisNode(t, "redis-primary")}
	s.primary.waitUp(t)
	host, port, _ := net.SplitHostPort(s.primary.addr)
	s.replica = startRedisNode(t, "redis-replica", "--replicaof", host, port)
	s.replica.waitUp(t)
	// A replica still loading its first copy would be promoted empty.
	waitReplicasInSync(t, s.replica)
	for i := range 3 {
		addr := freeAddr(t)
		h, p, _ := net.SplitHostPort(addr)
		conf := filepath.Join(t.TempDir(), "sentinel.conf") // Sentinel rewrites it
		body := fmt.Sprintf("bind %s\nport %s\nsentinel monitor %s %s %s 2\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 10000\nsentinel parallel-syncs %s 1\n",
			h, p, sentinelMaster, host, port, sentinelMaster, sentinelMaster, sentinelMaster)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		sp := &redisProc{addr: addr, proc: startProc(t, fmt.Sprintf("sentinel-%d", i), redisServerPath(t), []string{conf, "--sentinel"}, nil)}
		sp.waitUp(t)
		s.sentinels = append(s.sentinels, sp)
	}
	// Wait until the Sentinels know the replica and each other.
	c := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0].addr})
	defer c.Close()
	poll.Until(t, scaled(30*time.Second), "sentinels see the replica", func() bool {
		reps, err := c.Replicas(context.Background(), sentinelMaster).Result()
		return err == nil && len(reps) == 1
	})
	return s
}

// env is how the services reach this Redis.
func (s *sentinelRedis) env() []string {
	var addrs []string
	for _, sp := range s.sentinels {
		addrs = append(addrs, sp.addr)
	}
	return []string{
		"HUBHOOKS_REDIS_URL=redis://" + s.primary.addr + "/0",
		"HUBHOOKS_REDIS_SENTINEL_ADDRS=" + strings.Join(addrs, ","),
		"HUBHOOKS_REDIS_SENTINEL_MASTER=" + sentinelMaster,
	}
}

// master asks a Sentinel for the primary's address.
func (s *sentinelRedis) master(t *testing.T) string {
	t.Helper()
	c := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0].addr})
	defer c.Close()
	a, err := c.GetMasterAddrByName(context.Background(), sentinelMaster).Result()
	if err != nil {
		return ""
	}
	return net.JoinHostPort(a[0], a[1])
}

// failover SIGKILLs the current primary, waits until the Sentinels have
// promoted the replica, then starts the old primary again (it rejoins as a
// replica of the new one) and waits until it has caught up.
func (s *sentinelRedis) failover(t *testing.T, hold time.Duration) {
	t.Helper()
	old, next := s.primary, s.replica
	if s.master(t) == s.replica.addr {
		old, next = s.replica, s.primary
	}
	t.Logf("SIGKILL Redis primary %s", old.addr)
	old.stop(syscall.SIGKILL)
	poll.Until(t, scaled(60*time.Second), "sentinels promote the replica", func() bool { return s.master(t) == next.addr })
	t.Logf("Sentinel promoted %s", next.addr)
	time.Sleep(hold)
	old.start() // it still says replicaof/primary of old; Sentinel reconfigures it as a replica
	old.waitUp(t)
	c := redis.NewClient(&redis.Options{Addr: old.addr})
	defer c.Close()
	poll.Until(t, scaled(60*time.Second), "the old primary replicates the new one", func() bool {
		info, err := c.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up")
	})
}

// redisCluster is a Redis Cluster of three primaries with one replica each
// on loopback.
type redisCluster struct {
	nodes []*redisProc
}

func startRedisCluster(t *testing.T) *redisCluster {
	t.Helper()
	c := &redisCluster{}
	for i := range 6 {
		n := startRedisNode(t, fmt.Sprintf("redis-cluster-%d", i), "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
			// A replica whose link to its primary lagged (a loaded machine)
			// may still take over: without this it can refuse for good.
			"--cluster-replica-validity-factor", "0")
		n.waitUp(t)
		c.nodes = append(c.nodes, n)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not on PATH: %v", err)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK(t)
	waitReplicasInSync(t, c.nodes...)
	return c
}

// waitReplicasInSync waits until every running node that is a replica has
// its link to its primary up, so a failover does not promote a replica
// still loading its first copy of the data.
func waitReplicasInSync(t *testing.T, nodes ...*redisProc) {
	t.Helper()
	poll.Until(t, scaled(60*time.Second), "redis replicas in sync", func() bool {
		for _, n := range nodes {
			if n.exited() {
				continue
			}
			cl := redis.NewClient(&redis.Options{Addr: n.addr})
			info, err := cl.Info(context.Background(), "replication").Result()
			cl.Close()
			if err != nil || (strings.Contains(info, "role:slave") && !strings.Contains(info, "master_link_status:up")) {
				return false
			}
		}
		return true
	})
}

// waitOK waits until every running node reports the cluster ok with three
// primaries that each have a replica.
func (c *redisCluster) waitOK(t *testing.T) {
	t.Helper()
	poll.Until(t, scaled(90*time.Second), "redis cluster ok", func() bool {
		for _, n := range c.nodes {
			if n.exited() {
				continue
			}
			cl := redis.NewClient(&redis.Options{Addr: n.addr})
			info, err := cl.ClusterInfo(context.Background()).Result()
			cl.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
		}
		return true
	})
}

func (c *redisCluster) env() []string {
	var addrs []string
	for _, n := range c.nodes {
		addrs = append(addrs, n.addr)
	}
	return []string{
		"HUBHOOKS_REDIS_URL=redis://" + c.nodes[0].addr + "/0",
		"HUBHOOKS_REDIS_CLUSTER_ADDRS=" + strings.Join(addrs, ","),
	}
}

// primaryOf returns the node serving key's slot, nil while the cluster
// does not say.
func (c *redisCluster) primaryOf(key string) *redisProc {
	var seeds []string
	for _, n := range c.nodes {
		if !n.exited() {
			seeds = append(seeds, n.addr)
		}
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds})
	defer cc.Close()
	m, err := cc.MasterForKey(context.Background(), key)
	if err != nil {
		return nil
	}
	for _, n := range c.nodes {
		if n.addr == m.Options().Addr && !n.exited() {
			return n
		}
	}
	return nil
}

// failover SIGKILLs the primary serving key, waits until its replica has
// taken over (the cluster is ok again), restarts the old primary (it
// rejoins as a replica) and waits until the cluster is whole.
func (c *redisCluster) failover(t *testing.T, key string, hold time.Duration) {
	t.Helper()
	old := c.primaryOf(key)
	if old == nil {
		t.Fatalf("no primary serves %q", key)
	}
	t.Logf("SIGKILL Redis Cluster primary %s (serves %q)", old.addr, key)
	old.stop(syscall.SIGKILL)
	var next *redisProc
	poll.Until(t, scaled(60*time.Second), "a replica takes over "+key, func() bool {
		next = c.primaryOf(key)
		return next != nil && next != old
	})
	c.waitOK(t)
	t.Logf("%q is now served by %s", key, next.addr)
	time.Sleep(hold)
	old.start()
	old.waitUp(t)
	c.waitOK(t)
	waitReplicasInSync(t, c.nodes...)
}

// TestRedisFailover runs the four services against Redis with Sentinel
// (a primary, a replica, three Sentinels) and against a Redis Cluster
// (three primaries, three replicas) under a steady load, and SIGKILLs a
// primary: Sentinel's (the long run: then the new one), and the cluster
// primary serving a hub's event log (the long run: then the one serving
// the retry schedule). The services wait for a replica when they store
// a retry or park a job (HUBHOOKS_REDIS_WAIT_REPLICAS=1). In the long run
// hub cl-b's receiver fails the first attempt of every third webhook, so
// those deliveries pass through the retry store across each failover.
// Every event must be delivered and logged as succeeded, duplicates under
// 1 %. HUBHOOKS_CLUSTER=long (make cluster) runs the long version.
func TestRedisFailover(t *testing.T) {
	long := os.Getenv("HUBHOOKS_CLUSTER") == "long"
	rate, hold := 50, 2*time.Second
	if long {
		rate, hold = 150, 15*time.Second
	}
	redisWait := []string{"HUBHOOKS_REDIS_WAIT_REPLICAS=1", "HUBHOOKS_REDIS_WAIT_TIMEOUT=500ms"}
	// Retries through the failovers: the long run only (docs/scaling.md,
	// "What is proven by running it"), so make test stays short.
	failFirst := ""
	if long {
		failFirst = "cl-b"
	}
	t.Run("sentinel", func(t *testing.T) {
		r := startSentinelRedis(t)
		d := startClusterDeployment(t, deploymentOptions{natsNodes: 1, streamReplicas: 1, perService: 1,
			redisEnv: append(r.env(), redisWait...), failFirst: failFirst})
		faults := []fault{
			{"none (baseline, Sentinel)", func() { time.Sleep(hold) }},
			{"kill the Sentinel primary", func() { r.failover(t, hold) }},
		}
		if long {
			faults = append(faults, fault{"kill the new Sentinel primary", func() { r.failover(t, hold) }})
		}
		rows := runFaults(t, d, rate, hold, faults)
		checkFaultRows(t, rows, rate, long)
	})
	t.Run("cluster", func(t *testing.T) {
		r := startRedisCluster(t)
		d := startClusterDeployment(t, deploymentOptions{natsNodes: 1, streamReplicas: 1, perService: 1,
			redisEnv: append(r.env(), redisWait...), failFirst: failFirst})
		faults := []fault{
			{"none (baseline, Redis Cluster)", func() { time.Sleep(hold) }},
			{"kill the primary of hub cl-a's log", func() { r.failover(t, "{cl-a}", hold) }},
		}
		if long {
			faults = append(faults, fault{"kill the primary of the retries", func() { r.failover(t, "{retry}", hold) }})
		}
		rows := runFaults(t, d, rate, hold, faults)
		checkFaultRows(t, rows, rate, long)
	})
}
