package e2e_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/services/internal/natsauth"
	"github.com/hubhooks/hubhooks/services/internal/natsauth/deploytest"
)

var (
	natsBuildOnce sync.Once
	natsBinary    string
	natsBuildErr  error
)

// natsServerBinary builds nats-server from the version in services/go.mod
// (the one hubd embeds) once per test process: the machine's packaged
// nats-server may be older than the 2.10 hubhooks needs.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	natsBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hubhooks-nats-")
		if err != nil {
			natsBuildErr = err
			return
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2")
		cmd.Dir = filepath.Dir(filepath.Dir(file))
		if out, err := cmd.CombinedOutput(); err != nil {
			natsBuildErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
			return
		}
		natsBinary = filepath.Join(dir, "nats-server")
	})
	if natsBuildErr != nil {
		t.Fatal(natsBuildErr)
	}
	return natsBinary
}

// natsNode is one nats-server process of a natsCluster.
type natsNode struct {
	*proc
	name string
	url  string // client URL
}

// natsCluster is three nats-server processes clustered on loopback with
// JetStream on a file store, running deploy/nats/cluster.conf as on three
// machines: TLS, one user per service, routes with mutual TLS. A single
// server runs deploy/nats/hubhooks.conf.
type natsCluster struct {
	t      *testing.T
	deploy *deploytest.Deploy // the configuration, its TLS files and passwords
	nodes  []*natsNode
}

// startNATSCluster starts size clustered nats-server processes (size 1:
// one server, no cluster) and waits until JetStream answers (a meta leader
// is elected).
func startNATSCluster(t *testing.T, size int) *natsCluster {
	t.Helper()
	bin := natsServerBinary(t)
	clients, routes := make([]string, size), make([]string, size)
	for i := range size {
		clients[i], routes[i] = freeAddr(t), freeAddr(t)
	}
	var routeURLs []string
	for _, r := range routes {
		routeURLs = append(routeURLs, "nats-route://"+r)
	}
	c := &natsCluster{t: t, deploy: deploytest.Prepare(t)}
	for i := range size {
		name := fmt.Sprintf("n%d", i)
		host, port, _ := net.SplitHostPort(clients[i])
		_, monitor, _ := net.SplitHostPort(freeAddr(t))
		volumes := map[string]string{"/data": t.TempDir()}
		args := []string{"-a", host, "-p", port, "-m", monitor}
		if size > 1 {
			args = append(args, "-c", c.deploy.NodeConf(t, "cluster.conf", name, volumes),
				"--cluster", "nats://"+routes[i], "--routes", strings.Join(routeURLs, ","))
		} else {
			args = append(args, "-c", c.deploy.NodeConf(t, "hubhooks.conf", name, volumes))
		}
		p := startProc(t, "nats-"+name, bin, args, append(slices.Clone(c.deploy.Env), "SERVER_NAME="+name))
		c.nodes = append(c.nodes, &natsNode{proc: p, name: name, url: "nats://" + clients[i]})
	}
	nc, js := c.client()
	defer nc.Close()
	wait := scaled(90 * time.Second)
	for deadline := time.Now().Add(wait); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			for _, n := range c.nodes {
				t.Logf("--- nats-%s log tail:\n%s", n.name, n.tail())
			}
			t.Fatalf("JetStream on the NATS cluster does not answer within %s: %v", wait, err)
		}
	}
	return c
}

// URLs is the comma-separated client URL list the services are given.
func (c *natsCluster) URLs() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url)
	}
	return strings.Join(urls, ",")
}

// client connects to the cluster (any node, reconnecting forever) as the
// monitor: it reads the streams' and consumers' state.
func (c *natsCluster) client() (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	return c.connect(natsauth.Monitor, nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.Monitor)))
}

// publisher connects to the cluster as the publisher.
func (c *natsCluster) publisher() (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	return c.connect(natsauth.Publisher)
}

func (c *natsCluster) connect(r natsauth.Role, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	opts = append(append(c.deploy.Login(r), opts...), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	nc, err := nats.Connect(c.URLs(), opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return nc, js
}

// env is what a service of role needs to reach the cluster: its user and
// password and the CA.
func (c *natsCluster) env(r natsauth.Role) []string {
	return []string{"HUBHOOKS_NATS_USER=" + string(r), "HUBHOOKS_NATS_PASSWORD=" + c.deploy.Passwords[r], "HUBHOOKS_NATS_TLS_CA=" + c.deploy.CA()}
}

func (c *natsCluster) node(name string) *natsNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no NATS node %q", name)
	return nil
}

// streamInfo asks for a stream's info with a short timeout.
func streamInfo(js jetstream.JetStream, stream string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// leader returns the node that leads stream, waiting for one.
func (c *natsCluster) leader(js jetstream.JetStream, stream string) string {
	c.t.Helper()
	var leader string
	poll.Until(c.t, scaled(60*time.Second), "a leader of "+stream, func() bool {
		info, err := streamInfo(js, stream)
		if err != nil || info.Cluster == nil {
			return false
		}
		leader = info.Cluster.Leader
		return leader != ""
	})
	return leader
}

// healthy reports whether stream and its consumers have the given number
// of replicas, a leader, and every follower current and online.
func healthy(js jetstream.JetStream, stream string, replicas int) error {
	info, err := streamInfo(js, stream)
	if err != nil {
		return err
	}
	if err := clusterHealthy("stream "+stream, info.Cluster, replicas); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	consumers := s.ListConsumers(ctx)
	for ci := range consumers.Info() {
		if err := clusterHealthy("consumer "+ci.Name+" of "+stream, ci.Cluster, replicas); err != nil {
			return err
		}
	}
	return consumers.Err()
}

func clusterHealthy(what string, ci *jetstream.ClusterInfo, replicas int) error {
	if ci == nil || ci.Leader == "" {
		return fmt.Errorf("%s has no leader", what)
	}
	if len(ci.Replicas)+1 != replicas {
		return fmt.Errorf("%s has %d replicas, want %d", what, len(ci.Replicas)+1, replicas)
	}
	for _, r := range ci.Replicas {
		if !r.Current || r.Offline {
			return fmt.Errorf("%s: replica %s not current", what, r.Name)
		}
	}
	return nil
}

// waitHealthy waits until every stream (and its consumers) has replicas
// current replicas.
func (c *natsCluster) waitHealthy(js jetstream.JetStream, replicas int, streams ...string) {
	c.t.Helper()
	for _, s := range streams {
		var last error
		wait := scaled(90 * time.Second)
		deadline := time.Now().Add(wait)
		for {
			if last = healthy(js, s, replicas); last == nil {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("stream %s not healthy at R%d within %s: %v", s, replicas, wait, last)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// kill SIGKILLs a node.
func (n *natsNode) kill() { n.stop(syscall.SIGKILL) }

// restart starts a killed node again on its store and waits until it
// accepts connections.
func (n *natsNode) restart(t *testing.T) {
	t.Helper()
	n.start()
	addr := strings.TrimPrefix(n.url, "nats://")
	poll.Until(t, scaled(30*time.Second), "nats node "+n.name+" listening", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}
