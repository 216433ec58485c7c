package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/latency"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/report"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/sink"
)

func TestReceiverPrintsAndVerifies(t *testing.T) {
	secret := webhook.NewSecret()
	now := time.Unix(1_800_000_000, 0)
	var out bytes.Buffer
	rc := &receiver{secret: secret, status: http.StatusAccepted, out: &out, now: func() time.Time { return now }}
	body := []byte(`{"id":"msg_1","type":"USER.UPDATED","hub_id":"acme","data":{},"domain_event":{"id":"evt-1","type":"USER.UPDATED"}}`)
	send := func(sign string) int {
		t.Helper()
		sig, err := webhook.Sign(sign, "msg_1", now, body)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/hooks", bytes.NewReader(body))
		req.Header.Set(webhook.HeaderID, "msg_1")
		req.Header.Set(webhook.HeaderTimestamp, "1800000000")
		req.Header.Set(webhook.HeaderSignature, sig)
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		return w.Code
	}
	if got := send(secret); got != http.StatusAccepted {
		t.Errorf("status %d, want 202", got)
	}
	if got := send(webhook.NewSecret()); got != http.StatusAccepted {
		t.Errorf("status %d, want 202", got)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got:\n%s", out.String())
	}
	for _, want := range []string{"type=USER.UPDATED", "webhook-id=msg_1", "domain_event=evt-1", "hub=acme", "signature=ok"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "signature=failed") {
		t.Errorf("line %q: want signature=failed", lines[1])
	}
	if s := rc.summary(); s != "received 2 webhooks, signature ok 1, failed 1" {
		t.Errorf("summary %q", s)
	}
}

func TestRunReceiveFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"bad status", []string{"-status", "42"}},
		{"bad secret", []string{"-secret", "nope"}},
		{"extra args", []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if err := runReceive(context.Background(), append(tt.args, "-addr", "127.0.0.1:0"), &out, &errb); err == nil {
				t.Errorf("accepted %v", tt.args)
			}
		})
	}
	// It stops by itself with -for.
	var out, errb bytes.Buffer
	if err := runReceive(context.Background(), []string{"-addr", "127.0.0.1:0", "-for", "50ms"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "received 0 webhooks") {
		t.Errorf("stderr %q lacks the summary", errb.String())
	}
}

func TestParsePids(t *testing.T) {
	got, err := parsePids("expander=12, 34 ," + "self=" + strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != (proc{"expander", 12}) || got[1].pid != 34 || got[2].name != "self" {
		t.Errorf("parsePids = %+v", got)
	}
	for _, bad := range []string{"x=y", "0", "a=-3"} {
		if _, err := parsePids(bad); err == nil {
			t.Errorf("parsePids(%q) accepted", bad)
		}
	}
}

func TestEventFactory(t *testing.T) {
	rules := cascade.Default()
	tests := []struct {
		subject     string
		wantEmitted int
	}{
		{"USER.UPDATED", 1},
		{"API.CREATED", 6},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			f, err := newEventFactory(rules, tt.subject, 512)
			if err != nil {
				t.Fatal(err)
			}
			m, err := f.msg(classRun, 7, "hub-1")
			if err != nil {
				t.Fatal(err)
			}
			id := m.Header.Get("Nats-Msg-Id")
			class, seq, sent, ok := sink.ParseEventID(id)
			if !ok || class != classRun || seq != 7 || time.Since(sent) > time.Minute {
				t.Errorf("Nats-Msg-Id %q does not carry the run class, seq and publish time", id)
			}
			if m.Subject != tt.subject {
				t.Errorf("subject %q", m.Subject)
			}
			ev := &eventsv1.DomainEvent{}
			if err := proto.Unmarshal(m.Data, ev); err != nil {
				t.Fatal(err)
			}
			if ev.GetId() != id || ev.GetHubId() != "hub-1" || ev.GetType() != tt.subject {
				t.Errorf("domain event %v does not match the message", ev)
			}
			entity := ev.GetData().GetFields()[f.entity].GetStructValue().GetFields()
			if got := int64(entity["sentAt"].GetNumberValue()); got != sent.UnixNano() {
				// float64 keeps ~15-16 digits: allow sub-microsecond rounding.
				if d := got - sent.UnixNano(); d > 1000 || d < -1000 {
					t.Errorf("data.%s.sentAt = %d, want %d", f.entity, got, sent.UnixNano())
				}
			}
			emitted, err := rules.Expand(tt.subject, ev.GetData())
			if err != nil {
				t.Fatal(err)
			}
			if len(emitted) != tt.wantEmitted {
				t.Errorf("emits %d webhook events, want %d", len(emitted), tt.wantEmitted)
			}
			// The entity payload is about the requested size.
			if n := len(emitted[0].Data); n < 480 || n > 560 {
				t.Errorf("first webhook payload is %d bytes, want about 512", n)
			}
		})
	}
	if _, err := newEventFactory(rules, "NOPE.NOPE", 10); err == nil {
		t.Errorf("unknown subject accepted")
	}
}

