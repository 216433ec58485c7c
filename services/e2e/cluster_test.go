package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/internal/natsauth"
)

// arrival is one webhook answered 2xx by a clusterReceiver.
type arrival struct {
	webhookID, eventID string // the webhook's id and its domain event's
	phase              int
	at                 time.Time
}

// clusterReceiver answers webhooks 204 and keeps when each arrived and
// for which fault phase (the phase is part of the domain event id). The
// first attempt of every third webhook to the path /<failFirst> is
// answered 503 (and not kept), so those deliveries pass through the retry
// store; never two in a row, so the URL's circuit breaker stays closed.
type clusterReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []arrival
	failed map[string]bool // webhook ids seen on /<failFirst>: true if answered 503
}

func newClusterReceiver(t *testing.T, failFirst string) *clusterReceiver {
	t.Helper()
	r := &clusterReceiver{failed: map[string]bool{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if failFirst != "" && req.URL.Path == "/"+failFirst {
			id := req.Header.Get("webhook-id")
			r.mu.Lock()
			_, seen := r.failed[id]
			fail := !seen && len(r.failed)%3 == 0
			if !seen {
				r.failed[id] = fail
			}
			r.mu.Unlock()
			if fail {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		var body struct {
			DomainEvent struct {
				ID string `json:"id"`
			} `json:"domain_event"`
		}
		_ = json.NewDecoder(req.Body).Decode(&body)
		a := arrival{webhookID: req.Header.Get("webhook-id"), eventID: body.DomainEvent.ID, phase: phaseOfEvent(body.DomainEvent.ID), at: time.Now()}
		r.mu.Lock()
		r.got = append(r.got, a)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *clusterReceiver) arrivals() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// eventID names a domain event of the cluster test: cl-<phase>-<seq>.
func eventID(phase int, seq int64) string { return fmt.Sprintf("cl-%d-%d", phase, seq) }

func phaseOfEvent(id string) int {
	parts := strings.Split(id, "-")
	if len(parts) != 3 || parts[0] != "cl" {
		return -1
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return -1
	}
	return n
}

// steadyLoad publishes USER.UPDATED domain events at a fixed rate, round
// robin over hubs, each retried (same Nats-Msg-Id) until JetStream acks it:
// a node or a stream leader may be gone for a while. Events are numbered
// by the phase during which they were first sent.
type steadyLoad struct {
	js     jetstream.JetStream
	hubs   []string
	phase  atomic.Int64
	seq    atomic.Int64
	acked  sync.Map // event id -> hub
	failed atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startLoad(t *testing.T, js jetstream.JetStream, hubs []string, perSecond int) *steadyLoad {
	l := &steadyLoad{js: js, hubs: hubs, stop: make(chan struct{})}
	ids := make(chan string, 100_000)
	for range 16 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for id := range ids {
				l.publish(t, id)
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(ids)
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
				ids <- eventID(int(l.phase.Load()), l.seq.Add(1))
			}
		}
	}()
	return l
}

func (l *steadyLoad) publish(t *testing.T, id string) {
	seq, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	hub := l.hubs[seq%len(l.hubs)]
	b, err := proto.Marshal(&eventsv1.DomainEvent{Id: id, HubId: hub, Type: "USER.UPDATED"})
	if err != nil {
		t.Error(err)
		return
	}
	deadline := time.Now().Add(scaled(2 * time.Minute))
	for {
		m := nats.NewMsg("USER.UPDATED")
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Header.Set("Content-Type", "application/protobuf")
		m.Data = b
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := l.js.PublishMsg(ctx, m)
		cancel()
		if err == nil {
			l.acked.Store(id, hub)
			return
		}
		if time.Now().After(deadline) {
			l.failed.Add(1)
			t.Errorf("publish %s: not acked within %s: %v", id, scaled(2*time.Minute), err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// finish stops publishing and waits until every event sent is acked (or
// given up on).
func (l *steadyLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// replica is one process of a service in the clustered deployment.
type replica struct {
	*proc
	service, httpAddr string
}

// clusterDeployment is replicas of each service against NATS (a cluster
// or one node) and Redis, the configsvc replicas behind a TCP balancer.
type clusterDeployment struct {
	t        *testing.T
	nats     *natsCluster
	nc       *nats.Conn
	js       jetstream.JetStream // the test's own client of the NATS servers
	replicas []*replica
	cfgAddr  string // the balancer in front of configsvc
	logAddr  string // logger a's gRPC
	// failFirst is the hub whose deliveries fail their first attempt
	// (through the retry store); "" for none.
	failFirst string
}

// deploymentOptions shape a clusterDeployment.
type deploymentOptions struct {
	natsNodes      int      // 3: a cluster; 1: one server
	streamReplicas int      // HUBHOOKS_STREAM_REPLICAS the services start with
	perService     int      // replicas of each service (1 or 2)
	redisEnv       []string // how the services reach Redis (HUBHOOKS_REDIS_*)
	failFirst      string   // clusterDeployment.failFirst
}

func startClusterDeployment(t *testing.T, o deploymentOptions) *clusterDeployment {
	t.Helper()
	bins := binaries(t)
	d := &clusterDeployment{t: t, nats: startNATSCluster(t, o.natsNodes), failFirst: o.failFirst}
	d.nc, d.js = d.nats.client()
	t.Cleanup(d.nc.Close)
	suffixes := []string{"a", "b"}[:o.perService]
	grpcAddr := map[string]string{}
	var configsvcs []string
	for _, sfx := range suffixes {
		grpcAddr["configsvc-"+sfx], grpcAddr["logger-"+sfx] = freeAddr(t), freeAddr(t)
		configsvcs = append(configsvcs, grpcAddr["configsvc-"+sfx])
	}
	bal := startBalancer(t, configsvcs...)
	d.cfgAddr, d.logAddr = bal.Addr(), grpcAddr["logger-a"]
	common := append([]string{
		"HUBHOOKS_NATS_URL=" + d.nats.URLs(),
		"HUBHOOKS_STREAM_REPLICAS=" + strconv.Itoa(o.streamReplicas),
		"HUBHOOKS_CONFIG_ADDR=" + d.cfgAddr,
		"HUBHOOKS_RETRY_SCHEDULE=0s,100ms,300ms,600ms,1s,2s,5s",
		"HUBHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
		"HUBHOOKS_LOG_FORMAT=text",
		"HUBHOOKS_LOG_LEVEL=warn",
		"HUBHOOKS_SHUTDOWN_TIMEOUT=5s",
	}, o.redisEnv...)
	for _, service := range []string{"configsvc", "logger", "expander", "deliverer"} {
		for _, suffix := range suffixes {
			name := service + "-" + suffix
			r := &replica{service: service, httpAddr: freeAddr(t)}
			env := append(append([]string{"HUBHOOKS_HTTP_ADDR=" + r.httpAddr}, common...), d.nats.env(natsauth.Role(service))...)
			if a, ok := grpcAddr[name]; ok {
				env = append(env, "HUBHOOKS_GRPC_ADDR="+a)
			}
			r.proc = startProc(t, name, bins+"/"+service, nil, env)
			d.replicas = append(d.replicas, r)
		}
	}
	for _, r := range d.replicas {
		d.waitReady(r)
	}
	return d
}

// waitReady waits until r answers /readyz. Eight service processes and
// three NATS servers starting at once on a loaded 2-core machine (make
// test runs other packages beside this one) have taken over 90 s: the
// bound grows with the load.
func (d *clusterDeployment) waitReady(r *replica) {
	d.t.Helper()
	wait := scaled(2 * time.Minute)
	for deadline := time.Now().Add(wait); !readyz(r.httpAddr); time.Sleep(10 * time.Millisecond) {
		if r.exited() {
			d.t.Fatalf("%s exited:\n%s", r.name, r.tail())
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s not ready after %s: /readyz says %s\nits log:\n%s", r.name, wait, readyzBody(r.httpAddr), r.tail())
		}
	}
}

// setEnv changes one variable of a replica's environment for its next start.
func (r *replica) setEnv(key, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.env = slices.DeleteFunc(r.env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
	r.env = append(r.env, key+"="+value)
}

// rollingRestart stops every replica in turn with SIGTERM (graceful),
// applies env, starts it again and waits until it is ready, so each
// service always has one replica running.
func (d *clusterDeployment) rollingRestart(env ...string) {
	d.t.Helper()
	for _, r := range d.replicas {
		r.stop(syscall.SIGTERM)
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			r.setEnv(k, v)
		}
		r.start()
		d.waitReady(r)
	}
}

// clusterStreams are the streams a fault may hit.
var clusterStreams = []string{eventbus.StreamEvents, eventbus.StreamDeliveries, eventbus.StreamAttempts}

// faultRow is one line of the per-fault table.
type faultRow struct {
	name                                   string
	expected, received, duplicates, logged int
	silent                                 time.Duration   // longest time without any delivery
	dupGaps                                []time.Duration // per duplicate, how long after the first arrival
}

// TestNATSCluster runs two replicas of each service against three clustered
// nats-server processes under a steady load and, fault by fault: moves the
// streams from R1 to R3 by a rolling restart with HUBHOOKS_STREAM_REPLICAS=3,
// SIGKILLs the node that leads each stream (and, in the long run, then the
// new leader) and brings it back, restarts every replica in turn (the long
// run again at R3), and SIGKILLs one replica of every service. Every event
// published must be delivered and logged as succeeded, with under 1 %
// duplicates; the table it logs has, per fault, the deliveries expected,
// received, duplicated, logged and the longest time without any delivery.
// HUBHOOKS_CLUSTER=long (make cluster) runs the long version.
func TestNATSCluster(t *testing.T) {
	long := os.Getenv("HUBHOOKS_CLUSTER") == "long"
	rate, hold := 50, 2*time.Second
	killsPerStream, plainRestart := 1, false
	if long {
		rate, hold, killsPerStream, plainRestart = 150, 15*time.Second, 2, true
	}
	began := time.Now()
	redis := startRedis(t)
	d := startClusterDeployment(t, deploymentOptions{natsNodes: 3, streamReplicas: 1, perService: 2,
		redisEnv: []string{"HUBHOOKS_REDIS_URL=redis://" + redis.addr + "/0"}})
	t.Logf("%6.1fs deployment ready: 3 NATS nodes, 2 replicas of each service, streams R1", time.Since(began).Seconds())
	js := d.js
	killLeader := func(stream string) func() {
		return func() {
			leader := d.nats.leader(js, stream)
			node := d.nats.node(leader)
			t.Logf("SIGKILL NATS node %s (leader of %s)", leader, stream)
			node.kill()
			poll.Until(t, scaled(60*time.Second), "a new leader of "+stream, func() bool {
				info, err := streamInfo(js, stream)
				return err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != leader
			})
			t.Logf("%s has a new leader: %s", stream, d.nats.leader(js, stream))
			time.Sleep(hold)
			node.restart(t)
			d.nats.waitHealthy(js, 3, clusterStreams...)
		}
	}
	faults := []fault{
		{"none (baseline, R1)", func() { time.Sleep(hold) }},
		{"R1 -> R3 by rolling restart", func() {
			d.rollingRestart("HUBHOOKS_STREAM_REPLICAS=3")
			d.nats.waitHealthy(js, 3, append(clusterStreams, eventbus.StreamDeadLetters)...)
		}},
	}
	for _, s := range clusterStreams {
		for k := range killsPerStream {
			name := "kill leader of " + s
			if k > 0 {
				name = "kill new leader of " + s
			}
			faults = append(faults, fault{name, killLeader(s)})
		}
	}
	if plainRestart { // the short run's R1 -> R3 move is its rolling restart
		faults = append(faults, fault{"rolling restart (SIGTERM)", func() { d.rollingRestart() }})
	}
	faults = append(faults, fault{"SIGKILL one replica of each", func() { d.killOneOfEach(hold) }})
	rows := runFaults(t, d, rate, hold, faults)
	checkFaultRows(t, rows, rate, long)
}

// killOneOfEach SIGKILLs replica a of every service, waits hold, and
// starts them again.
func (d *clusterDeployment) killOneOfEach(hold time.Duration) {
	var killed []*replica
	for _, r := range d.replicas {
		if strings.HasSuffix(r.name, "-a") {
			d.t.Logf("SIGKILL %s", r.name)
			r.stop(syscall.SIGKILL)
			killed = append(killed, r)
		}
	}
	time.Sleep(hold)
	for _, r := range killed {
		r.start()
	}
	for _, r := range killed {
		d.waitReady(r)
	}
}

// fault is one phase of runFaults: do injects the fault and returns once
// the system is whole again.
type fault struct {
	name string
	do   func()
}

// runFaults configures two hubs of one URL each, puts a steady load of
// rate events/s on d and runs the faults in turn (each followed by hold
// more of load), then waits until every event acked by JetStream is
// delivered and logged as succeeded, and returns the per-fault table.
func runFaults(t *testing.T, d *clusterDeployment, rate int, hold time.Duration, faults []fault) []faultRow {
	t.Helper()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	conn, err := grpc.NewClient(d.cfgAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := hubhooksv1.NewConfigServiceClient(conn)
	recv := newClusterReceiver(t, d.failFirst)
	hubs := []string{"cl-a", "cl-b"}
	for _, hub := range hubs {
		if _, err := cfg.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: recv.URL + "/" + hub}); err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	// Each expander and deliverer learns of the hubs through its config
	// cache; wait until an event goes through before the faults start.
	pnc, pjs := d.nats.publisher()
	defer pnc.Close()
	load := startLoad(t, pjs, hubs, rate)
	poll.Until(t, scaled(60*time.Second), "first deliveries", func() bool { return len(recv.arrivals()) > 0 })
	windows := make([][2]time.Time, len(faults))
	for i, f := range faults {
		load.phase.Store(int64(i))
		windows[i][0] = time.Now()
		t.Logf("%6.1fs fault %q", time.Since(began).Seconds(), f.name)
		f.do()
		time.Sleep(hold) // load continues after the fault, within its phase
		windows[i][1] = time.Now()
	}
	load.finish()
	for _, r := range d.replicas {
		if r.exited() {
			t.Fatalf("%s exited during the run:\n%s", r.name, r.tail())
		}
	}
	if n := load.failed.Load(); n > 0 {
		t.Fatalf("%d events were never acked by JetStream", n)
	}
	// Expected: one delivery per acked event (one URL per hub).
	rows := make([]faultRow, len(faults))
	total := 0
	load.acked.Range(func(id, _ any) bool {
		if p := phaseOfEvent(id.(string)); p >= 0 && p < len(rows) {
			rows[p].expected++
			total++
		}
		return true
	})
	unique := func() int {
		seen := map[string]bool{}
		for _, a := range recv.arrivals() {
			seen[a.webhookID] = true
		}
		return len(seen)
	}
	lconn, err := grpc.NewClient(d.logAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer lconn.Close()
	logs := hubhooksv1.NewEventLogServiceClient(lconn)
	wait := scaled(2 * time.Minute)
	deadline := time.Now().Add(wait)
	for unique() < total {
		if time.Now().After(deadline) {
			for _, r := range d.replicas {
				t.Logf("--- %s log tail:\n%s", r.name, r.tail())
			}
			logMissing(ctx, t, logs, &load.acked, recv.arrivals())
			t.Fatalf("received %d of %d deliveries within %s", unique(), total, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%6.1fs all %d deliveries received", time.Since(began).Seconds(), total)

	loggedByPhase := func() ([]int, int, error) {
		by := make([]int, len(faults))
		n := 0
		for _, hub := range hubs {
			token := ""
			for {
				resp, err := logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub, Status: "succeeded", PageSize: 500, PageToken: token})
				if err != nil {
					return nil, 0, err
				}
				for _, l := range resp.GetEventLogs() {
					if p := phaseOfEvent(l.GetDomainEventId()); p >= 0 && p < len(by) {
						by[p]++
						n++
					}
				}
				if token = resp.GetNextPageToken(); token == "" {
					break
				}
			}
		}
		return by, n, nil
	}
	var logged []int
	poll.Until(t, scaled(2*time.Minute), "every delivery logged as succeeded", func() bool {
		by, n, err := loggedByPhase()
		if err != nil {
			t.Logf("ListEventLogs: %v", err)
			return false
		}
		logged = by
		return n == total
	})

	arrivals := recv.arrivals()
	first := map[string]time.Time{}
	for _, a := range arrivals {
		if a.phase < 0 || a.phase >= len(rows) {
			t.Errorf("webhook %s of an event not published by this test", a.webhookID)
			continue
		}
		if at, seen := first[a.webhookID]; seen {
			rows[a.phase].duplicates++
			rows[a.phase].dupGaps = append(rows[a.phase].dupGaps, a.at.Sub(at))
			continue
		}
		first[a.webhookID] = a.at
		rows[a.phase].received++
	}
	slices.SortFunc(arrivals, func(a, b arrival) int { return a.at.Compare(b.at) })
	for i, f := range faults {
		rows[i].name = f.name
		rows[i].logged = logged[i]
		rows[i].silent = longestSilence(arrivals, windows[i][0], windows[i][1])
	}
	return rows
}

// checkFaultRows logs the per-fault table and fails the test for a
// delivery missing or not logged, or duplicates of 1 % or more in the long
// run (make cluster), 5 % in the short one. A fault's duplicates are the
// POSTs in flight or not yet recorded when it struck, about as many
// whatever the phase's length: the short run in make test holds each fault
// 2 s at 50 events/s beside other packages' tests, so the same count is
// several times the share it is of the long run's 15 s at 150/s.
func checkFaultRows(t *testing.T, rows []faultRow, rate int, long bool) {
	t.Helper()
	total, dups := 0, 0
	t.Logf("%-42s %9s %9s %5s %7s %8s  %s", "fault", "expected", "received", "dups", "logged", "silent s", "dup after (min/median/max s)")
	for _, r := range rows {
		t.Logf("%-42s %9d %9d %5d %7d %8.2f  %s", r.name, r.expected, r.received, r.duplicates, r.logged, r.silent.Seconds(), gapSummary(r.dupGaps))
		if r.received != r.expected || r.logged != r.expected {
			t.Errorf("fault %q: expected %d deliveries, received %d, logged %d", r.name, r.expected, r.received, r.logged)
		}
		total += r.expected
		dups += r.duplicates
	}
	pct := float64(dups) / float64(max(total, 1)) * 100
	t.Logf("summary: %d events at %d/s, %d duplicates (%.2f%%)", total, rate, dups, pct)
	limit := 5.0
	if long {
		limit = 1
	}
	if pct >= limit {
		t.Errorf("duplicates %.2f%% of deliveries: want under %.0f%%", pct, limit)
	}
}

// logMissing logs, for up to 10 events acked by JetStream whose webhook
// never arrived, what the event log holds of their deliveries: where a
// delivery was lost.
func logMissing(ctx context.Context, t *testing.T, logs hubhooksv1.EventLogServiceClient, acked *sync.Map, arrivals []arrival) {
	t.Helper()
	got := map[string]bool{}
	for _, a := range arrivals {
		got[a.eventID] = true
	}
	n := 0
	acked.Range(func(id, hub any) bool {
		if got[id.(string)] {
			return true
		}
		resp, err := logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub.(string), DomainEventId: id.(string)})
		switch {
		case err != nil:
			t.Logf("missing %s (hub %s): ListEventLogs: %v", id, hub, err)
		case len(resp.GetEventLogs()) == 0:
			t.Logf("missing %s (hub %s): no event log entry", id, hub)
		}
		for _, l := range resp.GetEventLogs() {
			t.Logf("missing %s (hub %s): delivery %s %s, %d attempts, response %d, next attempt %v, updated %v",
				id, hub, l.GetId(), l.GetStatus(), l.GetAttempts(), l.GetResponseStatusCode(), l.GetNextAttemptAt().AsTime(), l.GetUpdatedAt().AsTime())
		}
		n++
		return n < 10
	})
}

// gapSummary is the least, median and greatest of gaps in seconds: how long
// after a webhook's first arrival its duplicates came, which tells a
// redelivery after the ack wait from a job published or handed out twice.
func gapSummary(gaps []time.Duration) string {
	if len(gaps) == 0 {
		return "-"
	}
	slices.Sort(gaps)
	return fmt.Sprintf("%.2f/%.2f/%.2f", gaps[0].Seconds(), gaps[len(gaps)/2].Seconds(), gaps[len(gaps)-1].Seconds())
}

// longestSilence is the longest stretch of [from, to] in which no webhook
// arrived (arrivals sorted by time).
func longestSilence(arrivals []arrival, from, to time.Time) time.Duration {
	longest, last := time.Duration(0), from
	for _, a := range arrivals {
		if a.at.Before(from) {
			continue
		}
		if a.at.After(to) {
			break
		}
		longest = max(longest, a.at.Sub(last))
		last = a.at
	}
	return max(longest, to.Sub(last))
}
