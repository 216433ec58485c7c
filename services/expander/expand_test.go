package expander_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/cascade/cascadetest"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/publisher"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	"github.com/hubhooks/hubhooks/services/expander"
)

var specRows = cascadetest.SpecRows

func publishRaw(t *testing.T, js jetstream.JetStream, subject string, data []byte, headers map[string]string) *jetstream.PubAck {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	for k, v := range headers {
		m.Header.Set(k, v)
	}
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack
}

func publishEvent(t *testing.T, js jetstream.JetStream, ev *eventsv1.DomainEvent) *jetstream.PubAck {
	t.Helper()
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return publishRaw(t, js, ev.GetType(), b, map[string]string{
		"Content-Type": "application/protobuf", jetstream.MsgIDHeader: ev.GetId(),
	})
}

func domainEvent(t *testing.T, id, hub, subject string, data map[string]any) *eventsv1.DomainEvent {
	t.Helper()
	s, err := structpb.NewStruct(data)
	if err != nil {
		t.Fatal(err)
	}
	return &eventsv1.DomainEvent{Id: id, HubId: hub, Type: subject, Data: s,
		OccurredAt: timestamppb.New(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), Actor: "user_1"}
}

// checkJobs verifies the jobs of one domain event: for each expected type i,
// one job per URL with the deterministic ids, and a body that is the webhook event.
func checkJobs(t *testing.T, got []*deliveryv1.DeliveryJob, hub, eventID, subject string, wantTypes []string, urlIDs []string, version int64) map[string]json.RawMessage {
	t.Helper()
	var mine []*deliveryv1.DeliveryJob
	for _, j := range got {
		if j.GetDomainEventId() == eventID {
			mine = append(mine, j)
		}
	}
	if len(mine) != len(wantTypes)*len(urlIDs) {
		t.Fatalf("%s: %d jobs, want %d (%d events x %d URLs)", subject, len(mine), len(wantTypes)*len(urlIDs), len(wantTypes), len(urlIDs))
	}
	byDelivery := map[string]*deliveryv1.DeliveryJob{}
	for _, j := range mine {
		byDelivery[j.GetDeliveryId()] = j
	}
	payloads := map[string]json.RawMessage{}
	for i, typ := range wantTypes {
		wid := webhook.EventID(hub, eventID, i)
		for _, u := range urlIDs {
			j, ok := byDelivery[webhook.DeliveryID(wid, u)]
			if !ok {
				t.Fatalf("%s: no job for event %d (%s) to URL %s", subject, i, typ, u)
			}
			if j.GetEventType() != typ || j.GetWebhookEventId() != wid || j.GetUrlId() != u || j.GetUrl() != "https://example.com/"+u ||
				j.GetAttempt() != 1 || j.GetConfigVersion() != version || j.GetHubId() != hub || j.GetDomainEventType() != subject || j.GetTest() {
				t.Errorf("%s: bad job %v", subject, j)
			}
			var body webhook.Event
			if err := json.Unmarshal(j.GetBody(), &body); err != nil {
				t.Fatalf("%s: body: %v", subject, err)
			}
			if body.ID != wid || body.Type != typ || body.HubID != hub || body.DomainEvent.ID != eventID || body.DomainEvent.Type != subject ||
				!body.CreatedAt.Equal(j.GetCreatedAt().AsTime()) {
				t.Errorf("%s: bad body %s", subject, j.GetBody())
			}
			payloads[fmt.Sprintf("%d", i)] = body.Data
		}
	}
	return payloads
}

func TestEveryRowProducesItsJobs(t *testing.T) {
	e := start(t, expander.Config{})
	hub := "hub-rows"
	urls := []string{"url_a", "url_b"}
	e.cfgs.set(hubConfig(hub, 7, true, urls...))
	for i, row := range specRows {
		publishEvent(t, e.js, domainEvent(t, fmt.Sprintf("evt_row_%d", i+1), hub, row.Subject, map[string]any{"x": float64(i)}))
	}
	e.idle(t)
	got := jobs(t, e.js, hub)
	total := 0
	for i, row := range specRows {
		checkJobs(t, got, hub, fmt.Sprintf("evt_row_%d", i+1), row.Subject, row.Emits, urls, 7)
		total += len(row.Emits) * len(urls)
	}
	if len(got) != total {
		t.Errorf("%d jobs in all, want %d", len(got), total)
	}
	if n := metric(t, e.reg, "hubhooks_expander_jobs_published_total"); n != float64(total) {
		t.Errorf("jobs metric %v, want %d", n, total)
	}
	if n := metric(t, e.reg, "hubhooks_expander_events_expanded_total"); n != 43 {
		t.Errorf("expanded metric %v, want 43 (row 12 emits nothing)", n)
	}
	if n := metric(t, e.reg, "hubhooks_expander_events_skipped_total", "reason", "no_events"); n != 1 {
		t.Errorf("skipped no_events %v, want 1", n)
	}
}

