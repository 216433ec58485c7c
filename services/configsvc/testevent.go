package configsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// testEvent is a test event ready to send: the signed sample event for a
// hub's URL under the hub's current configuration.
type testEvent struct {
	evt    *webhook.Event
	body   []byte
	target *hubhooksv1.CallbackUrl
	cfg    *hubhooksv1.HubConfig
	now    time.Time
}

// prepareTestEvent validates req and builds its event: what SendTestEvent
// sends and PreviewTestEvent shows. Its domain event is a test one of its
// own type.
func (s *Service) prepareTestEvent(ctx context.Context, req *hubhooksv1.SendTestEventRequest) (*testEvent, error) {
	return s.prepareTestEventOf(ctx, req, webhook.DomainEventRef{
		ID: webhook.RandomID("evt_test_"), Type: strings.TrimSpace(req.GetEventType()), Actor: testActor,
	})
}

// testActor is the actor of every test domain event.
const testActor = "hubhooks test event"

// prepareTestEventOf is prepareTestEvent for a webhook event that domain,
// a test domain event, triggers (its occurred_at is set to now).
func (s *Service) prepareTestEventOf(ctx context.Context, req *hubhooksv1.SendTestEventRequest, domain webhook.DomainEventRef) (*testEvent, error) {
	hub, typ, rawURL := req.GetHubId(), strings.TrimSpace(req.GetEventType()), strings.TrimSpace(req.GetUrl())
	if err := validateHub(hub); err != nil {
		return nil, err
	}
	switch {
	case typ == "":
		return nil, invalidf("event_type is required, e.g. BILLINGPLAN.CREATED; ListEventTypes lists them")
	case len(typ) > maxEventTypeLen || !s.types[typ]:
		return nil, invalidf("event_type %q is not a webhook event type; ListEventTypes lists them (webhook_event_types)", truncate(typ, maxEventTypeLen))
	case rawURL == "":
		return nil, invalidf("url is required: one of the hub's callback URLs")
	case len(rawURL) > 4096:
		return nil, invalidf("url is %d bytes long; at most 4096 allowed", len(rawURL))
	case len(req.GetBody()) > MaxTestBodyLen:
		return nil, invalidf("body is %d bytes long; at most %d allowed", len(req.GetBody()), MaxTestBodyLen)
	}
	now := s.cfg.Now()
	var data json.RawMessage
	if b := strings.TrimSpace(req.GetBody()); b != "" {
		var obj map[string]any
		if err := json.Unmarshal([]byte(b), &obj); err != nil {
			return nil, invalidf("body is not valid JSON (%v); it must be a JSON object, which replaces the sample data, e.g. {\"id\": \"api_123\"}", err)
		}
		if obj == nil {
			return nil, invalidf("body must be a JSON object, which replaces the sample data, e.g. {\"id\": \"api_123\"}; not null")
		}
		data = json.RawMessage(b)
	} else {
		b, err := json.Marshal(SamplePayload(typ, hub, now))
		if err != nil {
			return nil, fmt.Errorf("encode sample payload: %w", err)
		}
		data = b
	}

	cfg, err := s.store.Get(ctx, hub)
	if err != nil {
		return nil, err
	}
	i := findURL(cfg, rawURL, "")
	if i < 0 {
		return nil, fmt.Errorf("%w: %q is not a callback URL of hub %s; add it with AddCallbackUrl first", ErrURLNotFound, rawURL, hub)
	}
	target := cfg.GetCallbackUrls()[i]

	evt := &webhook.Event{
		ID:        webhook.RandomID("msg_"),
		Type:      typ,
		HubID:     hub,
		CreatedAt: now.UTC(),
		Data:      data,
		DomainEvent: webhook.DomainEventRef{
			ID:         domain.ID,
			Type:       domain.Type,
			OccurredAt: now.UTC(),
			Actor:      domain.Actor,
		},
		Test: true,
	}
	body, err := evt.Marshal()
	if err != nil {
		return nil, err
	}
	return &testEvent{evt: evt, body: body, target: target, cfg: cfg, now: now}, nil
}

