package publisher_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/natstest"
	"github.com/hubhooks/hubhooks/pkg/publisher"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
)

// constructors lists the typed constructor of every domain subject of the
// cascade table (docs/cascade.md), by hand.
var constructors = []struct {
	subject string
	new     publisher.Constructor
}{
	{"API.CREATED", publisher.APICreated},
	{"API.UPDATED", publisher.APIUpdated},
	{"API.DELETED", publisher.APIDeleted},
	{"SUBSCRIPTION.CREATED", publisher.SubscriptionCreated},
	{"SUBSCRIPTION.UPDATED", publisher.SubscriptionUpdated},
	{"SUBSCRIPTION.DELETED", publisher.SubscriptionDeleted},
	{"BILLINGPLAN.CREATED", publisher.BillingPlanCreated},
	{"BILLINGPLAN.UPDATED", publisher.BillingPlanUpdated},
	{"BILLINGPLAN.DELETED", publisher.BillingPlanDeleted},
	{"API_VERSION.CREATED", publisher.APIVersionCreated},
	{"API_VERSION.UPDATED", publisher.APIVersionUpdated},
	{"API_VERSION.DELETED", publisher.APIVersionDeleted},
	{"USER.CREATED", publisher.UserCreated},
	{"USER.UPDATED", publisher.UserUpdated},
	{"USER.DELETED", publisher.UserDeleted},
	{"TEAM.CREATED", publisher.TeamCreated},
	{"TEAM.UPDATED", publisher.TeamUpdated},
	{"TEAM.DELETED", publisher.TeamDeleted},
	{"APP.CREATED", publisher.AppCreated},
	{"APP.UPDATED", publisher.AppUpdated},
	{"APP.DELETED", publisher.AppDeleted},
	{"APP_KEY.CREATED", publisher.AppKeyCreated},
	{"APP_KEY.UPDATED", publisher.AppKeyUpdated},
	{"APP_KEY.DELETED", publisher.AppKeyDeleted},
	{"ORGANIZATION.CREATED", publisher.OrganizationCreated},
	{"ORGANIZATION.UPDATED", publisher.OrganizationUpdated},
	{"ORGANIZATION.DELETED", publisher.OrganizationDeleted},
	{"API_ENDPOINT.CREATED", publisher.APIEndpointCreated},
	{"API_ENDPOINT.UPDATED", publisher.APIEndpointUpdated},
	{"API_ENDPOINT.DELETED", publisher.APIEndpointDeleted},
	{"BASE_URL.CREATED", publisher.BaseURLCreated},
	{"BASE_URL.UPDATED", publisher.BaseURLUpdated},
	{"BASE_URL.DELETED", publisher.BaseURLDeleted},
	{"DOCUMENTATION.CREATED", publisher.DocumentationCreated},
	{"DOCUMENTATION.UPDATED", publisher.DocumentationUpdated},
	{"DOCUMENTATION.DELETED", publisher.DocumentationDeleted},
	{"WORKFLOW.CREATED", publisher.WorkflowCreated},
	{"WORKFLOW.UPDATED", publisher.WorkflowUpdated},
	{"ANNOUNCEMENT.CREATED", publisher.AnnouncementCreated},
	{"DISCUSSION.CREATED", publisher.DiscussionCreated},
	{"MESSAGE.CREATED", publisher.MessageCreated},
	{"DISCUSSION_COMMENT.CREATED", publisher.DiscussionCommentCreated},
	{"JOBS_REQUEST.CREATED", publisher.JobsRequestCreated},
	{"JOBS_REQUEST.UPDATED", publisher.JobsRequestUpdated},
}

func TestEveryRuleHasAConstructor(t *testing.T) {
	rules := cascade.Default().All()
	if len(constructors) != 44 || len(rules) != 44 {
		t.Fatalf("%d constructors, %d rules; want 44", len(constructors), len(rules))
	}
	for i, c := range constructors {
		if rules[i].Subject != c.subject {
			t.Errorf("rule %d is %s, want %s", i+1, rules[i].Subject, c.subject)
		}
		before := time.Now()
		ev, err := c.new("hub-1", map[string]any{"x": 1})
		if err != nil {
			t.Fatalf("%s: %v", c.subject, err)
		}
		if ev.GetType() != c.subject || ev.GetHubId() != "hub-1" || !strings.HasPrefix(ev.GetId(), "evt_") ||
			ev.GetOccurredAt().AsTime().Before(before.Add(-time.Second)) || ev.GetData().GetFields()["x"].GetNumberValue() != 1 {
			t.Errorf("%s: bad event %v", c.subject, ev)
		}
		dyn, ok := publisher.ConstructorFor(c.subject)
		if !ok {
			t.Errorf("ConstructorFor(%s) missing", c.subject)
		} else if ev2, _ := dyn("hub-1", nil); ev2.GetType() != c.subject {
			t.Errorf("ConstructorFor(%s) built %s", c.subject, ev2.GetType())
		}
	}
	if _, ok := publisher.ConstructorFor("API.FROBNICATED"); ok {
		t.Error("ConstructorFor(API.FROBNICATED) found")
	}
}

