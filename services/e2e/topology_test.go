package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	composetypes "github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/poll"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/internal/natsauth"
	"github.com/hubhooks/hubhooks/services/internal/natsauth/deploytest"
)

// localTopology runs the services of a compose project as local
// processes: the same commands and environment, each service's ports
// mapped to free loopback ports and every "<service>:<port>" in commands
// and environment rewritten to its loopback address. Images are replaced
// by local binaries: nats by the nats-server build, redis by redis-server
// from PATH, the hubhooks images by the binary their build target names.
// Paths inside a container that a bind mount holds become the mount's
// source on the host, or the local stand-in for it given in mounts (host
// directory -> local directory: deploy/nats with the test's TLS files).
type localTopology struct {
	t       *testing.T
	project *composetypes.Project
	addr    map[string]map[uint32]string // service -> container port -> loopback address
	mounts  map[string]string
	procs   map[string]*proc
}

// localPath is where path of svc's container is on this machine, or ""
// when no bind mount holds it.
func (l *localTopology) localPath(svc composetypes.ServiceConfig, path string) string {
	hp := hostPath(svc, path)
	if hp == "" {
		return ""
	}
	for from, to := range l.mounts {
		if hp == from {
			return to
		}
		if rest, ok := strings.CutPrefix(hp, from+"/"); ok {
			return filepath.Join(to, rest)
		}
	}
	return hp
}

// hostPortRe matches a "<name>:<port>" or "0.0.0.0:<port>" in a value.
var hostPortRe = regexp.MustCompile(`\b([a-z][a-z0-9-]*|0\.0\.0\.0):(\d+)\b`)

// rewrite maps every address of value for service self to loopback.
func (l *localTopology) rewrite(self, value string) string {
	return hostPortRe.ReplaceAllStringFunc(value, func(m string) string {
		sub := hostPortRe.FindStringSubmatch(m)
		host := sub[1]
		if host == "0.0.0.0" || host == "127.0.0.1" {
			host = self
		}
		port, _ := strconv.Atoi(sub[2])
		if a, ok := l.addr[host][uint32(port)]; ok {
			return a
		}
		return m
	})
}

func startLocalTopology(t *testing.T, project *composetypes.Project, mounts map[string]string) *localTopology {
	t.Helper()
	l := &localTopology{t: t, project: project, addr: map[string]map[uint32]string{}, mounts: mounts, procs: map[string]*proc{}}
	bins := binaries(t)
	// Every port a service listens on gets a loopback address.
	for name, svc := range project.Services {
		l.addr[name] = map[uint32]string{}
		var ports []uint32
		if svc.Build == nil {
			ports = infraPorts(t, svc)
		} else {
			for _, k := range []string{"HUBHOOKS_GRPC_ADDR", "HUBHOOKS_HTTP_ADDR", "HUBHOOKS_API_ADDR"} {
				if v := svc.Environment[k]; v != nil {
					ports = append(ports, portOf(t, *v))
				}
			}
		}
		for _, p := range ports {
			l.addr[name][p] = freeAddr(t)
		}
	}
	order, err := startOrder(project)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range order {
		svc := project.Services[name]
		var path string
		var args, env []string
		switch {
		case svc.Build != nil:
			path = filepath.Join(bins, svc.Build.Target)
			for k, v := range svc.Environment {
				if v == nil {
					continue
				}
				if lp := l.localPath(svc, *v); lp != "" {
					env = append(env, k+"="+lp)
				} else {
					env = append(env, k+"="+l.rewrite(name, *v))
				}
			}
		case strings.HasPrefix(svc.Image, "nats:"):
			path = natsServerBinary(t)
			args = l.natsArgs(name, svc)
			for k, v := range svc.Environment {
				if v != nil {
					env = append(env, k+"="+*v)
				}
			}
		case strings.HasPrefix(svc.Image, "redis:"):
			path, err = exec.LookPath(svc.Command[0])
			if err != nil {
				t.Fatalf("%s: %v (install Debian's redis-server)", name, err)
			}
			host, port, _ := net.SplitHostPort(l.addr[name][6379])
			args = append(slices.Clone(svc.Command[1:]), "--bind", host, "--port", port, "--dir", t.TempDir(), "--save", "")
		default:
			t.Fatalf("%s: no local stand-in for image %q", name, svc.Image)
		}
		l.procs[name] = startProc(t, name, path, args, env)
		l.waitHealthy(name, svc)
	}
	return l
}

