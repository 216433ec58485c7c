package configsvc

import (
	"context"
	"strings"

	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

func (g *grpcServer) SendTestDomainEvent(ctx context.Context, req *hubhooksv1.SendTestDomainEventRequest) (*hubhooksv1.SendTestDomainEventResponse, error) {
	resp, err := g.svc.sendTestDomainEvent(ctx, req)
	return resp, grpcError(err)
}

// sendTestDomainEvent is SendTestDomainEvent: every webhook event the
// domain event type triggers (its cascade rule, one of each, a list's
// elements as one), with sample data, sent to the URL one after the other
// as SendTestEvent sends one, under one test domain event.
func (s *Service) sendTestDomainEvent(ctx context.Context, req *hubhooksv1.SendTestDomainEventRequest) (*hubhooksv1.SendTestDomainEventResponse, error) {
	domainID, events, err := s.prepareTestDomainEvent(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := &hubhooksv1.SendTestDomainEventResponse{DomainEventId: domainID}
	for _, te := range events {
		r, err := s.send(ctx, te)
		if err != nil {
			return nil, err
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// prepareTestDomainEvent validates req and builds, in cascade order, the
// webhook events of one test domain event of its type: what
// SendTestDomainEvent sends and PreviewTestDomainEvent shows. All are
// prepared before any is sent, so that a refusal (an unknown URL) sends
// none of them.
func (s *Service) prepareTestDomainEvent(ctx context.Context, req *hubhooksv1.SendTestDomainEventRequest) (string, []*testEvent, error) {
	subject := strings.TrimSpace(req.GetDomainEventType())
	if err := validateHub(req.GetHubId()); err != nil {
		return "", nil, err
	}
	var rule *hubhooksv1.EventTypeRule
	for _, r := range s.rules.EventTypes().GetRules() {
		if r.GetDomainSubject() == subject {
			rule = r
		}
	}
	switch {
	case subject == "":
		return "", nil, invalidf("domain_event_type is required, e.g. API.CREATED; ListEventTypes lists them (domain_subject)")
	case rule == nil:
		return "", nil, invalidf("domain_event_type %q is not a domain event type; ListEventTypes lists them (domain_subject)", truncate(subject, maxEventTypeLen))
	case len(rule.GetEmits()) == 0:
		return "", nil, invalidf("domain_event_type %s triggers no webhook event (see ListEventTypes): there is nothing to send", subject)
	}
	domain := webhook.DomainEventRef{ID: webhook.RandomID("evt_test_"), Type: subject, Actor: testActor}
	events := make([]*testEvent, len(rule.GetEmits()))
	for i, e := range rule.GetEmits() {
		te, err := s.prepareTestEventOf(ctx, &hubhooksv1.SendTestEventRequest{HubId: req.GetHubId(), EventType: e.GetType(), Url: req.GetUrl()}, domain)
		if err != nil {
			return "", nil, err
		}
		events[i] = te
	}
	return domain.ID, events, nil
}
