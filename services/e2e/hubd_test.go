package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/redistest"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/hubd"
	"github.com/hubhooks/hubhooks/services/internal/assembly"
	"github.com/hubhooks/hubhooks/services/internal/settings"
)

// testHub is an all-in-one hubd running in the test process.
type testHub struct {
	hub    *hubd.Process
	config hubhooksv1.ConfigServiceClient
	logs   hubhooksv1.EventLogServiceClient
	health healthpb.HealthClient
	js     jetstream.JetStream
	// rdb and prefix reach hubd's Redis keys.
	rdb    *redis.Client
	prefix string
}

func startHub(t *testing.T, schedule ...time.Duration) *testHub {
	t.Helper()
	rdb, prefix := redistest.New(t)
	if len(schedule) == 0 {
		schedule = []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond}
	}
	s := &settings.Settings{
		NATSListen: "127.0.0.1:0", NATSListenSet: true,
		RedisURL: redistest.URL(), RedisPrefix: prefix,
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		DataDir: t.TempDir(), RetrySchedule: schedule,
		AllowedCIDRs: []string{"127.0.0.0/8"}, SecretGrace: time.Hour,
		LogLevel: "warn", LogFormat: "text", ShutdownTimeout: 10 * time.Second, StreamReplicas: 1,
	}
	ctx, cancel := context.WithCancel(context.Background())
	hub, err := hubd.Start(ctx, assembly.FromSettings("hubd", s))
	if err != nil {
		cancel()
		t.Fatalf("start hubd: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-hub.Done():
		case <-time.After(30 * time.Second):
			t.Error("hubd did not stop within 30s")
		}
	})
	conn, err := grpc.NewClient(hub.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	nc, err := nats.Connect(hub.PublisherURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	th := &testHub{hub: hub, config: hubhooksv1.NewConfigServiceClient(conn), logs: hubhooksv1.NewEventLogServiceClient(conn), health: healthpb.NewHealthClient(conn), js: js, rdb: rdb, prefix: prefix}
	poll.Until(t, 20*time.Second, "hubd ready", func() bool { return readyz(hub.HTTPAddr) })
	return th
}

// publish sends a domain event the way an outside publisher does: raw
// JetStream, protobuf or protojson body, Nats-Msg-Id = event id.
func (h *testHub) publish(t *testing.T, ev *eventsv1.DomainEvent, asJSON bool) *jetstream.PubAck {
	t.Helper()
	m := nats.NewMsg(ev.GetType())
	m.Header.Set(jetstream.MsgIDHeader, ev.GetId())
	var err error
	if asJSON {
		m.Header.Set("Content-Type", "application/json")
		m.Data, err = protojson.Marshal(ev)
	} else {
		m.Header.Set("Content-Type", "application/protobuf")
		m.Data, err = proto.Marshal(ev)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := h.js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatalf("publish %s: %v", ev.GetType(), err)
	}
	return ack
}

// counter returns the value of a metric line (name with labels) on hubd's
// /metrics, 0 when absent.
func (h *testHub) counter(t *testing.T, series string) float64 {
	t.Helper()
	return scrape(t, h.hub.HTTPAddr, series)
}

// scrape returns the value of a metric line (name with labels) on the
// /metrics of the HTTP address addr, 0 when absent; it fails t when the
// address does not answer.
func scrape(t *testing.T, addr, series string) float64 {
	t.Helper()
	v, err := scrapeMetric(addr, series)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// scrapeMetric is scrape returning the error (a process restarting).
func scrapeMetric(addr, series string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("metric %s: %w", series, err)
			}
			return f, nil
		}
	}
	return 0, nil
}

func domainEvent(t *testing.T, hub, id, typ string, data map[string]any) *eventsv1.DomainEvent {
	t.Helper()
	st, err := structpb.NewStruct(data)
	if err != nil {
		t.Fatal(err)
	}
	return &eventsv1.DomainEvent{Id: id, HubId: hub, Type: typ, OccurredAt: timestamppb.Now(), Data: st, Actor: "e2e"}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func types(rs []received) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Event.Type)
	}
	slices.Sort(out)
	return out
}