// natsArgs is the nats service's command with its ports mapped to
// loopback (the flags override the configuration's) and its configuration
// copied with its named volumes ("/data", the store) in temporary folders.
func (l *localTopology) natsArgs(name string, svc composetypes.ServiceConfig) []string {
	volumes := map[string]string{}
	for _, v := range svc.Volumes {
		if v.Type == composetypes.VolumeTypeVolume {
			volumes[v.Target] = l.t.TempDir()
		}
	}
	var args []string
	for i := 0; i < len(svc.Command); i++ {
		a := svc.Command[i]
		if a == "-c" && i+1 < len(svc.Command) {
			conf := l.localPath(svc, svc.Command[i+1])
			d := &deploytest.Deploy{Dir: filepath.Dir(conf)}
			args = append(args, "-c", d.NodeConf(l.t, filepath.Base(conf), name, volumes))
			i++
			continue
		}
		args = append(args, a)
	}
	host, port, _ := net.SplitHostPort(l.addr[name][4222])
	args = append(args, "-a", host, "-p", port)
	if a, ok := l.addr[name][8222]; ok {
		_, mport, _ := net.SplitHostPort(a)
		args = append(args, "-m", mport)
	}
	return args
}

// waitHealthy waits until a service answers like its compose healthcheck
// (NATS monitoring /healthz, Redis PING) or, for a hubhooks service, its
// /readyz.
func (l *localTopology) waitHealthy(name string, svc composetypes.ServiceConfig) {
	l.t.Helper()
	p := l.procs[name]
	var check func() bool
	switch {
	case svc.Build != nil:
		httpAddr := svc.Environment["HUBHOOKS_HTTP_ADDR"]
		if httpAddr == nil {
			l.t.Fatalf("%s has no HUBHOOKS_HTTP_ADDR", name)
		}
		addr := l.addr[name][portOf(l.t, *httpAddr)]
		check = func() bool { return readyz(addr) }
	case strings.HasPrefix(svc.Image, "nats:"):
		hc := strings.Join(svc.HealthCheck.Test, " ")
		m := regexp.MustCompile(`http://127\.0\.0\.1:(\d+)(\S+)`).FindStringSubmatch(hc)
		if m == nil {
			l.t.Fatalf("%s: healthcheck %q is not an HTTP check", name, hc)
		}
		n, _ := strconv.Atoi(m[1])
		u := "http://" + l.addr[name][uint32(n)] + m[2]
		check = func() bool {
			resp, err := http.Get(u)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}
	default:
		c := redis.NewClient(&redis.Options{Addr: l.addr[name][6379]})
		defer c.Close()
		check = func() bool { return c.Ping(context.Background()).Err() == nil }
	}
	poll.Until(l.t, 60*time.Second, name+" healthy", func() bool {
		if p.exited() {
			l.t.Fatalf("%s exited:\n%s", name, p.tail())
		}
		return check()
	})
}