func TestRowOneForEachBaseURLs(t *testing.T) {
	e := start(t, expander.Config{})
	hub := "hub-tg"
	urls := []string{"u1", "u2"}
	e.cfgs.set(hubConfig(hub, 3, true, urls...))
	ev := domainEvent(t, "evt_api_1", hub, "API.CREATED", map[string]any{
		"api":         map[string]any{"id": "api_1"},
		"billingPlan": map[string]any{"id": "plan_1"},
		"baseUrls":    []any{map[string]any{"url": "https://one"}, map[string]any{"url": "https://two"}},
	})
	publishEvent(t, e.js, ev)
	e.idle(t)
	want := []string{"API.CREATED", "API.UPDATED", "API_VERSION.CREATED", "BILLINGPLAN.CREATED", "SUBSCRIPTION.CREATED", "TARGET_GROUP.CREATED", "TARGET_GROUP.CREATED"}
	got := jobs(t, e.js, hub)
	if len(got) != 14 {
		t.Fatalf("%d jobs, want 14", len(got))
	}
	p := checkJobs(t, got, hub, "evt_api_1", "API.CREATED", want, urls, 3)
	if string(p["5"]) != `{"url":"https://one"}` || string(p["6"]) != `{"url":"https://two"}` {
		t.Errorf("TARGET_GROUP payloads %s, %s", p["5"], p["6"])
	}
	if string(p["0"]) != `{"id":"api_1"}` || string(p["3"]) != `{"id":"plan_1"}` {
		t.Errorf("API/BILLINGPLAN payloads %s, %s", p["0"], p["3"])
	}
	// API_VERSION has no "version" field: the whole data.
	var whole map[string]any
	if err := json.Unmarshal(p["2"], &whole); err != nil || whole["baseUrls"] == nil {
		t.Errorf("API_VERSION payload %s, want the whole data", p["2"])
	}
}

