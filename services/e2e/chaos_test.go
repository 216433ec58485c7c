package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/natsembed"
	"github.com/hubhooks/hubhooks/pkg/poll"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/internal/natsauth"
)

// chaosReceiver answers by kind: ok, slow, flaky (fails the first two
// attempts of every webhook), failing (always 500). It counts deliveries by
// (webhook-id) so duplicates can be reported.
type chaosReceiver struct {
	*httptest.Server
	kind  string
	mu    sync.Mutex
	seen  map[string]int    // webhook-id -> 2xx answers
	hits  map[string]int    // webhook-id -> requests
	event map[string]string // webhook-id -> domain event id
	// first is when the first 2xx answer of each webhook-id was given,
	// again when each repeated one (a duplicate) was.
	first map[string]time.Time
	again map[string][]time.Time
}

func newChaosReceiver(t *testing.T, kind string) *chaosReceiver {
	r := &chaosReceiver{kind: kind, seen: map[string]int{}, hits: map[string]int{}, event: map[string]string{}, first: map[string]time.Time{}, again: map[string][]time.Time{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.Header.Get("webhook-id")
		var body struct {
			DomainEvent struct {
				ID string `json:"id"`
			} `json:"domain_event"`
		}
		_ = json.NewDecoder(req.Body).Decode(&body)
		r.mu.Lock()
		r.event[id] = body.DomainEvent.ID
		r.hits[id]++
		n := r.hits[id]
		r.mu.Unlock()
		switch r.kind {
		case "slow":
			time.Sleep(100 * time.Millisecond)
		case "flaky":
			if n <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		case "failing":
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		r.mu.Lock()
		if r.seen[id]++; r.seen[id] > 1 {
			r.again[id] = append(r.again[id], time.Now())
		} else {
			r.first[id] = time.Now()
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *chaosReceiver) delivered() (unique, duplicates int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.seen {
		unique++
		duplicates += n - 1
	}
	return unique, duplicates
}

type chaosCluster struct {
	t        *testing.T
	ids      natsIdentities
	natsAddr string
	natsDir  string
	nats     *server.Server
	redis    *redisProc
	procs    map[string]*proc
	cfgAddr  string
	logAddr  string
	httpAddr map[string]string
}

func (c *chaosCluster) startNATS() {
	c.t.Helper()
	s, err := natsembed.Start(natsembed.Config{Listen: c.natsAddr, StoreDir: c.natsDir, ServerName: "chaos", Users: c.ids.users(c.t)})
	if err != nil {
		c.t.Fatalf("start nats: %v", err)
	}
	c.nats = s
}

func (c *chaosCluster) stopNATS() {
	c.nats.Shutdown()
	c.nats.WaitForShutdown()
}

func (c *chaosCluster) waitReady(names ...string) {
	c.t.Helper()
	for _, name := range names {
		addr := c.httpAddr[name]
		p := c.procs[name]
		poll.Until(c.t, 60*time.Second, name+" ready", func() bool {
			if p.exited() {
				c.t.Fatalf("%s exited:\n%s", name, p.tail())
			}
			return readyz(addr)
		})
	}
}

func startChaosCluster(t *testing.T) *chaosCluster {
	t.Helper()
	bins := binaries(t)
	c := &chaosCluster{t: t, ids: newNATSIdentities(), natsAddr: freeAddr(t), natsDir: t.TempDir(), procs: map[string]*proc{}, httpAddr: map[string]string{}}
	c.startNATS()
	t.Cleanup(func() { c.stopNATS() })
	c.redis = startRedis(t)
	c.cfgAddr, c.logAddr = freeAddr(t), freeAddr(t)
	common := []string{
		"HUBHOOKS_REDIS_URL=redis://" + c.redis.addr + "/0",
		"HUBHOOKS_CONFIG_ADDR=" + c.cfgAddr,
		"HUBHOOKS_RETRY_SCHEDULE=0s,100ms,300ms,600ms,1s",
		"HUBHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
		"HUBHOOKS_LOG_FORMAT=text",
		"HUBHOOKS_LOG_LEVEL=warn",
		"HUBHOOKS_SHUTDOWN_TIMEOUT=5s",
	}
	for _, name := range []string{"configsvc", "logger", "expander", "deliverer"} {
		c.httpAddr[name] = freeAddr(t)
		env := append(append([]string{"HUBHOOKS_HTTP_ADDR=" + c.httpAddr[name]}, common...), c.ids.env(natsauth.Role(name), c.natsAddr)...)
		switch name {
		case "configsvc":
			env = append(env, "HUBHOOKS_GRPC_ADDR="+c.cfgAddr)
		case "logger":
			env = append(env, "HUBHOOKS_GRPC_ADDR="+c.logAddr)
		}
		c.procs[name] = startProc(t, name, bins+"/"+name, nil, env)
	}
	c.waitReady("configsvc", "logger", "expander", "deliverer")
	return c
}

// chaosPublisher publishes USER.UPDATED events, retrying each until
// JetStream acks it (NATS may be down for a while).
type chaosPublisher struct {
	js    jetstream.JetStream
	sent  atomic.Int64
	perID sync.Map // event id -> hub
	// phase is the index of the phase running; phaseOf maps each event id
	// to the phase it was published in.
	phase   atomic.Int64
	phaseOf sync.Map
}

func (p *chaosPublisher) publish(ctx context.Context, t *testing.T, hub string, i int) {
	id := fmt.Sprintf("chaos-%s-%d", hub, i)
	ev := &eventsv1.DomainEvent{Id: id, HubId: hub, Type: "USER.UPDATED"}
	b, _ := proto.Marshal(ev)
	deadline := time.Now().Add(90 * time.Second)
	for {
		m := nats.NewMsg("USER.UPDATED")
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Header.Set("Content-Type", "application/protobuf")
		m.Data = b
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := p.js.PublishMsg(pctx, m)
		cancel()
		if err == nil {
			p.sent.Add(1)
			p.perID.Store(id, hub)
			p.phaseOf.Store(id, int(p.phase.Load()))
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("publish %s: gave up after 90s: %v", id, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChaos runs the four real binaries as separate processes, pushes
// domain events at a mix of endpoints, SIGKILLs every service in turn, takes
// Redis and NATS away, and asserts that every expected delivery arrived and
// is in the log with its final status. HUBHOOKS_CHAOS=long (make chaos) runs
// thousands of events and 20 s outages; the default is the short CI version.
func TestChaos(t *testing.T) {
	long := os.Getenv("HUBHOOKS_CHAOS") == "long"
	perPhase, outage := 100, 3*time.Second
	if long {
		perPhase, outage = 1000, 20*time.Second
	}
	began := time.Now()
	c := startChaosCluster(t)
	t.Logf("cluster ready after %s", time.Since(began).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	conn, err := grpc.NewClient(c.cfgAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := hubhooksv1.NewConfigServiceClient(conn)
	ok, slow, flaky, failing := newChaosReceiver(t, "ok"), newChaosReceiver(t, "slow"), newChaosReceiver(t, "flaky"), newChaosReceiver(t, "failing")
	// c-burst publishes only in its own phase: a burst beside c-ok's
	// trickle, to a slow URL, so its backlog moves to its overflow shard.
	hubs := map[string][]*chaosReceiver{"c-ok": {ok, slow}, "c-flaky": {flaky}, "c-dead": {failing, ok}, "c-burst": {slow}}
	for hub, rs := range hubs {
		for _, r := range rs {
			if _, err := cfg.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: r.URL + "/" + hub}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cfg.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}

	nc, err := nats.Connect("nats://"+c.natsAddr, c.ids.publisher(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	pub := &chaosPublisher{js: js}
	hubNames := []string{"c-ok", "c-flaky", "c-dead"}
	n := 0
	publishPhase := func(count int, burst bool, during func()) {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < count; i++ {
				pub.publish(ctx, t, hubNames[n%3], n)
				n++
				if !burst {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
		if during != nil {
			during()
		}
		wg.Wait()
	}
	faults := &faultTimes{}
	killAfter := func(name string, after time.Duration) func() {
		return func() {
			time.Sleep(after)
			t.Logf("SIGKILL %s", name)
			faults.note("SIGKILL " + name)
			c.procs[name].stop(syscall.SIGKILL)
			time.Sleep(300 * time.Millisecond)
			c.procs[name].start()
		}
	}
	kill := func(name string) func() { return killAfter(name, 150*time.Millisecond) }
	// burstBeside publishes count events of c-burst at once (from a few
	// publishers) while c-ok gets one event every 20 ms, and runs during
	// meanwhile; ids of their own, apart from the round-robin phases'.
	burstBeside := func(count int, during func()) {
		var burst, trickle sync.WaitGroup
		const publishers = 8
		for p := range publishers {
			burst.Go(func() {
				for i := p; i < count; i += publishers {
					pub.publish(ctx, t, "c-burst", 2_000_000+i)
				}
			})
		}
		stop := make(chan struct{})
		trickle.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				pub.publish(ctx, t, "c-ok", 1_000_000+i)
			}
		})
		during()
		burst.Wait()
		close(stop)
		trickle.Wait()
	}
	type phase struct {
		name   string
		during func()
		// burst publishes without pausing: the expander takes a backlog
		// and batches the fan-outs of several events per message, so a
		// kill finds batches in flight and re-expanded events take the
		// log check (Hubhooks-Recheck) instead of Nats-Msg-Id.
		burst bool
		// run replaces the round-robin publishing of the phase.
		run func()
	}
	phases := []phase{
		{"kill expander", kill("expander"), false, nil},
		{"kill deliverer", kill("deliverer"), false, nil},
		{"kill logger", kill("logger"), false, nil},
		{"kill configsvc", kill("configsvc"), false, nil},
		{"SIGTERM deliverer (graceful)", func() {
			time.Sleep(150 * time.Millisecond)
			began := time.Now()
			faults.note("SIGTERM deliverer")
			c.procs["deliverer"].stop(syscall.SIGTERM)
			took := time.Since(began)
			t.Logf("deliverer stopped gracefully in %s", took.Round(time.Millisecond))
			if took > 15*time.Second {
				t.Errorf("deliverer took %s to stop on SIGTERM (shutdown timeout 5s)", took)
			}
			c.procs["deliverer"].start()
		}, false, nil},
		{"redis outage", func() {
			time.Sleep(150 * time.Millisecond)
			t.Logf("redis down for %s", outage)
			faults.note("redis down")
			c.redis.stop(syscall.SIGKILL)
			time.Sleep(outage)
			c.redis.start()
			c.redis.waitUp(t)
		}, false, nil},
		{"nats outage", func() {
			time.Sleep(150 * time.Millisecond)
			t.Logf("nats down for %s", outage)
			faults.note("nats down")
			c.stopNATS()
			time.Sleep(outage)
			c.startNATS()
		}, false, nil},
		// The deliverer dies while it moves the burst's messages to the
		// hub's overflow shard and takes them back from there.
		{name: "kill deliverer in one hub's burst beside another hub's trickle", run: func() {
			burstBeside(5*perPhase, killAfter("deliverer", time.Second))
			poll.Until(t, 60*time.Second, "the restarted deliverer taking the burst from overflow", func() bool {
				v, err := scrapeMetric(c.httpAddr["deliverer"], "hubhooks_deliverer_overflow_taken_total")
				return err == nil && v > 0
			})
		}},
		// Last: its events are expanded again after the expander's ack
		// wait (30 s), and the deliverer's log check for them must not
		// meet an outage of a later phase (it lets the jobs through when
		// Redis does not answer: at-least-once).
		{"kill expander in a burst", killAfter("expander", 30*time.Millisecond), true, nil},
	}
	// expectedNow is the events published so far per hub, and the
	// deliveries each receiver should get for them.
	expectedNow := func() (map[string]int, map[*chaosReceiver]int) {
		perHub := map[string]int{}
		pub.perID.Range(func(_, hub any) bool { perHub[hub.(string)]++; return true })
		return perHub, map[*chaosReceiver]int{ok: perHub["c-ok"] + perHub["c-dead"], slow: perHub["c-ok"] + perHub["c-burst"], flaky: perHub["c-flaky"]}
	}
	// settle waits until the deliveries of the events published so far
	// arrived and the deliverer holds no job, so that the next fault meets
	// its own phase's traffic: a deliverer killed while it still works
	// through the previous phase's backlog (late after an expander's
	// restart) repeats that phase's POSTs in flight or not yet recorded,
	// and they were counted against the previous fault.
	settle := func() {
		_, want := expectedNow()
		poll.Until(t, 90*time.Second, "the phase's deliveries settled", func() bool {
			for r, w := range want {
				if u, _ := r.delivered(); u < w {
					return false
				}
			}
			v, err := scrapeMetric(c.httpAddr["deliverer"], "hubhooks_deliverer_jobs_held")
			return err == nil && v == 0
		})
	}
	phaseStart := make([]time.Time, len(phases))
	for i, ph := range phases {
		if i > 0 {
			settle()
		}
		pub.phase.Store(int64(i))
		phaseStart[i] = time.Now()
		if ph.run != nil {
			t.Logf("%6.1fs phase %q", time.Since(began).Seconds(), ph.name)
			ph.run()
			continue
		}
		t.Logf("%6.1fs phase %q: publishing %d events", time.Since(began).Seconds(), ph.name, perPhase)
		publishPhase(perPhase, ph.burst, ph.during)
	}
	for name, p := range c.procs {
		if p.exited() {
			t.Fatalf("%s exited during the run:\n%s", name, p.tail())
		}
	}

	// Every expected delivery arrives (at least once).
	perHub, want := expectedNow()
	progress := func() string {
		var b strings.Builder
		for r, w := range want {
			u, d := r.delivered()
			fmt.Fprintf(&b, " %s: %d/%d (+%d dup);", r.kind, u, w, d)
		}
		return b.String()
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		done := true
		for r, w := range want {
			if u, _ := r.delivered(); u < w {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			for name, p := range c.procs {
				t.Logf("--- %s log tail:\n%s", name, p.tail())
			}
			t.Fatalf("not every expected delivery arrived within 3m:%s", progress())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%6.1fs deliveries:%s", time.Since(began).Seconds(), progress())

	// Every delivery is in the log with its final status.
	lconn, err := grpc.NewClient(c.logAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer lconn.Close()
	logs := hubhooksv1.NewEventLogServiceClient(lconn)
	// listAll returns every log entry of hub at url with status, page by page.
	listAll := func(hub, url, status string) ([]*hubhooksv1.EventLog, error) {
		var all []*hubhooksv1.EventLog
		token := ""
		for {
			resp, err := logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub, Url: url, Status: status, PageSize: 500, PageToken: token})
			if err != nil {
				return nil, err
			}
			all = append(all, resp.GetEventLogs()...)
			if token = resp.GetNextPageToken(); token == "" {
				return all, nil
			}
		}
	}
	count := func(hub, url, status string) int {
		all, err := listAll(hub, url, status)
		if err != nil {
			t.Logf("ListEventLogs: %v", err)
			return -1
		}
		return len(all)
	}
	type expectation struct{ hub, url, status string }
	var checks []expectation
	for hub, rs := range hubs {
		for _, r := range rs {
			st := "succeeded"
			if r == failing {
				st = "dead"
			}
			checks = append(checks, expectation{hub, r.URL + "/" + hub, st})
		}
	}
	logDeadline := time.Now().Add(3 * time.Minute)
	for {
		done := true
		for _, e := range checks {
			if count(e.hub, e.url, e.status) != perHub[e.hub] {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(logDeadline) {
			for _, e := range checks {
				var by []string
				for _, st := range []string{"", "pending", "retrying", "succeeded", "failed", "dead", "cancelled"} {
					by = append(by, fmt.Sprintf("%s=%d", map[bool]string{true: "all", false: st}[st == ""], count(e.hub, e.url, st)))
				}
				t.Logf("log of %s %s (want %d %s): %s", e.hub, e.url, perHub[e.hub], e.status, strings.Join(by, " "))
				for _, st := range []string{"pending", "retrying"} {
					stuck, _ := listAll(e.hub, e.url, st)
					for i, l := range stuck {
						if i == 10 {
							t.Logf("  ... %d more %s", len(stuck)-i, st)
							break
						}
						t.Logf("  %s %s attempts=%d created=%s updated=%s next=%s", st, l.GetId(), l.GetAttempts(),
							l.GetCreatedAt().AsTime().Format(time.RFC3339Nano), l.GetUpdatedAt().AsTime().Format(time.RFC3339Nano),
							l.GetNextAttemptAt().AsTime().Format(time.RFC3339Nano))
					}
				}
			}
			t.Logf("--- logger log tail:\n%s", c.procs["logger"].tail())
			t.Logf("--- deliverer log tail:\n%s", c.procs["deliverer"].tail())
			t.Fatalf("not every delivery is logged with its final status within 3m")
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Logf("%6.1fs every delivery logged with its final status", time.Since(began).Seconds())
	totalUnique, totalDup := 0, 0
	for r := range want {
		u, d := r.delivered()
		totalUnique += u
		totalDup += d
	}
	expected := 0
	for _, w := range want {
		expected += w
	}
	entries := 0
	for _, e := range checks {
		entries += count(e.hub, e.url, e.status)
	}
	// Per fault: what was published during it, expected, delivered, duplicated, logged.
	phaseOf := func(eventID string) int {
		if i, ok := pub.phaseOf.Load(eventID); ok {
			return i.(int)
		}
		return len(phases) - 1
	}
	// arrivedIn is the phase running at t: a duplicate is counted by the
	// phase its event was published in, and also by the phase its repeat
	// arrived in (the fault that caused it may be the next phase's).
	arrivedIn := func(t time.Time) int {
		i := 0
		for i+1 < len(phaseStart) && !t.Before(phaseStart[i+1]) {
			i++
		}
		return i
	}
	type tally struct{ events, expected, unique, dups, dupsArrived, logged int }
	per := make([]tally, len(phases))
	causes := map[string]int{} // duplicates by their phase and the fault nearest their first delivery
	pub.perID.Range(func(id, hub any) bool {
		ph := phaseOf(id.(string))
		per[ph].events++
		for _, r := range hubs[hub.(string)] {
			if r != failing {
				per[ph].expected++
			}
		}
		return true
	})
	for r := range want {
		r.mu.Lock()
		for id, n := range r.seen {
			ph := phaseOf(r.event[id])
			per[ph].unique++
			per[ph].dups += n - 1
			for _, at := range r.again[id] {
				per[arrivedIn(at)].dupsArrived++
			}
			if n > 1 {
				causes[fmt.Sprintf("%s: first delivered %s", phases[ph].name, faults.around(r.first[id]))] += n - 1
			}
		}
		r.mu.Unlock()
	}
	for _, e := range checks {
		all, err := listAll(e.hub, e.url, e.status)
		if err != nil {
			t.Fatalf("ListEventLogs: %v", err)
		}
		for _, l := range all {
			if e.status == "succeeded" {
				per[phaseOf(l.GetDomainEventId())].logged++
			}
		}
	}
	for i, ph := range phases {
		p := per[i]
		t.Logf("fault %-30q events %5d  deliveries expected %5d  received %5d  duplicates %3d (%3d arrived during it)  logged succeeded %5d", ph.name, p.events, p.expected, p.unique, p.dups, p.dupsArrived, p.logged)
		if p.unique != p.expected || p.logged != p.expected {
			t.Errorf("fault %q: expected %d deliveries, received %d, logged %d", ph.name, p.expected, p.unique, p.logged)
		}
	}
	for cause, n := range causes {
		t.Logf("duplicates %3d  %s", n, cause)
	}
	rate := float64(totalDup) / float64(totalUnique) * 100
	t.Logf("chaos summary: events published %d, deliveries expected %d, delivered (unique) %d, duplicates %d (%.2f%%), log entries with final status %d (+%d dead at the failing URL)",
		pub.sent.Load(), expected, totalUnique, totalDup, rate, entries-perHub["c-dead"], perHub["c-dead"])
	if totalUnique != expected {
		t.Errorf("delivered %d unique, want %d", totalUnique, expected)
	}
	if rate > 5 {
		t.Errorf("duplicate rate %.2f%% is above 5%%", rate)
	}
}

// faultTimes records when each fault of the chaos test began, to tell
// which fault a duplicate followed.
type faultTimes struct {
	mu    sync.Mutex
	names []string
	at    []time.Time
}

func (f *faultTimes) note(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names = append(f.names, name)
	f.at = append(f.at, time.Now())
}

// around names the fault nearest t and how long before or after it t was.
func (f *faultTimes) around(t time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	best := -1
	for i, at := range f.at {
		if best < 0 || t.Sub(at).Abs() < t.Sub(f.at[best]).Abs() {
			best = i
		}
	}
	if best < 0 {
		return "with no fault"
	}
	d := t.Sub(f.at[best])
	// Coarse, so that duplicates of one cause are counted together.
	side := map[bool]string{true: "after", false: "before"}[d >= 0]
	for _, within := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, time.Second} {
		if d.Abs() < within {
			return fmt.Sprintf("within %v %s %s", within, side, f.names[best])
		}
	}
	return fmt.Sprintf("%.0f s %s %s", d.Abs().Seconds(), side, f.names[best])
}