func TestEventOptions(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ev, err := publisher.BillingPlanCreated("hub_2", map[string]any{"billingPlan": map[string]any{"id": "p"}},
		publisher.WithID("evt-fixed"), publisher.WithActor("user_1"), publisher.WithOccurredAt(at))
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetId() != "evt-fixed" || ev.GetActor() != "user_1" || !ev.GetOccurredAt().AsTime().Equal(at) || ev.GetType() != "BILLINGPLAN.CREATED" {
		t.Errorf("event: %v", ev)
	}
	a, _ := publisher.TeamCreated("h", nil)
	b, _ := publisher.TeamCreated("h", nil)
	if a.GetId() == b.GetId() {
		t.Error("default ids are not unique")
	}
	tests := []struct {
		name  string
		hubID string
		data  map[string]any
		opts  []publisher.EventOption
	}{
		{name: "empty hub", hubID: ""},
		{name: "bad hub", hubID: "a.b"},
		{name: "empty id", hubID: "h", opts: []publisher.EventOption{publisher.WithID("")}},
		{name: "long id", hubID: "h", opts: []publisher.EventOption{publisher.WithID(strings.Repeat("x", 257))}},
		{name: "zero time", hubID: "h", opts: []publisher.EventOption{publisher.WithOccurredAt(time.Time{})}},
		{name: "long actor", hubID: "h", opts: []publisher.EventOption{publisher.WithActor(strings.Repeat("a", publisher.MaxActorLen+1))}},
		{name: "nil option", hubID: "h", opts: []publisher.EventOption{nil}},
		{name: "bad data", hubID: "h", data: map[string]any{"c": make(chan int)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := publisher.TeamCreated(tt.hubID, tt.data, tt.opts...); !errors.Is(err, publisher.ErrInvalidEvent) {
				t.Fatalf("got %v, want ErrInvalidEvent", err)
			}
		})
	}
	if _, err := publisher.NewEvent("API.FROBNICATED", "h", nil); !errors.Is(err, publisher.ErrInvalidEvent) {
		t.Errorf("NewEvent unknown subject: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	_, _, js := natstest.Start(t)
	if _, err := publisher.New(nil); !errors.Is(err, publisher.ErrNilJetStream) {
		t.Errorf("nil js: %v", err)
	}
	bad := [][]publisher.Option{
		{publisher.WithRetry(0, time.Second)},
		{publisher.WithRetry(3, -time.Second)},
		{publisher.WithTimeout(0)},
		{publisher.WithRules(nil)},
		{nil},
	}
	for i, opts := range bad {
		if _, err := publisher.New(js, opts...); !errors.Is(err, publisher.ErrInvalidOption) {
			t.Errorf("case %d: got %v, want ErrInvalidOption", i, err)
		}
	}
	if _, err := publisher.New(js, publisher.WithJSON(), publisher.WithRetry(1, 0), publisher.WithTimeout(time.Second), publisher.WithRules(cascade.Default())); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

func ensureEvents(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := eventbus.Ensure(ctx, js, eventbus.EventsStreamConfig(cascade.Default().StreamSubjects(), eventbus.Options{})); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	s, err := js.Stream(ctx, eventbus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPublish(t *testing.T) {
	_, _, js := natstest.Start(t)
	stream := ensureEvents(t, js)
	ctx := context.Background()
	tests := []struct {
		name        string
		opts        []publisher.Option
		contentType string
		decode      func([]byte, proto.Message) error
	}{
		{name: "protobuf", contentType: "application/protobuf", decode: proto.Unmarshal},
		{name: "json", opts: []publisher.Option{publisher.WithJSON()}, contentType: "application/json",
			decode: func(b []byte, m proto.Message) error { return protojson.Unmarshal(b, m) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := publisher.New(js, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := publisher.APICreated("hub-1", map[string]any{"api": map[string]any{"id": "a"}, "baseUrls": []any{"https://x"}}, publisher.WithActor("u"))
			if err != nil {
				t.Fatal(err)
			}
			ack, err := p.Publish(ctx, ev)
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if ack.Stream != eventbus.StreamEvents || ack.Duplicate {
				t.Fatalf("ack: %+v", ack)
			}
			raw, err := stream.GetMsg(ctx, ack.Sequence)
			if err != nil {
				t.Fatal(err)
			}
			if raw.Subject != "API.CREATED" || raw.Header.Get("Content-Type") != tt.contentType || raw.Header.Get(jetstream.MsgIDHeader) != ev.GetId() {
				t.Errorf("stored message: subject %s headers %v", raw.Subject, raw.Header)
			}
			got := &eventsv1.DomainEvent{}
			if err := tt.decode(raw.Data, got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !proto.Equal(got, ev) {
				t.Errorf("stored %v, want %v", got, ev)
			}
			again, err := p.Publish(ctx, ev)
			if err != nil || !again.Duplicate || again.Sequence != ack.Sequence {
				t.Errorf("second publish: %+v, %v; want a duplicate of seq %d", again, err, ack.Sequence)
			}
		})
	}
}

func TestPublishRejectsInvalidWithoutRetry(t *testing.T) {
	_, _, js := natstest.Start(t)
	stream := ensureEvents(t, js)
	p, err := publisher.New(js, publisher.WithRetry(50, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	valid := func() *eventsv1.DomainEvent {
		return &eventsv1.DomainEvent{Id: "e1", HubId: "hub", Type: "TEAM.CREATED"}
	}
	tests := []struct {
		name string
		mut  func(*eventsv1.DomainEvent) *eventsv1.DomainEvent
	}{
		{"nil", func(*eventsv1.DomainEvent) *eventsv1.DomainEvent { return nil }},
		{"missing id", func(e *eventsv1.DomainEvent) *eventsv1.DomainEvent { e.Id = ""; return e }},
		{"long id", func(e *eventsv1.DomainEvent) *eventsv1.DomainEvent { e.Id = strings.Repeat("i", 257); return e }},
		{"missing hub", func(e *eventsv1.DomainEvent) *eventsv1.DomainEvent { e.HubId = ""; return e }},
		{"bad hub", func(e *eventsv1.DomainEvent) *eventsv1.DomainEvent { e.HubId = "h.*"; return e }},
		{"missing type", func(e *eventsv1.DomainEvent) *eventsv1.DomainEvent { e.Type = ""; return e }},
		{"unknown type", func(e *eventsv1.DomainEvent) *eventsv1.DomainEvent { e.Type = "API.FROBNICATED"; return e }},
		{"long actor", func(e *eventsv1.DomainEvent) *eventsv1.DomainEvent {
			e.Actor = strings.Repeat("a", publisher.MaxActorLen+1)
			return e
		}},
		{"oversize", func(e *eventsv1.DomainEvent) *eventsv1.DomainEvent {
			e.Data, _ = structpb.NewStruct(map[string]any{"blob": strings.Repeat("a", publisher.MaxEventBytes)})
			return e
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := p.Publish(context.Background(), tt.mut(valid()))
			if !errors.Is(err, publisher.ErrInvalidEvent) {
				t.Fatalf("got %v, want ErrInvalidEvent", err)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("took %v: validation errors must not be retried", d)
			}
		})
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d messages stored, want 0", info.State.Msgs)
	}
}

func TestPublishRetriesUntilStreamExists(t *testing.T) {
	_, _, js := natstest.Start(t)
	ev, err := publisher.UserCreated("hub", map[string]any{"user": map[string]any{"id": "u"}})
	if err != nil {
		t.Fatal(err)
	}
	// No stream and few attempts: a transient error, given up after the attempts.
	few, err := publisher.New(js, publisher.WithRetry(2, 10*time.Millisecond), publisher.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := few.Publish(context.Background(), ev); err == nil || !publisher.Transient(err) || errors.Is(err, publisher.ErrInvalidEvent) {
		t.Fatalf("publish without stream: %v, want a transient error", err)
	}
	// The stream appears while Publish retries (as after a leader election).
	many, err := publisher.New(js, publisher.WithRetry(100, 20*time.Millisecond), publisher.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := many.Publish(context.Background(), ev)
		done <- err
	}()
	time.Sleep(150 * time.Millisecond) // let a few attempts fail first
	ensureEvents(t, js)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish did not return")
	}
	// A cancelled context stops retrying.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := many.Publish(ctx, ev); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled publish: %v", err)
	}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{nats.ErrTimeout, true},
		{context.DeadlineExceeded, true},
		{jetstream.ErrNoStreamResponse, true},
		{nats.ErrNoResponders, true},
		{nats.ErrConnectionReconnecting, true},
		{&jetstream.APIError{Code: 503}, true},
		{&jetstream.APIError{Code: 400}, false},
		{publisher.ErrInvalidEvent, false},
		{errors.New("boom"), false},
	}
	for _, tt := range tests {
		if got := publisher.Transient(tt.err); got != tt.want {
			t.Errorf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