func TestBenchConfigValidate(t *testing.T) {
	defaults, err := parseBenchFlags(nil, io.Discard)
	if err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*benchConfig)
	}{
		{"zero duration", func(c *benchConfig) { c.duration = 0 }},
		{"six urls", func(c *benchConfig) { c.urls = 6 }},
		{"external without addresses", func(c *benchConfig) { c.target = "external" }},
		{"unknown target", func(c *benchConfig) { c.target = "x" }},
		{"negative rate", func(c *benchConfig) { c.rate = -1 }},
		{"unknown scenario", func(c *benchConfig) { c.scenario = "x" }},
		{"no burst", func(c *benchConfig) { c.fair.burstEvents = 0 }},
		{"six burst urls", func(c *benchConfig) { c.fair.burstURLs = 6 }},
		{"no quiet hubs", func(c *benchConfig) { c.fair.quietHubs = 0 }},
		{"zero noisy rate", func(c *benchConfig) { c.noisy.rate = 0 }},
		{"noisy on an external target", func(c *benchConfig) {
			c.scenario, c.target, c.natsURL, c.grpcAddr = scenarioNoisy, "external", "nats://x", "x:1"
		}},
		{"no replay deliveries", func(c *benchConfig) { c.replay.deliveries = 0 }},
		{"six replay urls", func(c *benchConfig) { c.replay.urls = 6 }},
		{"no other hubs", func(c *benchConfig) { c.replay.otherHubs = 0 }},
		{"replay on an external target", func(c *benchConfig) {
			c.scenario, c.target, c.natsURL, c.grpcAddr = scenarioReplay, "external", "nats://x", "x:1"
		}},
		{"trace on an external target", func(c *benchConfig) {
			c.trace, c.target, c.natsURL, c.grpcAddr = true, "external", "nats://x", "x:1"
		}},
		{"trace-csv without trace", func(c *benchConfig) { c.traceCSV = "x.csv" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *defaults
			tt.mod(&c)
			if err := c.validate(); err == nil {
				t.Errorf("accepted")
			}
		})
	}
}

func TestPostConcurrencyFollowsTheScenario(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{nil, 64},                               // 1 hub x 5 URLs: the hub's 64 slots
		{[]string{"-urls", "2"}, 32},            // 2 URLs x 16
		{[]string{"-hubs", "10"}, 256},          // the replica's 256
		{[]string{"-scenario", "noisy"}, 16},    // one healthy URL
		{[]string{"-scenario", "fairness"}, 64}, // the bursting hub's 5 URLs
		{[]string{"-scenario", "replay"}, 64},   // the replaying hub's 5 URLs
		{[]string{"-post-concurrency", "7"}, 7}, // as asked
	}
	for _, tt := range tests {
		c, err := parseBenchFlags(tt.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.postConcurrency != tt.want {
			t.Errorf("%v: post concurrency %d, want %d", tt.args, c.postConcurrency, tt.want)
		}
	}
}

func TestInfoField(t *testing.T) {
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n"
	if v, ok := infoField(info, "used_memory"); !ok || v != "1048576" {
		t.Errorf("infoField = %q %v", v, ok)
	}
	if _, ok := infoField(info, "process_id"); ok {
		t.Errorf("found a missing field")
	}
}