func TestJSONEventsAccepted(t *testing.T) {
	e := start(t, expander.Config{})
	hub := "hub-json"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	// Through the SDK in JSON mode.
	p, err := publisher.New(e.js, publisher.WithJSON())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := publisher.TeamUpdated(hub, map[string]any{"team": map[string]any{"id": "t1"}}, publisher.WithID("evt_json_1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	// As "nats pub" would send it: no type, no occurred_at, a charset parameter.
	publishRaw(t, e.js, "USER.UPDATED", []byte(`{"id":"evt_json_2","hubId":"hub-json","data":{"user":{"id":"u9"}}}`),
		map[string]string{"Content-Type": "application/json; charset=utf-8"})
	e.idle(t)
	got := jobs(t, e.js, hub)
	p1 := checkJobs(t, got, hub, "evt_json_1", "TEAM.UPDATED", []string{"TEAM.UPDATED"}, []string{"u1"}, 1)
	p2 := checkJobs(t, got, hub, "evt_json_2", "USER.UPDATED", []string{"USER.UPDATED"}, []string{"u1"}, 1)
	if string(p1["0"]) != `{"id":"t1"}` || string(p2["0"]) != `{"id":"u9"}` {
		t.Errorf("payloads %s %s", p1["0"], p2["0"])
	}
	for _, j := range got {
		if j.GetCreatedAt().AsTime().IsZero() || time.Since(j.GetCreatedAt().AsTime()) > time.Minute {
			t.Errorf("created_at %v", j.GetCreatedAt().AsTime())
		}
	}
}

func TestDuplicateEventExpandedOnce(t *testing.T) {
	e := start(t, expander.Config{})
	hub := "hub-dup"
	e.cfgs.set(hubConfig(hub, 1, true, "u1", "u2"))
	ev := domainEvent(t, "evt_dup", hub, "APP.CREATED", map[string]any{"app": map[string]any{"id": "a"}})
	first := publishEvent(t, e.js, ev)
	second := publishEvent(t, e.js, ev)
	if !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second publish not de-duplicated: %+v", second)
	}
	e.idle(t)
	checkJobs(t, jobs(t, e.js, hub), hub, "evt_dup", "APP.CREATED", []string{"APP.CREATED", "APP_KEY.CREATED"}, []string{"u1", "u2"}, 1)
	if n := metric(t, e.reg, "hubhooks_expander_events_received_total"); n != 1 {
		t.Errorf("received %v events, want 1", n)
	}
}

func TestHubsWithoutDeliveriesGetNoJobs(t *testing.T) {
	e := start(t, expander.Config{RecheckInterval: time.Second})
	e.cfgs.set(hubConfig("hub-off", 4, false, "u1"))
	e.cfgs.set(hubConfig("hub-nourl", 2, true))
	// hub-unknown has no config at all.
	for _, hub := range []string{"hub-off", "hub-nourl", "hub-unknown"} {
		for i := range 3 {
			publishEvent(t, e.js, domainEvent(t, fmt.Sprintf("evt_%s_%d", hub, i), hub, "TEAM.CREATED", nil))
		}
	}
	e.idle(t)
	if msgs := streamMsgs(t, e.js, eventbus.StreamDeliveries); len(msgs) != 0 {
		t.Errorf("%d jobs published, want none", len(msgs))
	}
	for _, reason := range []string{"disabled", "no_urls"} {
		if n := metric(t, e.reg, "hubhooks_expander_events_skipped_total", "reason", reason); n != 3 {
			t.Errorf("skipped %s = %v, want 3", reason, n)
		}
	}
	// Re-checks against configsvc are rate limited per hub: one per hub here
	// (the nine events arrive within the one-second interval).
	if n := e.cfgs.fetches.Load(); n < 1 || n > 6 {
		t.Errorf("%d config fetches for 9 events of 3 hubs, want 3 (at most 2 per hub)", n)
	}
}

func TestEventsBeforeEnablingOrBeforeAURLAreNotDelivered(t *testing.T) {
	e := start(t, expander.Config{})
	past, future := timestamppb.New(time.Now().Add(-time.Hour)), timestamppb.New(time.Now().Add(time.Hour))
	// Triggers switched on after the event reached JetStream: nothing.
	late := hubConfig("hub-late", 3, true, "u1")
	late.EventsEnabledAt = future
	e.cfgs.set(late)
	// A URL added after the event reached JetStream: not that URL.
	mixed := hubConfig("hub-mixed", 3, true, "u-old", "u-new")
	mixed.EventsEnabledAt = past
	mixed.CallbackUrls[0].CreatedAt = past
	mixed.CallbackUrls[1].CreatedAt = future
	e.cfgs.set(mixed)
	publishEvent(t, e.js, domainEvent(t, "evt_late", "hub-late", "USER.DELETED", nil))
	publishEvent(t, e.js, domainEvent(t, "evt_mixed", "hub-mixed", "USER.DELETED", nil))
	e.idle(t)
	if got := jobs(t, e.js, "hub-late"); len(got) != 0 {
		t.Errorf("%d jobs for an event that arrived before the triggers were on, want 0", len(got))
	}
	checkJobs(t, jobs(t, e.js, "hub-mixed"), "hub-mixed", "evt_mixed", "USER.DELETED", []string{"USER.DELETED"}, []string{"u-old"}, 3)
	if n := metric(t, e.reg, "hubhooks_expander_events_skipped_total", "reason", "before_enabled"); n != 1 {
		t.Errorf("skipped before_enabled = %v, want 1", n)
	}
}

func TestStaleCacheIsRechecked(t *testing.T) {
	e := start(t, expander.Config{})
	hub := "hub-lag"
	e.cfgs.set(hubConfig(hub, 1, false, "u1"))
	// Triggers were just enabled; the cache has not heard yet.
	e.cfgs.setTruth(hubConfig(hub, 2, true, "u1"))
	publishEvent(t, e.js, domainEvent(t, "evt_lag", hub, "USER.DELETED", nil))
	e.idle(t)
	checkJobs(t, jobs(t, e.js, hub), hub, "evt_lag", "USER.DELETED", []string{"USER.DELETED"}, []string{"u1"}, 2)
	// Enabled hubs never cause a round trip.
	before := e.cfgs.fetches.Load()
	for i := range 5 {
		publishEvent(t, e.js, domainEvent(t, fmt.Sprintf("evt_lag_%d", i), hub, "USER.DELETED", nil))
	}
	e.idle(t)
	if n := e.cfgs.fetches.Load(); n != before {
		t.Errorf("%d fetches for an enabled hub, want 0", n-before)
	}
}

func TestMalformedEventsAreDeadLettered(t *testing.T) {
	e := start(t, expander.Config{MaxEventBytes: 4096})
	hub := "hub-bad"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	e.cfgs.setPanicOn("hub-panic")
	good := func(mut func(*eventsv1.DomainEvent)) []byte {
		ev := domainEvent(t, "evt_x", hub, "TEAM.UPDATED", map[string]any{"team": "t"})
		mut(ev)
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pb := "application/protobuf"
	tests := []struct {
		name        string
		subject     string
		contentType string
		body        []byte
		wantReason  string
	}{
		{"garbage protobuf", "TEAM.UPDATED", pb, []byte{0xff, 0xff, 0xff, 0x01}, "decode"},
		{"garbage protobuf without content type", "TEAM.UPDATED", "", []byte("\x0a\xff"), "decode"},
		{"garbage json", "TEAM.UPDATED", "application/json", []byte("{not json"), "decode"},
		{"unknown json field", "TEAM.UPDATED", "application/json", []byte(`{"id":"e","hubId":"h","colour":"red"}`), "decode"},
		{"unknown content type", "TEAM.UPDATED", "text/plain", good(func(*eventsv1.DomainEvent) {}), "content_type"},
		{"unknown subject", "API.FROBNICATED", pb, good(func(ev *eventsv1.DomainEvent) { ev.Type = "" }), "unknown_subject"},
		{"missing id", "TEAM.UPDATED", pb, good(func(ev *eventsv1.DomainEvent) { ev.Id = "" }), "missing_id"},
		{"long id", "TEAM.UPDATED", pb, good(func(ev *eventsv1.DomainEvent) { ev.Id = strings.Repeat("i", 300) }), "bad_id"},
		{"missing hub_id", "TEAM.UPDATED", pb, good(func(ev *eventsv1.DomainEvent) { ev.HubId = "" }), "missing_hub_id"},
		{"bad hub_id", "TEAM.UPDATED", pb, good(func(ev *eventsv1.DomainEvent) { ev.HubId = "hub.>" }), "bad_hub_id"},
		{"type contradicts subject", "TEAM.UPDATED", pb, good(func(ev *eventsv1.DomainEvent) { ev.Type = "TEAM.DELETED" }), "type_mismatch"},
		{"bad occurred_at", "TEAM.UPDATED", pb, good(func(ev *eventsv1.DomainEvent) { ev.OccurredAt = &timestamppb.Timestamp{Seconds: 1 << 60} }), "bad_occurred_at"},
		{"oversize", "TEAM.UPDATED", pb, good(func(ev *eventsv1.DomainEvent) { ev.Actor = strings.Repeat("a", 5000) }), "oversize"},
		{"panic in handler", "TEAM.UPDATED", pb, good(func(ev *eventsv1.DomainEvent) { ev.HubId = "hub-panic" }), "panic"},
	}
	for i, tt := range tests {
		h := map[string]string{"X-Test-Case": tt.name, jetstream.MsgIDHeader: fmt.Sprintf("bad-%d", i)}
		if tt.contentType != "" {
			h["Content-Type"] = tt.contentType
		}
		publishRaw(t, e.js, tt.subject, tt.body, h)
	}
	// The consumer keeps going: a good event after the bad ones is expanded.
	publishEvent(t, e.js, domainEvent(t, "evt_good", hub, "TEAM.UPDATED", map[string]any{"team": "t"}))
	e.idle(t)
	checkJobs(t, jobs(t, e.js, hub), hub, "evt_good", "TEAM.UPDATED", []string{"TEAM.UPDATED"}, []string{"u1"}, 1)

	dl := map[string]*jetstream.RawStreamMsg{}
	for _, m := range streamMsgs(t, e.js, eventbus.StreamDeadLetters) {
		dl[m.Header.Get("X-Test-Case")] = m
	}
	if len(dl) != len(tests) {
		t.Errorf("%d dead letters, want %d", len(dl), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := dl[tt.name]
			if !ok {
				t.Fatal("not dead-lettered")
			}
			reason := m.Header.Get(eventbus.HeaderReason)
			if !strings.HasPrefix(reason, tt.wantReason+": ") {
				t.Errorf("reason %q, want kind %q", reason, tt.wantReason)
			}
			if m.Subject != eventbus.SubjectDeadLetterEvents || m.Header.Get(eventbus.HeaderOriginalSubject) != tt.subject ||
				m.Header.Get(eventbus.HeaderOriginalStream) != eventbus.StreamEvents || m.Header.Get(eventbus.HeaderOriginalSeq) == "" {
				t.Errorf("dead letter %s headers %v", m.Subject, m.Header)
			}
			if !bytes.Equal(m.Data, tt.body) || m.Header.Get(eventbus.HeaderBodySize) != "" {
				t.Errorf("dead letter body of %d bytes (%s %q), original %d", len(m.Data), eventbus.HeaderBodySize, m.Header.Get(eventbus.HeaderBodySize), len(tt.body))
			}
			if n := metric(t, e.reg, "hubhooks_expander_events_dead_lettered_total", "reason", tt.wantReason); n < 1 {
				t.Errorf("dead-letter metric for %s is %v", tt.wantReason, n)
			}
		})
	}
}

// An event as large as the server takes (headers and body together) is
// dead-lettered, its body cut to fit with the dead letter's headers, and
// the events after it are expanded: one pull holds it (pullBytes).
func TestLargestEventIsDeadLettered(t *testing.T) {
	e := start(t, expander.Config{})
	hub := "hub-large"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	var body []byte
	for n := e.nc.MaxPayload(); body == nil; n-- {
		m := nats.NewMsg("TEAM.UPDATED")
		m.Header.Set("Content-Type", "application/protobuf")
		m.Data = make([]byte, n)
		_, err := e.js.PublishMsg(context.Background(), m)
		switch {
		case err == nil:
			body = m.Data
		case !errors.Is(err, nats.ErrMaxPayload):
			t.Fatal(err)
		}
	}
	publishEvent(t, e.js, domainEvent(t, "evt_after", hub, "TEAM.UPDATED", map[string]any{"team": "t"}))
	e.idle(t)
	checkJobs(t, jobs(t, e.js, hub), hub, "evt_after", "TEAM.UPDATED", []string{"TEAM.UPDATED"}, []string{"u1"}, 1)
	dls := streamMsgs(t, e.js, eventbus.StreamDeadLetters)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	m := dls[0]
	if got := m.Header.Get(eventbus.HeaderBodySize); got != strconv.Itoa(len(body)) || len(m.Data) >= len(body) || !bytes.HasPrefix(body, m.Data) {
		t.Errorf("dead letter of %d bytes with %s %q, want the start of the %d bytes", len(m.Data), eventbus.HeaderBodySize, got, len(body))
	}
}

func TestRedeliveryYieldsIdenticalJobs(t *testing.T) {
	// A short duplicate window lets the second expansion's jobs be stored, so
	// they can be compared with the first.
	e := start(t, expander.Config{StreamOptions: eventbus.Options{DuplicateWindow: 200 * time.Millisecond}})
	hub := "hub-redeliver"
	e.cfgs.set(hubConfig(hub, 5, true, "u1", "u2"))
	withTime := domainEvent(t, "evt_r1", hub, "ORGANIZATION.DELETED", map[string]any{"organization": map[string]any{"id": "o"}})
	noTime := domainEvent(t, "evt_r2", hub, "API.CREATED", map[string]any{"baseUrls": []any{"https://b"}})
	noTime.OccurredAt = nil
	publishEvent(t, e.js, withTime)
	publishEvent(t, e.js, noTime)
	e.idle(t)
	first := jobs(t, e.js, hub)
	if len(first) != (4+6)*2 {
		t.Fatalf("%d jobs, want 20", len(first))
	}

	// Simulate a crash before the acks: stop, forget the consumer's progress
	// (a new consumer from the start of the stream: the expander itself
	// makes a deleted one from the end) and expand the same stored
	// messages again.
	e.stop()
	if err := e.js.DeleteConsumer(context.Background(), eventbus.StreamEvents, eventbus.ConsumerExpander); err != nil {
		t.Fatal(err)
	}
	if _, err := eventbus.EnsureConsumer(context.Background(), e.js, eventbus.StreamEvents, eventbus.ConsumerConfig(eventbus.ConsumerExpander, 30*time.Second, 1024)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the duplicate window pass
	e.run(t)
	e.idle(t)
	all := jobs(t, e.js, hub)
	if len(all) != 2*len(first) {
		t.Fatalf("%d jobs after re-expansion, want %d", len(all), 2*len(first))
	}
	second := all[len(first):]
	key := func(j *deliveryv1.DeliveryJob) string {
		return j.GetDeliveryId() + "|" + j.GetWebhookEventId() + "|" + j.GetUrlId() + "|" + string(j.GetBody()) + "|" + j.GetCreatedAt().AsTime().String()
	}
	a, b := make([]string, 0, len(first)), make([]string, 0, len(second))
	for i := range first {
		a, b = append(a, key(first[i])), append(b, key(second[i]))
	}
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Errorf("re-expansion differs:\n%v\n%v", a, b)
	}
}

// Events expanded at the same time share delivery messages, one hub per
// message: a batch has no Nats-Msg-Id, a lone fan-out keeps its own; every
// job is published exactly once, and the metrics count messages and jobs.
func TestConcurrentEventsShareMessages(t *testing.T) {
	e := start(t, expander.Config{})
	hubs := map[string][]string{"hub-batch-a": {"u1", "u2", "u3"}, "hub-batch-b": {"u1"}}
	for hub, urls := range hubs {
		e.cfgs.set(hubConfig(hub, 1, true, urls...))
	}
	// Publish while the expander is stopped, so that its workers take the
	// events all at once.
	e.stop()
	const perHub = 150
	for i := range perHub {
		for hub := range hubs {
			publishEvent(t, e.js, domainEvent(t, fmt.Sprintf("evt_%s_%d", hub, i), hub, "USER.UPDATED",
				map[string]any{"user": map[string]any{"id": "u"}}))
		}
	}
	e.run(t)
	e.idle(t)

	msgs := streamMsgs(t, e.js, eventbus.StreamDeliveries)
	seen := map[string]int{}
	batches := 0
	for _, m := range msgs {
		js, err := eventbus.DecodeJobs(nats.Header(m.Header), m.Data)
		if err != nil {
			t.Fatal(err)
		}
		events := map[string]bool{}
		for _, j := range js {
			seen[j.GetDeliveryId()]++
			events[j.GetWebhookEventId()] = true
			if hub, _, ok := eventbus.HubOfDeliverySubject(m.Subject); !ok || hub != j.GetHubId() {
				t.Errorf("job of %s in a message on %s", j.GetHubId(), m.Subject)
			}
		}
		id := nats.Header(m.Header).Get(jetstream.MsgIDHeader)
		if len(events) > 1 {
			batches++
			if id != "" {
				t.Errorf("batch of %d events has Nats-Msg-Id %q", len(events), id)
			}
		} else if !strings.HasPrefix(id, "fan.") {
			t.Errorf("lone fan-out has Nats-Msg-Id %q", id)
		}
	}
	wantJobs := 0
	for _, urls := range hubs {
		wantJobs += perHub * len(urls)
	}
	if len(seen) != wantJobs {
		t.Fatalf("%d distinct jobs, want %d", len(seen), wantJobs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %s published %d times", id, n)
		}
	}
	if batches == 0 || len(msgs) >= 2*perHub {
		t.Errorf("%d messages (%d batches) for %d events: nothing was batched", len(msgs), batches, 2*perHub)
	}
	if n := metric(t, e.reg, "hubhooks_expander_messages_published_total"); int(n) != len(msgs) {
		t.Errorf("messages metric %v, stored %d", n, len(msgs))
	}
	if n := metric(t, e.reg, "hubhooks_expander_jobs_published_total"); int(n) != wantJobs {
		t.Errorf("jobs metric %v, want %d", n, wantJobs)
	}
}

func TestNewValidates(t *testing.T) {
	_, _, js := natstest.Start(t)
	cfgs := newConfigs()
	rules := cascade.Default()
	if _, err := expander.New(expander.Config{}, nil, nil, nil, nil); !errors.Is(err, expander.ErrNilDependency) {
		t.Errorf("nil deps: %v", err)
	}
	err := expander.Config{Concurrency: -1, AckWait: time.Second, PublishTimeout: 2 * time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "Concurrency") || !strings.Contains(err.Error(), "AckWait") {
		t.Errorf("Validate: %v, want both problems", err)
	}
	err = expander.Config{AckWait: eventbus.DeliveriesDuplicateWindow/2 + time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "duplicate window") {
		t.Errorf("Validate: %v, want AckWait beyond half the deliveries' duplicate window refused", err)
	}
	seen := newSeen(t)
	if _, err := expander.New(expander.Config{MaxEventBytes: -5}, js, cfgs, seen, rules); err == nil {
		t.Error("New accepted a negative MaxEventBytes")
	}
	if _, err := expander.NewSeen(nil, "p:", time.Second); !errors.Is(err, expander.ErrNilDependency) || !strings.Contains(err.Error(), "at least") {
		t.Errorf("NewSeen(nil, 1s) = %v, want both problems", err)
	}
	svc, err := expander.New(expander.Config{}, js, cfgs, seen, rules)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Ready(context.Background()); !errors.Is(err, expander.ErrNotReady) {
		t.Errorf("Ready before Run: %v", err)
	}
}

func TestPublishFailureIsRetried(t *testing.T) {
	e := start(t, expander.Config{RetryDelay: 100 * time.Millisecond, PublishTimeout: 2 * time.Second})
	hub := "hub-retry"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	ctx := context.Background()
	// The deliveries stream is gone (an operator mistake, a cluster outage).
	if err := e.js.DeleteStream(ctx, eventbus.StreamDeliveries); err != nil {
		t.Fatal(err)
	}
	publishEvent(t, e.js, domainEvent(t, "evt_retry", hub, "APP.DELETED", nil))
	poll.Until(t, 10*time.Second, "a retry", func() bool {
		return metric(t, e.reg, "hubhooks_expander_events_retried_total") >= 1
	})
	if n := metric(t, e.reg, "hubhooks_expander_events_expanded_total"); n != 0 {
		t.Fatalf("expanded %v events without a deliveries stream", n)
	}
	if err := eventbus.Ensure(ctx, e.js, eventbus.DeliveriesStreamConfig(eventbus.Options{})); err != nil {
		t.Fatal(err)
	}
	e.idle(t)
	checkJobs(t, jobs(t, e.js, hub), hub, "evt_retry", "APP.DELETED", []string{"APP.DELETED"}, []string{"u1"}, 1)
	// Expanded again: alone, with its id, and marked for the deliverer to
	// check the log (the first try may have been stored in a batch).
	for _, m := range streamMsgs(t, e.js, eventbus.StreamDeliveries) {
		h := nats.Header(m.Header)
		if h.Get(eventbus.HeaderRecheck) != eventbus.RecheckInFlight || !strings.HasPrefix(h.Get(jetstream.MsgIDHeader), "fan.") {
			t.Errorf("re-expanded fan-out headers %v", h)
		}
	}
	if n := metric(t, e.reg, "hubhooks_expander_events_dead_lettered_total"); n != 0 {
		t.Errorf("a publish failure was dead-lettered")
	}
}

func TestRunFinishesInFlightEventsOnShutdown(t *testing.T) {
	e := start(t, expander.Config{})
	hub := "hub-slow"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	e.cfgs.setGate(func(h string) {
		if h == hub {
			entered <- struct{}{}
			<-release
		}
	})
	publishEvent(t, e.js, domainEvent(t, "evt_slow", hub, "USER.UPDATED", nil))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("event never reached the handler")
	}
	stopped := make(chan struct{})
	go func() {
		e.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("Run returned with an event in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after the in-flight event finished")
	}
	checkJobs(t, jobs(t, e.js, hub), hub, "evt_slow", "USER.UPDATED", []string{"USER.UPDATED"}, []string{"u1"}, 1)
	e.idle(t) // acknowledged before Run returned
}

