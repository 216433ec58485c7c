package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// violations collects the permission errors the server sends a connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

// refused reports whether the server refused subject (a publish or a
// subscription) with a permissions violation.
func (v *violations) refused(subject string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, `"`+subject+`"`) {
			return true
		}
	}
	return false
}

// TestEmbeddedNATSRefusesStrangers: hubd's embedded NATS takes no client
// without credentials, and its publisher may publish domain events and
// read their acks, nothing else: no internal subject read or written, no
// stream or consumer managed or read, no forged job or record accepted.
func TestEmbeddedNATSRefusesStrangers(t *testing.T) {
	h := startHub(t)
	ctx := ctxT(t)

	// No credentials, a wrong password, the internal user over TCP.
	for _, url := range []string{h.hub.NATSURL, strings.Replace(h.hub.PublisherURL, "publisher:", "publisher:x", 1),
		strings.Replace(h.hub.NATSURL, "nats://", "nats://hubd:guess@", 1)} {
		if nc, err := nats.Connect(url, nats.NoReconnect()); err == nil {
			nc.Close()
			t.Errorf("connected to the embedded NATS as %q", strings.SplitN(strings.TrimPrefix(url, "nats://"), "@", 2)[0])
		} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
			t.Errorf("connect without valid credentials: %v, want an authorization violation", err)
		}
	}

	// The hub: a receiver, triggers on.
	const hub = "victim"
	good, evil := newReceiver(t), newReceiver(t)
	cfg, err := h.config.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: good.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.config.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	urlID := cfg.GetCallbackUrls()[0].GetId()

	var v violations
	nc, err := nats.Connect(h.hub.PublisherURL, nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatalf("publisher connect: %v", err)
	}
	defer nc.Close()

	// Reading: every internal subject, everything, others' inboxes.
	var spied [][]byte
	var spyMu sync.Mutex
	spy := func(m *nats.Msg) {
		spyMu.Lock()
		spied = append(spied, m.Data)
		spyMu.Unlock()
	}
	denySub := []string{">", "hubhooks.>", eventbus.DeliverySubject(hub), eventbus.AttemptSubject("*"), "hubhooks.dlq.>",
		"$JS.>", "$JS.API.>", "_HUBHOOKS_INBOX.>", "_HUBHOOKS_INBOX.hubd.>", "API.CREATED"}
	for _, s := range denySub {
		if _, err := nc.Subscribe(s, spy); err != nil {
			t.Fatalf("subscribe %s: %v", s, err)
		}
	}
	// Its own inbox is allowed; nothing internal may arrive there.
	if _, err := nc.Subscribe("_INBOX.>", spy); err != nil {
		t.Fatal(err)
	}

	// Writing: a forged job with the hub's real url_id and the attacker's
	// URL, a forged "succeeded" record, and the JetStream API calls that
	// would read, replay or erase the streams.
	forged := &deliveryv1.DeliveryJob{
		DeliveryId: webhook.DeliveryID("msg_forged", urlID), HubId: hub, WebhookEventId: "msg_forged",
		EventType: "API.CREATED", UrlId: urlID, Url: evil.URL + "/steal", Body: []byte(`{"forged":true}`),
		CreatedAt: timestamppb.Now(), Attempt: 1,
	}
	jobMsg, err := eventbus.NewJobMsg(forged)
	if err != nil {
		t.Fatal(err)
	}
	recMsg, err := eventbus.NewAttemptMsg(&deliveryv1.AttemptRecorded{Job: forged, Attempt: 1, Status: hubhooksv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED, StartedAt: timestamppb.Now()})
	if err != nil {
		t.Fatal(err)
	}
	denyPub := []*nats.Msg{jobMsg, recMsg, {Subject: eventbus.SubjectDeadLetterEvents, Data: []byte("x")}}
	for _, api := range []string{
		"$JS.API.STREAM.DELETE." + eventbus.StreamEvents,
		"$JS.API.STREAM.PURGE." + eventbus.StreamEvents,
		"$JS.API.STREAM.UPDATE." + eventbus.StreamEvents,
		"$JS.API.STREAM.LIST",
		"$JS.API.STREAM.INFO." + eventbus.StreamDeliveries,
		"$JS.API.STREAM.MSG.GET." + eventbus.StreamDeliveries,
		"$JS.API.DIRECT.GET." + eventbus.StreamDeliveries,
		"$JS.API.CONSUMER.DELETE." + eventbus.StreamEvents + "." + eventbus.ConsumerExpander,
		"$JS.API.CONSUMER.CREATE." + eventbus.StreamDeliveries + ".spy",
		"$JS.API.CONSUMER.MSG.NEXT." + eventbus.StreamDeliveries + "." + eventbus.ConsumerDeliverer,
		"$JS.API.INFO",
	} {
		denyPub = append(denyPub, &nats.Msg{Subject: api, Data: []byte("{}")})
	}
	for _, m := range denyPub {
		m.Reply = nc.NewRespInbox()
		if err := nc.PublishMsg(m); err != nil {
			t.Fatalf("publish %s: %v", m.Subject, err)
		}
	}
	// The jetstream client says so too: deleting a stream is an error.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := js.DeleteStream(dctx, eventbus.StreamEvents); err == nil {
		t.Error("the publisher deleted the events stream")
	}
	cancel()

	for _, s := range denySub {
		poll.Until(t, 10*time.Second, "subscription to "+s+" refused", func() bool { return v.refused(s) })
	}
	for _, m := range denyPub {
		poll.Until(t, 10*time.Second, "publish to "+m.Subject+" refused", func() bool { return v.refused(m.Subject) })
	}

	// What the publisher may do still works: a domain event, acked by
	// JetStream, delivered to the hub's own URL; the streams and the
	// expander's consumer are all there.
	marker := "marker-" + strings.Repeat("z", 16)
	ev := domainEvent(t, hub, "evt-allowed", "USER.UPDATED", map[string]any{"user": map[string]any{"id": marker}})
	h.publish(t, ev, true)
	poll.Until(t, 15*time.Second, "the publisher's event delivered", func() bool { return len(good.byDomainEvent("evt-allowed")) == 1 })

	if got := evil.all(); len(got) != 0 {
		t.Errorf("the attacker's URL got %d requests, first with headers %v", len(got), got[0].Header)
	}
	spyMu.Lock()
	for _, d := range spied {
		if bytes.Contains(d, []byte(marker)) || bytes.Contains(d, []byte("forged")) {
			t.Errorf("the publisher read internal traffic: %.200s", d)
		}
	}
	spyMu.Unlock()
	list, err := h.logs.ListEventLogs(ctx, &hubhooksv1.ListEventLogsRequest{HubId: hub, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list.GetEventLogs() {
		if l.GetId() == forged.GetDeliveryId() {
			t.Errorf("the forged record is in the event log: %v", l)
		}
	}
}