func TestParseCounters(t *testing.T) {
	text := `# HELP hubhooks_deliverer_queue_full_total x
# TYPE hubhooks_deliverer_queue_full_total counter
hubhooks_deliverer_queue_full_total 12
hubhooks_deliverer_attempts_total{status="succeeded"} 500
hubhooks_deliverer_attempts_total{status="failed"} 0
hubhooks_deliverer_held 3
go_goroutines 40
`
	ms, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	got := counters(ms)
	want := map[string]float64{"hubhooks_deliverer_queue_full_total": 12, `hubhooks_deliverer_attempts_total{status="succeeded"}`: 500}
	if len(got) != len(want) {
		t.Fatalf("counters = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if !notable("hubhooks_deliverer_queue_full_total") || notable(`hubhooks_deliverer_attempts_total{status="succeeded"}`) {
		t.Errorf("notable picks the wrong counters")
	}
}

func TestFairnessVerdicts(t *testing.T) {
	tr := func(name string, p99, perSec float64) report.Traffic {
		return report.Traffic{Name: name, Latency: latency.Summary{P99Ms: p99}, PerSecond: perSec}
	}
	cpu := []report.Process{{Name: "hubd", CPUPerDeliveryUs: 80}, {Name: "redis-server", CPUPerDeliveryUs: 15}, {Name: toolProcName, CPUPerDeliveryUs: 50}}
	phases := []report.Phase{
		{Name: phaseQuietAlone, Traffic: []report.Traffic{tr("quiet hub", 5, 20)}},
		{Name: phaseBurstAlone, Traffic: []report.Traffic{tr("burst", 900, 10000)}, Processes: cpu},
		{Name: phaseBurstQuiet, Traffic: []report.Traffic{tr("burst", 900, 9500), tr("quiet hub", 31, 20)}},
		{Name: phaseManyQuietAlone, Traffic: []report.Traffic{tr("many", 6, 200)}},
		{Name: phaseBurstManyQuiet, Traffic: []report.Traffic{tr("burst", 900, 8000), tr("many", 12, 200)}},
	}
	alone := map[string]float64{"a": 5, "b": 40}
	during := map[string]float64{"a": 29, "b": 81}
	got := fairnessVerdicts(phases, "quiet hub", "many", alone, during)
	want := []struct {
		value float64
		pass  bool
	}{
		{31, false}, // 31 > max(2 x 5, 5 + 25) = 30
		{12, true},  // 12 <= 31
		{1, false},  // hub b: 81 > 80; hub a: 29 <= 30
		{5, true},   // 9,500 vs 10,000: 5 % lost
		{20, false}, // 8,000: 20 %
		{95, true},  // hubd + Redis, not the tool
	}
	if len(got) != len(want) {
		t.Fatalf("%d verdicts, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if d := got[i].Value - w.value; d > 1e-9 || d < -1e-9 || got[i].Pass != w.pass {
			t.Errorf("verdict %d (%s) = %v pass %v, want %v pass %v", i, got[i].Goal, got[i].Value, got[i].Pass, w.value, w.pass)
		}
	}
}

func TestNoisyVerdicts(t *testing.T) {
	ph := func(name string, p99 float64) report.Phase {
		return report.Phase{Name: name, Traffic: []report.Traffic{{Name: "healthy URL", Latency: latency.Summary{P99Ms: p99}}}}
	}
	got := noisyVerdicts([]report.Phase{ph("base", 5), ph("same", 9), ph("other", 11), ph("base max", 100), ph("same max", 150), ph("other max", 150)})
	want := []bool{true, false, true, true}
	if len(got) != len(want) {
		t.Fatalf("%d verdicts, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Pass != w {
			t.Errorf("verdict %d (%s, %v ms, limit %v) pass %v, want %v", i, got[i].Goal, got[i].Value, got[i].Limit, got[i].Pass, w)
		}
	}
}

func TestReplayVerdicts(t *testing.T) {
	ph := func(name string, same, other float64) report.Phase {
		return report.Phase{Name: name, Traffic: []report.Traffic{
			{Name: trafficSameHub, Latency: latency.Summary{P99Ms: same}},
			{Name: "others", Latency: latency.Summary{P99Ms: other}},
		}}
	}
	got := replayVerdicts([]report.Phase{ph(phaseLiveAlone, 10, 40), ph(phaseLiveReplay, 36, 79)}, []string{trafficSameHub, "others"})
	if len(got) != 2 || got[0].Pass || got[0].Limit != 35 || !got[1].Pass || got[1].Limit != 80 {
		t.Errorf("verdicts %+v: want the replaying hub's over max(2x, +25 ms) and the others' within", got)
	}
}

// TestUsageInsteadOfALoadTest: no arguments, or -h, print what the tool
// does (both commands) instead of starting a load test; -version prints
// the version.
func TestUsageInsteadOfALoadTest(t *testing.T) {
	for _, args := range [][]string{nil, {"-h"}, {"--help"}} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, want := range []string{"hubbench run", "hubbench receive", "-version"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: usage %q does not mention %q", args, out.String(), want)
			}
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-version"}, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "hubbench ") {
		t.Fatalf("-version: %q, %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"run", "-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h: %v, want flag.ErrHelp (main exits 0)", err)
	}
}

func TestSchedWaits(t *testing.T) {
	exposition := func(le1ms, le10ms, all float64) string {
		return fmt.Sprintf("# TYPE go_sched_latencies_seconds histogram\n"+
			"go_sched_latencies_seconds_bucket{le=\"8.191999999999999e-05\"} %g\n"+
			"go_sched_latencies_seconds_bucket{le=\"0.0009175039999999999\"} %g\n"+
			"go_sched_latencies_seconds_bucket{le=\"0.010485759999999998\"} %g\n"+
			"go_sched_latencies_seconds_bucket{le=\"+Inf\"} %g\n"+
			"go_sched_latencies_seconds_sum 1\n"+
			"go_sched_latencies_seconds_count %g\n", le1ms/2, le1ms, le10ms, all, all)
	}
	text := exposition(100, 150, 200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, text) }))
	defer srv.Close()
	before := schedHistogram(context.Background(), []string{srv.URL})
	text = exposition(100+600, 150+900, 200+1000) // 1,000 more waits: 400 over 0.9 ms, 100 over 10.5 ms
	got := schedWaits(before, schedHistogram(context.Background(), []string{srv.URL}))
	if len(got) != 2 || got[0].Share != 0.4 || got[1].Share != 0.1 || got[0].OverMs < 0.91 || got[0].OverMs > 0.92 {
		t.Errorf("schedWaits = %+v, want 40 %% over 0.92 ms and 10 %% over 10.5 ms", got)
	}
	if got := schedWaits(nil, before); got != nil {
		t.Errorf("without a first reading: %+v", got)
	}
}