func TestURLFiltersAndDisabledURLs(t *testing.T) {
	e := start(t, expander.Config{})
	cfg := hubConfig("hub-filters", 4, true, "u-all", "u-teams", "u-off")
	cfg.CallbackUrls[1].EventTypes = []string{"TEAM.CREATED", "TEAM.DELETED"}
	cfg.CallbackUrls[2].Disabled = true
	e.cfgs.set(cfg)
	// TEAM.CREATED emits APP.CREATED, APP_KEY.CREATED, TEAM.CREATED.
	publishEvent(t, e.js, domainEvent(t, "evt_team", "hub-filters", "TEAM.CREATED", nil))
	// A hub all of whose URLs filter the event's types out gets nothing.
	only := hubConfig("hub-only-users", 4, true, "u-users")
	only.CallbackUrls[0].EventTypes = []string{"USER.CREATED"}
	e.cfgs.set(only)
	publishEvent(t, e.js, domainEvent(t, "evt_app", "hub-only-users", "APP.UPDATED", nil))
	e.idle(t)

	got := map[string][]string{} // webhook event type -> URL ids
	ids := map[string]string{}   // webhook event type -> webhook event id
	for _, j := range jobs(t, e.js, "hub-filters") {
		got[j.GetEventType()] = append(got[j.GetEventType()], j.GetUrlId())
		ids[j.GetEventType()] = j.GetWebhookEventId()
	}
	want := map[string][]string{"APP.CREATED": {"u-all"}, "APP_KEY.CREATED": {"u-all"}, "TEAM.CREATED": {"u-all", "u-teams"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("jobs by type = %v, want %v", got, want)
	}
	// Ids keep the position in the cascade whatever the filters drop.
	if ids["TEAM.CREATED"] != webhook.EventID("hub-filters", "evt_team", 2) {
		t.Errorf("TEAM.CREATED webhook event id %s, want position 2's", ids["TEAM.CREATED"])
	}
	if n := len(jobs(t, e.js, "hub-only-users")); n != 0 {
		t.Errorf("%d jobs for events no URL takes, want 0", n)
	}
	if n := metric(t, e.reg, "hubhooks_expander_events_skipped_total", "reason", "filtered"); n != 1 {
		t.Errorf("skipped filtered = %v, want 1", n)
	}
}

func TestFloodOfOneHubDoesNotDelayAnother(t *testing.T) {
	e := start(t, expander.Config{Concurrency: 2})
	// 300 flood events of 10 ms each take 1.5 s on two workers.
	const n = 300
	done := quietAfterFlood(t, e, n, 10*time.Millisecond)
	// In stream order the quiet event would come after all 300; taken in
	// turns it comes after a handful (those in flight and one turn).
	if done > n/4 {
		t.Errorf("the quiet hub's event was expanded after %d of the flood's %d events, want it within the first %d", done, n, n/4)
	}
	poll.Until(t, 20*time.Second, "the whole flood", func() bool { return len(jobs(t, e.js, floodHub)) == n })
	e.idle(t)
}

func TestQueuedEventsAreHandedBackOnShutdown(t *testing.T) {
	e := start(t, expander.Config{Concurrency: 1})
	hub := "hub-queued"
	e.cfgs.set(hubConfig(hub, 1, true, "u1"))
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	e.cfgs.setGate(func(h string) {
		entered <- struct{}{}
		<-release
	})
	for i := range 5 {
		publishEvent(t, e.js, domainEvent(t, fmt.Sprintf("evt_q_%d", i), hub, "USER.UPDATED", nil))
	}
	<-entered // one in flight, four queued in the read-ahead
	poll.Until(t, 5*time.Second, "four events read ahead", func() bool {
		return gauge(t, e.reg, "hubhooks_expander_read_ahead_events") == 4
	})
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	time.Sleep(100 * time.Millisecond)
	close(release)
	<-stopped
	// A new replica gets the four at once, not after the 30 s ack wait.
	e.cfgs.setGate(nil)
	e.run(t)
	poll.Until(t, 10*time.Second, "every event expanded", func() bool { return len(jobs(t, e.js, hub)) == 5 })
	e.idle(t)
}

func TestFloodGoesToOverflow(t *testing.T) {
	e := start(t, expander.Config{Concurrency: 4})
	flood, quiet := "hub-flood", "hub-quiet"
	e.cfgs.set(hubConfig(flood, 1, true, "u1", "u2"))
	e.cfgs.set(hubConfig(quiet, 1, true, "u1"))
	// With the expander stopped, the flood waits in the stream; started,
	// the expander reads it ahead, a backlog of its hub.
	e.stop()
	const n = 300
	for i := range n {
		publishEvent(t, e.js, domainEvent(t, fmt.Sprintf("evt_flood_%d", i), flood, "USER.UPDATED", nil))
		if i%100 == 0 {
			publishEvent(t, e.js, domainEvent(t, fmt.Sprintf("evt_quiet_%d", i), quiet, "USER.UPDATED", nil))
		}
	}
	e.run(t)
	e.idle(t)
	events := map[string]map[bool]int{flood: {}, quiet: {}} // hub -> on overflow? -> webhook events
	for _, m := range streamMsgs(t, e.js, eventbus.StreamDeliveries) {
		hub, overflow, ok := eventbus.HubOfDeliverySubject(m.Subject)
		if !ok {
			t.Fatalf("message on %s", m.Subject)
		}
		js, err := eventbus.DecodeJobs(nats.Header(m.Header), m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range js {
			if j.GetHubId() != hub {
				t.Fatalf("job of %s on %s", j.GetHubId(), m.Subject)
			}
			if j.GetUrlId() == "u1" {
				events[hub][overflow]++
			}
		}
	}
	if events[quiet][true] != 0 || events[quiet][false] != 3 {
		t.Errorf("quiet hub: %d events live, %d in overflow; want all 3 live", events[quiet][false], events[quiet][true])
	}
	// An event with 64 or more of its hub's events read ahead behind it
	// goes to overflow: most of the flood (how many depends on how far
	// the reading got ahead of the four workers), never its last 64.
	if got := events[flood][true]; got < n/3 || got > n-64 {
		t.Errorf("flood: %d events in overflow, %d live; want most in overflow, the last 64 live", got, events[flood][false])
	}
	if events[flood][true]+events[flood][false] != n {
		t.Errorf("flood: %d events published, want %d", events[flood][true]+events[flood][false], n)
	}
	if got := metric(t, e.reg, "hubhooks_expander_events_overflowed_total"); int(got) != events[flood][true] {
		t.Errorf("overflowed metric %v, want %d", got, events[flood][true])
	}
}

func TestFloodLargerThanTheReadAheadDoesNotDelayAnother(t *testing.T) {
	// A read-ahead of 64 events: a flood of 600 fills it ten times over.
	e := start(t, expander.Config{Concurrency: 2, MaxAckPending: 64, BatchSize: 16, OverflowAfter: 8})
	// 600 flood events of 5 ms each take 1.5 s on two workers.
	const n = 600
	done := quietAfterFlood(t, e, n, 5*time.Millisecond)
	// Behind a full read-ahead, the quiet event would wait until all but 64
	// of the flood were expanded; past half, the flood is moved out of its
	// way and it is taken at once.
	if done > n/4 {
		t.Errorf("the quiet hub's event was expanded after %d of the flood's %d events, want it within the first %d", done, n, n/4)
	}
	poll.Until(t, 30*time.Second, "the whole flood", func() bool { return len(jobs(t, e.js, floodHub)) >= n })
	e.idle(t)

	// Every flood event expanded exactly once, as the original: created
	// when the original was stored.
	stored := map[string]time.Time{}
	for _, m := range streamMsgs(t, e.js, eventbus.StreamEvents) {
		var ev eventsv1.DomainEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		stored[ev.GetId()] = m.Time
	}
	seen := map[string]int{}
	for _, j := range jobs(t, e.js, floodHub) {
		seen[j.GetDomainEventId()]++
		if at := j.GetCreatedAt().AsTime(); !at.Equal(stored[j.GetDomainEventId()]) {
			t.Errorf("%s: created at %v, want when its original was stored, %v", j.GetDomainEventId(), at, stored[j.GetDomainEventId()])
		}
	}
	for i := range n {
		if id := fmt.Sprintf("evt_flood_%d", i); seen[id] != 1 {
			t.Errorf("%s expanded %d times, want once", id, seen[id])
		}
	}
	moved := metric(t, e.reg, "hubhooks_expander_events_moved_total")
	if moved < n/2 {
		t.Errorf("%v flood events moved to overflow, want most of the %d", moved, n)
	}
	if got := metric(t, e.reg, "hubhooks_expander_overflow_events_taken_total"); got != moved {
		t.Errorf("%v events read back from overflow, want the %v moved", got, moved)
	}
	// Moved in batches: fewer messages stored than events moved.
	info, err := e.js.Stream(context.Background(), eventbus.StreamEventsOverflow)
	if err != nil {
		t.Fatal(err)
	}
	if copies := info.CachedInfo().State.LastSeq; float64(copies) >= moved {
		t.Errorf("%d copies stored for %v moved events, want batches", copies, moved)
	} else {
		t.Logf("%v events moved in %d copies", moved, copies)
	}
	if got := metric(t, e.reg, "hubhooks_expander_events_received_total"); got != n+1 {
		t.Errorf("received %v events, want %d", got, n+1)
	}
	if got := metric(t, e.reg, "hubhooks_expander_events_skipped_total", "reason", "seen_before"); got != 0 {
		t.Errorf("%v events taken for repeats", got)
	}
	if msgs := streamMsgs(t, e.js, eventbus.StreamEventsOverflow); len(msgs) != 0 {
		t.Errorf("%d events left in the overflow", len(msgs))
	}
}

// floodHub and quietHub are the hubs of quietAfterFlood.
const floodHub, quietHub = "hub-flood", "hub-quiet"

// quietAfterFlood configures floodHub and quietHub (one URL each), makes
// each of floodHub's events take perEvent to expand, publishes n of them
// and then one of quietHub, in stream order behind them, and returns how
// many of the flood's events were expanded when the quiet one was.
func quietAfterFlood(t *testing.T, e *env, n int, perEvent time.Duration) int {
	t.Helper()
	e.cfgs.set(hubConfig(floodHub, 1, true, "u1"))
	e.cfgs.set(hubConfig(quietHub, 1, true, "u1"))
	e.cfgs.setGate(func(h string) {
		if h == floodHub {
			time.Sleep(perEvent)
		}
	})
	publishFlood(t, e.js, floodHub, n)
	publishEvent(t, e.js, domainEvent(t, "evt_quiet", quietHub, "USER.UPDATED", nil))
	poll.Until(t, 10*time.Second, "the quiet hub's job", func() bool { return len(jobs(t, e.js, quietHub)) == 1 })
	return len(jobs(t, e.js, floodHub))
}

// publishFlood publishes n events of hub at once ("evt_flood_<i>") and
// returns once JetStream stored them all.
func publishFlood(t *testing.T, js jetstream.JetStream, hub string, n int) {
	t.Helper()
	for i := range n {
		ev := domainEvent(t, fmt.Sprintf("evt_flood_%d", i), hub, "USER.UPDATED", nil)
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg("USER.UPDATED")
		m.Data = b
		m.Header.Set(jetstream.MsgIDHeader, ev.GetId())
		if _, err := js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("flood not acknowledged")
	}
}