// startOrder orders services so that each comes after what it depends on.
func startOrder(p *composetypes.Project) ([]string, error) {
	var order []string
	state := map[string]int{}
	var visit func(string) error
	visit = func(n string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("dependency cycle at %s", n)
		case 2:
			return nil
		}
		state[n] = 1
		deps := make([]string, 0, len(p.Services[n].DependsOn))
		for d := range p.Services[n].DependsOn {
			deps = append(deps, d)
		}
		slices.Sort(deps)
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// TestComposeTopology runs docker-compose.yml's topology as local
// processes and sends webhooks through it: a hub configured through
// configsvc with the admin token, domain events published to its NATS,
// the webhooks received at one URL and dead at another that refuses
// connections, every attempt in the logger's event log. Then it scrapes
// every service's /metrics: each metric the Grafana dashboard and the
// Prometheus alert rules in deploy/ name must be there.
func TestComposeTopology(t *testing.T) {
	token := "topology-test-token-0123456789"
	// NATS runs deploy/nats/hubhooks.conf with TLS files and passwords of
	// the test's.
	natsDeploy := deploytest.Prepare(t)
	project, err := loadCompose("docker-compose.yml", withEnv(composeEnv, append(natsDeploy.Env,
		"HUBHOOKS_ADMIN_TOKEN="+token,
		"HUBHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
		"HUBHOOKS_RETRY_SCHEDULE=0s,100ms,200ms")...))
	if err != nil {
		t.Fatal(err)
	}
	l := startLocalTopology(t, project, map[string]string{deploytest.Dir(): natsDeploy.Dir})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dial := func(service string, port uint32) *grpc.ClientConn {
		conn, err := grpc.NewClient(l.addr[service][port], grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(auth.BearerCredentials(token)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	cfg := hubhooksv1.NewConfigServiceClient(dial("configsvc", 7001))
	logs := hubhooksv1.NewEventLogServiceClient(dial("logger", 7002))
	recv := newReceiver(t)
	// A second URL refuses connections: its deliveries open its circuit
	// breaker and end dead, so the metrics of those paths exist too.
	refused := "http://" + freeAddr(t) + "/gone"
	const hub = "compose-hub"
	for _, u := range []string{recv.URL + "/hook", refused} {
		if _, err := cfg.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: u}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cfg.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	natsURL := "nats://" + l.addr["nats"][4222]
	if nc, err := nats.Connect(natsURL, nats.RootCAs(natsDeploy.CA()), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Error("the compose topology's NATS took a client without a user")
	}
	nc, err := nats.Connect(natsURL, natsDeploy.Login(natsauth.Publisher)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const events = 3
	for i := range events {
		id := fmt.Sprintf("compose-%d", i)
		b, _ := proto.Marshal(&eventsv1.DomainEvent{Id: id, HubId: hub, Type: "USER.UPDATED"})
		msg := nats.NewMsg("USER.UPDATED")
		msg.Header.Set("Nats-Msg-Id", id)
		msg.Header.Set("Content-Type", "application/protobuf")
		msg.Data = b
		// The expander may learn of the hub a moment after the RPC
		// returned: publish again (same id, de-duplicated) until the
		// webhook arrives.
		poll.Until(t, 60*time.Second, "webhook "+id+" through the compose topology", func() bool {
			if len(recv.byDomainEvent(id)) > 0 {
				return true
			}
			if err := nc.PublishMsg(msg); err != nil {
				t.Logf("publish: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
			return len(recv.byDomainEvent(id)) > 0
		})
	}
	count := func(url, status string) int {
		resp, err := logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub, Url: url, Status: status})
		if err != nil {
			return -1
		}
		return len(resp.GetEventLogs())
	}
	poll.Until(t, 60*time.Second, "the attempts in the event log", func() bool {
		return count(recv.URL+"/hook", "succeeded") == events && count(refused, "dead") == events
	})

	// A malformed domain event goes to the dead-letter stream (and its
	// counter).
	bad := nats.NewMsg("USER.UPDATED")
	bad.Header.Set("Nats-Msg-Id", "compose-malformed")
	bad.Header.Set("Content-Type", "application/protobuf")
	bad.Data = []byte("not a protobuf DomainEvent")
	if err := nc.PublishMsg(bad); err != nil {
		t.Fatal(err)
	}

	// The metrics the dashboard and the alert rules name exist.
	named := dashboardMetrics(t)
	var scraped map[string]bool
	deadline := time.Now().Add(30 * time.Second)
	for {
		scraped = map[string]bool{}
		for name, svc := range project.Services {
			if svc.Build == nil {
				continue
			}
			for _, m := range scrapeMetricNames(t, l.addr[name][portOf(t, *svc.Environment["HUBHOOKS_HTTP_ADDR"])]) {
				scraped[m] = true
			}
		}
		var missing []string
		for _, m := range named {
			if !scraped[m] {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics named in deploy/grafana or deploy/prometheus that no service exports: %v", missing)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("the dashboard and alert rules name %d metrics, all scraped from the running services", len(named))
	if _, err := hubhooksv1.NewConfigServiceClient(dialNoToken(t, l.addr["configsvc"][7001])).GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: hub}); err == nil {
		t.Error("configsvc of the compose topology answered a call without the admin token")
	}
}

func dialNoToken(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// metricNameRe matches a hubhooks metric name in a PromQL expression.
var metricNameRe = regexp.MustCompile(`\bhubhooks_[a-z0-9_]+`)

// dashboardMetrics returns the metric names the Grafana dashboard's
// queries and the Prometheus alert rules' expressions use, histogram
// series (_bucket, _sum, _count) by their histogram's name.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	var exprs []string
	b, err := os.ReadFile(filepath.Join(repoRoot(), "deploy/grafana/hubhooks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/hubhooks.json: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	b, err = os.ReadFile(filepath.Join(repoRoot(), "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("deploy/prometheus/alerts.yml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("alert rule %+v: needs alert and expr", r)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	seen := map[string]bool{}
	var names []string
	for _, e := range exprs {
		for _, m := range metricNameRe.FindAllString(e, -1) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if strings.HasSuffix(m, "_seconds"+suffix) {
					m = strings.TrimSuffix(m, suffix)
				}
			}
			if !seen[m] {
				seen[m] = true
				names = append(names, m)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("the dashboard and the alert rules name no hubhooks metric")
	}
	return names
}

// scrapeMetricNames returns the names of the metric families a /metrics
// endpoint exports (histograms by their name, without _bucket etc.).
func scrapeMetricNames(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Logf("scrape %s: %v", addr, err)
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			names = append(names, f[2])
		}
	}
	return names
}