// TestStreamBacklogs reads the consumers' backlog gauges from two
// replicas: a consumer both report counts once (the larger), a stream's
// consumers and both gauges add up, a stream no replica reports is -1.
func TestStreamBacklogs(t *testing.T) {
	replica := func(pending, ackPending float64) string {
		return "# TYPE hubhooks_consumer_pending_messages gauge\n" +
			fmt.Sprintf("hubhooks_consumer_pending_messages{consumer=\"deliverer\",stream=\"HUBHOOKS_DELIVERIES\"} %g\n", pending) +
			"hubhooks_consumer_pending_messages{consumer=\"deliverer-overflow\",stream=\"HUBHOOKS_DELIVERIES\"} 5\n" +
			"hubhooks_consumer_pending_messages{consumer=\"expander\",stream=\"HUBHOOKS_EVENTS\"} 7\n" +
			"# TYPE hubhooks_consumer_ack_pending_messages gauge\n" +
			fmt.Sprintf("hubhooks_consumer_ack_pending_messages{consumer=\"deliverer\",stream=\"HUBHOOKS_DELIVERIES\"} %g\n", ackPending)
	}
	var urls []string
	for _, text := range []string{replica(100, 10), replica(120, 4)} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, text) }))
		defer srv.Close()
		urls = append(urls, srv.URL)
	}
	got, err := streamBacklogs(context.Background(), urls, "HUBHOOKS_DELIVERIES", "HUBHOOKS_EVENTS", "HUBHOOKS_ATTEMPTS")
	if want := []int64{120 + 5 + 10, 7, -1}; !slices.Equal(got, want) {
		t.Errorf("streamBacklogs = %v, want %v", got, want)
	}
	if err == nil || !strings.Contains(err.Error(), "HUBHOOKS_ATTEMPTS") {
		t.Errorf("error %v, want one naming HUBHOOKS_ATTEMPTS", err)
	}
}