// TestPipelineEndToEnd walks issue 2's acceptance list against hubd.
func TestPipelineEndToEnd(t *testing.T) {
	h := startHub(t)
	ctx := ctxT(t)
	if resp, err := h.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health: %v %v", resp, err)
	}
	const hub = "acme"
	a, b := newReceiver(t), newReceiver(t)
	for _, r := range []*receiver{a, b} {
		if _, err := h.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: r.URL + "/hook"}); err != nil {
			t.Fatalf("AddCallbackUrl: %v", err)
		}
	}
	cfg, err := h.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true})
	if err != nil {
		t.Fatalf("SetEventsEnabled: %v", err)
	}
	secret := cfg.GetSecret()
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q is not whsec_", secret)
	}

	// One API.CREATED with two baseUrls: the 7 webhook events of row 1 at each URL.
	ev := domainEvent(t, hub, "evt-api-1", "API.CREATED", map[string]any{
		"api":      map[string]any{"id": "api_1", "name": "Weather"},
		"baseUrls": []any{map[string]any{"url": "https://a.example.com"}, map[string]any{"url": "https://b.example.com"}},
	})
	h.publish(t, ev, false)
	want := []string{"API.CREATED", "API.UPDATED", "API_VERSION.CREATED", "BILLINGPLAN.CREATED", "SUBSCRIPTION.CREATED", "TARGET_GROUP.CREATED", "TARGET_GROUP.CREATED"}
	slices.Sort(want)
	for _, r := range []*receiver{a, b} {
		poll.Until(t, 15*time.Second, "7 webhooks at "+r.URL, func() bool { return len(r.byDomainEvent("evt-api-1")) >= 7 })
		got := r.byDomainEvent("evt-api-1")
		if !slices.Equal(types(got), want) {
			t.Fatalf("%s got types %v, want %v", r.URL, types(got), want)
		}
		for _, g := range got {
			if err := webhook.Verify(secret, g.Header, g.Body, 5*time.Minute, time.Now()); err != nil {
				t.Errorf("signature of %s does not verify: %v", g.Event.Type, err)
			}
			if g.Header.Get(webhook.HeaderSecret) != secret {
				t.Errorf("x-rapidapi-webhook-secret = %q, want the hub secret", g.Header.Get(webhook.HeaderSecret))
			}
			if g.Header.Get(webhook.HeaderID) != g.Event.ID || !strings.HasPrefix(g.Header.Get("User-Agent"), "hubhooks/") {
				t.Errorf("headers: webhook-id %q (body id %q), user-agent %q", g.Header.Get(webhook.HeaderID), g.Event.ID, g.Header.Get("User-Agent"))
			}
			if g.Event.HubID != hub || g.Event.DomainEvent.Type != "API.CREATED" {
				t.Errorf("body: hub %q, domain event %+v", g.Event.HubID, g.Event.DomainEvent)
			}
		}
	}
	// The same webhook ids at both URLs.
	idsA, idsB := map[string]bool{}, map[string]bool{}
	for _, g := range a.byDomainEvent("evt-api-1") {
		idsA[g.Event.ID] = true
	}
	for _, g := range b.byDomainEvent("evt-api-1") {
		idsB[g.Event.ID] = true
	}
	if len(idsA) != 7 || len(idsB) != 7 {
		t.Fatalf("distinct webhook ids: %d and %d, want 7 each", len(idsA), len(idsB))
	}
	for id := range idsA {
		if !idsB[id] {
			t.Fatalf("webhook id %s reached one URL only", id)
		}
	}

	// Published again with the same Nats-Msg-Id: not processed again.
	if ack := h.publish(t, ev, true); !ack.Duplicate {
		t.Fatalf("second publish of the same event id was not de-duplicated")
	}

	// The log shows 14 succeeded entries for the event.
	var logs []*hubhooksv1.EventLog
	poll.Until(t, 15*time.Second, "14 succeeded log entries", func() bool {
		resp, err := h.logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub, Status: "succeeded", PageSize: 100})
		if err != nil {
			t.Fatalf("ListEventLogs: %v", err)
		}
		logs = nil
		for _, l := range resp.GetEventLogs() {
			if l.GetDomainEventId() == "evt-api-1" {
				logs = append(logs, l)
			}
		}
		return len(logs) >= 14
	})
	if len(logs) != 14 {
		t.Fatalf("log entries for evt-api-1: %d, want 14", len(logs))
	}
	detail, err := h.logs.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: hub, Id: logs[0].GetId()})
	if err != nil {
		t.Fatalf("GetEventLog: %v", err)
	}
	if len(detail.GetAttempts()) == 0 {
		t.Fatal("GetEventLog: no attempts")
	}
	at := detail.GetAttempts()[0]
	if at.GetResponse().GetStatusCode() != 200 || detail.GetRequestBody() == "" || at.GetRequest().GetBody() != "" {
		t.Fatalf("attempt detail: %+v, request body %q; want a 200 and the body once, beside the attempts", at, detail.GetRequestBody())
	}
	for k, v := range at.GetRequest().GetHeaders() {
		if strings.Contains(v, strings.TrimPrefix(secret, "whsec_")) {
			t.Fatalf("GetEventLog shows the secret in header %s", k)
		}
	}

	// Triggers off: an event is neither delivered nor logged.
	if _, err := h.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: false}); err != nil {
		t.Fatal(err)
	}
	// The services' config caches learn of a change within milliseconds
	// (docs/architecture.md); an event published inside that window may still
	// go out. Wait until the expander skips an event as disabled, then
	// publish the one that must not be delivered.
	skippedBefore := h.counter(t, `hubhooks_expander_events_skipped_total{reason="disabled"}`)
	for i := 0; h.counter(t, `hubhooks_expander_events_skipped_total{reason="disabled"}`) == skippedBefore; i++ {
		if i == 200 {
			t.Fatal("the expander never saw the triggers off")
		}
		h.publish(t, domainEvent(t, hub, fmt.Sprintf("evt-probe-%d", i), "USER.DELETED", map[string]any{"user": map[string]any{"id": "u1"}}), false)
		time.Sleep(20 * time.Millisecond)
	}
	h.publish(t, domainEvent(t, hub, "evt-while-off", "USER.UPDATED", map[string]any{"user": map[string]any{"id": "u1"}}), false)
	if _, err := h.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	// Config changes reach the expander within its re-check interval (250 ms):
	// publish markers until one is delivered; by then evt-while-off, which
	// reached JetStream before the triggers were on, has been skipped.
	markerID := ""
	for i := 0; markerID == ""; i++ {
		id := fmt.Sprintf("evt-marker-%d", i)
		h.publish(t, domainEvent(t, hub, id, "USER.DELETED", map[string]any{"user": map[string]any{"id": "u1"}}), false)
		deadline := time.Now().Add(400 * time.Millisecond)
		for time.Now().Before(deadline) && markerID == "" {
			if len(a.byDomainEvent(id)) == 1 && len(b.byDomainEvent(id)) == 1 {
				markerID = id
			}
			time.Sleep(10 * time.Millisecond)
		}
		if i == 20 {
			t.Fatal("no event delivered within 8s of enabling the triggers")
		}
	}
	if n := len(a.byDomainEvent("evt-while-off")) + len(b.byDomainEvent("evt-while-off")); n != 0 {
		t.Fatalf("event published while triggers were off was delivered %d times", n)
	}
	resp, err := h.logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub, EventType: "USER.UPDATED"})
	if err != nil || len(resp.GetEventLogs()) != 0 {
		t.Fatalf("event published while off is in the log: %v %v", resp, err)
	}
	if got := len(a.byDomainEvent("evt-api-1")); got != 7 {
		t.Fatalf("after the duplicate publish %s has %d webhooks for evt-api-1, want 7", a.URL, got)
	}

	// SendTestEvent returns the receiver's response and is logged as a test.
	tr, err := h.config.SendTestEvent(ctx, &hubhooksv1.SendTestEventRequest{HubId: hub, EventType: "BILLINGPLAN.CREATED", Url: a.URL + "/hook"})
	if err != nil {
		t.Fatalf("SendTestEvent: %v", err)
	}
	if tr.GetResponse().GetStatusCode() != 200 || !strings.Contains(tr.GetResponse().GetBody(), `"ok":true`) {
		t.Fatalf("SendTestEvent response: %+v", tr.GetResponse())
	}
	poll.Until(t, 10*time.Second, "test event in the log", func() bool {
		d, err := h.logs.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: hub, Id: tr.GetEventLogId()})
		return err == nil && d.GetEventLog().GetTest()
	})

	// At most five URLs: the 6th is refused with FailedPrecondition.
	for i := 3; i <= 5; i++ {
		if _, err := h.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: a.URL + "/extra" + string(rune('0'+i))}); err != nil {
			t.Fatalf("URL %d: %v", i, err)
		}
	}
	_, err = h.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: a.URL + "/sixth"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("6th URL: %v, want FailedPrecondition", err)
	}
	cfg, err = h.config.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: hub})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cfg.GetCallbackUrls() {
		if strings.Contains(u.GetUrl(), "/extra") {
			if _, err := h.config.RemoveCallbackUrl(ctx, &hubhooksv1.RemoveCallbackUrlRequest{HubId: hub, Id: u.GetId()}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// After GenerateSecret the next deliveries carry the new secret, signed
	// with both while the old one is in its grace period.
	gen, err := h.config.GenerateSecret(ctx, &hubhooksv1.GenerateSecretRequest{HubId: hub})
	if err != nil {
		t.Fatalf("GenerateSecret: %v", err)
	}
	newSecret := gen.GetSecret()
	if newSecret == secret {
		t.Fatal("GenerateSecret returned the old secret")
	}
	// The caches follow WatchHubConfig within milliseconds: publish until a
	// delivery carries the new secret, then every later one must too.
	var g received
	for i := 0; ; i++ {
		id := fmt.Sprintf("evt-after-rotation-%d", i)
		h.publish(t, domainEvent(t, hub, id, "APP.UPDATED", map[string]any{"app": map[string]any{"id": "app1"}}), false)
		poll.Until(t, 15*time.Second, "delivery after rotation", func() bool { return len(a.byDomainEvent(id)) == 1 })
		g = a.byDomainEvent(id)[0]
		if g.Header.Get(webhook.HeaderSecret) == newSecret {
			break
		}
		if i == 20 {
			t.Fatalf("20 deliveries after GenerateSecret still carry the old secret")
		}
		time.Sleep(25 * time.Millisecond)
	}
	h.publish(t, domainEvent(t, hub, "evt-after-rotation-last", "APP.UPDATED", map[string]any{"app": map[string]any{"id": "app1"}}), false)
	poll.Until(t, 15*time.Second, "last delivery after rotation", func() bool { return len(a.byDomainEvent("evt-after-rotation-last")) == 1 })
	if last := a.byDomainEvent("evt-after-rotation-last")[0]; last.Header.Get(webhook.HeaderSecret) != newSecret {
		t.Fatalf("a delivery after one with the new secret went back to the old secret")
	}
	for _, s := range []string{newSecret, secret} {
		if err := webhook.Verify(s, g.Header, g.Body, 5*time.Minute, time.Now()); err != nil {
			t.Fatalf("after rotation the signature does not verify with %s secret: %v", map[bool]string{true: "new", false: "old"}[s == newSecret], err)
		}
	}
}

// TestEveryCascadeRow publishes one domain event per row of the cascade
// table from outside and checks each produces exactly its webhook events.
func TestEveryCascadeRow(t *testing.T) {
	h := startHub(t)
	ctx := ctxT(t)
	const hub = "rows"
	r := newReceiver(t)
	if _, err := h.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: r.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	rows := cascade.Default().EventTypes().GetRules()
	if len(rows) != 44 {
		t.Fatalf("rule table has %d rows, want 44", len(rows))
	}
	total := 0
	for i, row := range rows {
		data := map[string]any{"baseUrls": []any{map[string]any{"url": "https://x.example.com"}}}
		h.publish(t, domainEvent(t, hub, "row-"+row.GetDomainSubject(), row.GetDomainSubject(), data), i%2 == 1)
		total += len(row.GetEmits())
	}
	poll.Until(t, 30*time.Second, "every row's webhooks", func() bool { return len(r.all()) >= total })
	for _, row := range rows {
		var want []string
		for _, e := range row.GetEmits() {
			want = append(want, e.GetType())
		}
		slices.Sort(want)
		got := types(r.byDomainEvent("row-" + row.GetDomainSubject()))
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", row.GetDomainSubject(), got, want)
		}
	}
	if len(r.all()) != total {
		t.Errorf("received %d webhooks, want %d", len(r.all()), total)
	}
}

// TestDeadThenRedeliver: an endpoint that keeps failing ends dead after the
// last attempt of the schedule, every attempt is in the log, and Redeliver
// sends the same webhook again once the endpoint is back.
func TestDeadThenRedeliver(t *testing.T) {
	h := startHub(t) // schedule 0s, 50ms, 100ms: three attempts
	ctx := ctxT(t)
	const hub = "deadhub"
	r := newReceiver(t)
	r.mu.Lock()
	r.status = 500
	r.mu.Unlock()
	if _, err := h.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: r.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	h.publish(t, domainEvent(t, hub, "evt-dead", "TEAM.UPDATED", map[string]any{"team": map[string]any{"id": "t1"}}), false)
	var dead *hubhooksv1.EventLog
	poll.Until(t, 15*time.Second, "the delivery dead", func() bool {
		resp, err := h.logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub, Status: "dead"})
		if err != nil || len(resp.GetEventLogs()) == 0 {
			return false
		}
		dead = resp.GetEventLogs()[0]
		return true
	})
	if dead.GetAttempts() != 3 || len(r.byDomainEvent("evt-dead")) != 3 {
		t.Fatalf("dead after %d logged attempts and %d POSTs, want 3 and 3", dead.GetAttempts(), len(r.byDomainEvent("evt-dead")))
	}
	d, err := h.logs.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: hub, Id: dead.GetId()})
	if err != nil || len(d.GetAttempts()) != 3 || d.GetAttempts()[2].GetResponse().GetStatusCode() != 500 {
		t.Fatalf("GetEventLog of the dead delivery: %v %v", d, err)
	}

	r.mu.Lock()
	r.status = 200
	r.mu.Unlock()
	red, err := h.logs.Redeliver(ctx, &hubhooksv1.RedeliverRequest{HubId: hub, Id: dead.GetId()})
	if err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	poll.Until(t, 15*time.Second, "the redelivery succeeded", func() bool {
		d, err := h.logs.GetEventLog(ctx, &hubhooksv1.GetEventLogRequest{HubId: hub, Id: red.GetEventLog().GetId()})
		return err == nil && d.GetEventLog().GetStatus() == "succeeded"
	})
	got := r.byDomainEvent("evt-dead")
	if len(got) != 4 || got[3].Event.ID != dead.GetEventId() || got[3].Header.Get(webhook.HeaderID) != dead.GetEventId() {
		t.Fatalf("redelivery: %d POSTs, last webhook-id %q, want 4 and %q", len(got), got[len(got)-1].Header.Get(webhook.HeaderID), dead.GetEventId())
	}
	if red.GetEventLog().GetRedeliveryOf() != dead.GetId() {
		t.Fatalf("redelivery_of = %q, want %q", red.GetEventLog().GetRedeliveryOf(), dead.GetId())
	}
}