// sendTestEvent is SendTestEvent: validate, POST a signed sample event
// through the webhook sender, record the attempt for the event log.
func (s *Service) sendTestEvent(ctx context.Context, req *hubhooksv1.SendTestEventRequest) (*hubhooksv1.SendTestEventResponse, error) {
	te, err := s.prepareTestEvent(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.send(ctx, te)
}

// send POSTs a prepared test event and records the attempt for the event
// log.
func (s *Service) send(ctx context.Context, te *testEvent) (*hubhooksv1.SendTestEventResponse, error) {
	if !s.streamsReady.Load() {
		return nil, fmt.Errorf("%w: configsvc is starting (ensuring JetStream streams); try again shortly", ErrUnavailable)
	}
	if err := s.store.TakeTestEvent(ctx, te.evt.HubID, s.cfg.TestEventsPerMinute); err != nil {
		return nil, err
	}
	hub, typ, evt, body, target, cfg, now := te.evt.HubID, te.evt.Type, te.evt, te.body, te.target, te.cfg, te.now
	ctx, cancel := context.WithTimeout(ctx, s.cfg.TestEventTimeout)
	defer cancel()
	started := s.cfg.Now()
	res := s.sender.Send(ctx, webhook.Request{
		URL:       target.GetUrl(),
		WebhookID: evt.ID,
		Body:      body,
		Secrets:   webhook.SigningSecrets(cfg, now),
	})
	httpReq, httpResp := res.Request, res.Response
	if httpReq == nil {
		httpReq = &hubhooksv1.HttpRequest{Url: target.GetUrl(), Method: "POST", Body: string(body)}
	}
	if httpResp == nil {
		httpResp = &hubhooksv1.HttpResponse{StatusCode: int32(res.StatusCode), DurationMs: res.Duration.Milliseconds()}
	}
	if res.Err != nil && httpResp.Error == "" {
		httpResp.Error = res.Err.Error()
	}
	st := hubhooksv1.StatusFailed // a test event is never retried
	if res.Succeeded() {
		st = hubhooksv1.StatusSucceeded
	}
	s.testEvents.WithLabelValues(st.APIName()).Inc()

	job := &deliveryv1.DeliveryJob{
		DeliveryId:      webhook.RandomID("dlv_"),
		HubId:           hub,
		WebhookEventId:  evt.ID,
		EventType:       typ,
		UrlId:           target.GetId(),
		Url:             target.GetUrl(),
		Body:            body,
		CreatedAt:       timestamppb.New(now),
		DomainEventId:   evt.DomainEvent.ID,
		DomainEventType: evt.DomainEvent.Type,
		Attempt:         1,
		ConfigVersion:   cfg.GetVersion(),
		Test:            true,
		FirstAttemptAt:  timestamppb.New(started),
	}
	msg, err := eventbus.NewAttemptMsg(&deliveryv1.AttemptRecorded{
		Job:       job,
		Attempt:   1,
		Status:    st,
		Request:   httpReq,
		Response:  httpResp,
		StartedAt: timestamppb.New(started),
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return nil, fmt.Errorf("%w: the test event was sent (%s) but could not be recorded in the event log: %v", ErrUnavailable, describeResult(res), err)
	}
	s.log.Info("test event sent", "hub_id", hub, "event_type", typ, "url_id", target.GetId(), "status", st.APIName(), "delivery_id", job.DeliveryId)
	return &hubhooksv1.SendTestEventResponse{Request: httpReq, Response: httpResp, EventLogId: job.DeliveryId}, nil
}

func describeResult(r webhook.Result) string {
	if r.Err != nil {
		return "error: " + r.Err.Error()
	}
	return fmt.Sprintf("HTTP %d", r.StatusCode)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
