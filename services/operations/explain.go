package operations

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/publisher"
	"github.com/hubhooks/hubhooks/pkg/routing"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// Explain's own reason beside pkg/routing's: the log shows deliveries to a
// URL the hub no longer has.
const reasonURLRemoved = "url_removed"

// maxExplainedDeliveries bounds the log entries explain reads per webhook
// event (the original, its redeliveries and recoveries, to every URL).
const maxExplainedDeliveries = 500

// explain is ExplainDomainEvent.
func (s *Service) explain(ctx context.Context, req *hubhooksv1.ExplainDomainEventRequest) (*hubhooksv1.ExplainDomainEventResponse, error) {
	hub, id, typ := req.GetHubId(), req.GetDomainEventId(), req.GetDomainEventType()
	var errs []error
	if err := hubid.Validate(hub); err != nil {
		errs = append(errs, err)
	}
	if len(id) > publisher.MaxIDLen || !utf8.ValidString(id) {
		errs = append(errs, fmt.Errorf("domain_event_id: at most %d bytes of UTF-8", publisher.MaxIDLen))
	}
	switch {
	case typ == "":
		errs = append(errs, errors.New("domain_event_type is required, e.g. API.CREATED (ListEventTypes lists them)"))
	case !s.rules.Has(typ):
		errs = append(errs, fmt.Errorf("domain_event_type %q: no cascade rule for it; ListEventTypes lists the domain subjects", clip(typ, 128)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, invalidError{err}
	}
	emitted, err := s.rules.Expand(typ, req.GetData())
	if err != nil {
		if errors.Is(err, cascade.ErrPayload) {
			return nil, invalidf("data: %v", err)
		}
		return nil, err
	}
	cfg, err := s.configs.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: hub})
	if err != nil {
		return nil, err
	}
	resp := &hubhooksv1.ExplainDomainEventResponse{DomainEventId: id, DomainEventType: typ}
	if _, detail := routing.HubReason(cfg, time.Time{}); detail != "" {
		resp.HubReason = detail
	} else if len(cfg.GetCallbackUrls()) == 0 {
		resp.HubReason = "the hub has no callback URL"
	}
	types := make([]string, len(emitted))
	for i, e := range emitted {
		types[i] = e.Type
	}
	if id != "" && req.GetData() == nil {
		// Without the data, forEach events are not known: the log shows
		// them, at the positions after the rule's fixed events.
		for i := len(types); i < len(types)+cascade.MaxForEach; i++ {
			logs, err := s.deliveriesOf(ctx, hub, webhook.EventID(hub, id, i))
			if err != nil {
				return nil, err
			}
			if len(logs) == 0 {
				break
			}
			types = append(types, logs[0].GetEventType())
		}
	}
	for i, t := range types {
		we := &hubhooksv1.ExplainedWebhookEvent{Type: t, Position: int32(i)}
		if id == "" {
			we.Targets = explainTargets(cfg, t, nil)
			resp.WebhookEvents = append(resp.WebhookEvents, we)
			continue
		}
		we.Id = webhook.EventID(hub, id, i)
		logs, err := s.deliveriesOf(ctx, hub, we.Id)
		if err != nil {
			return nil, err
		}
		we.Targets = explainTargets(cfg, t, logs)
		resp.WebhookEvents = append(resp.WebhookEvents, we)
		rid := webhook.ReplayEventID(hub, id, i)
		if logs, err = s.deliveriesOf(ctx, hub, rid); err != nil {
			return nil, err
		}
		if len(logs) > 0 {
			resp.WebhookEvents = append(resp.WebhookEvents, &hubhooksv1.ExplainedWebhookEvent{
				Id: rid, Type: t, Position: int32(i), ReplayOf: we.Id, Targets: explainTargets(cfg, t, logs),
			})
		}
	}
	return resp, nil
}

// explainTargets says, for each URL of cfg and each URL logs name, whether
// an event of type typ goes there now and why not, with the deliveries of
// logs to it (oldest first).
func explainTargets(cfg *hubhooksv1.HubConfig, typ string, logs []*hubhooksv1.EventLog) []*hubhooksv1.ExplainedTarget {
	_, skipped := routing.Route(cfg, typ, time.Time{})
	why := map[string]routing.Skip{}
	for _, sk := range skipped {
		why[sk.URL.GetId()] = sk
	}
	var out []*hubhooksv1.ExplainedTarget
	byURL := map[string]*hubhooksv1.ExplainedTarget{}
	for _, u := range cfg.GetCallbackUrls() {
		t := &hubhooksv1.ExplainedTarget{UrlId: u.GetId(), Url: u.GetUrl(), Routed: true}
		if sk, ok := why[u.GetId()]; ok {
			t.Routed, t.Reason, t.Detail = false, sk.Reason, sk.Detail
		}
		byURL[u.GetId()] = t
		out = append(out, t)
	}
	for i := len(logs) - 1; i >= 0; i-- { // logs are newest first
		l := logs[i]
		t, ok := byURL[l.GetUrlId()]
		if !ok {
			t = &hubhooksv1.ExplainedTarget{UrlId: l.GetUrlId(), Url: l.GetUrl(), Reason: reasonURLRemoved, Detail: "the hub no longer has this URL"}
			byURL[l.GetUrlId()] = t
			out = append(out, t)
		}
		t.Deliveries = append(t.Deliveries, l)
	}
	return out
}

// deliveriesOf lists the log's deliveries of one webhook event, newest
// first, at most maxExplainedDeliveries.
func (s *Service) deliveriesOf(ctx context.Context, hub, eventID string) ([]*hubhooksv1.EventLog, error) {
	var out []*hubhooksv1.EventLog
	q := logstore.Query{HubID: hub, EventID: eventID, PageSize: 100}
	for len(out) < maxExplainedDeliveries {
		page, err := s.logs.List(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("list deliveries of %s: %w", eventID, err)
		}
		out = append(out, page.Logs...)
		if page.NextPageToken == "" {
			break
		}
		q.PageToken = page.NextPageToken
	}
	return out, nil
}

// clip shortens s to n bytes for messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
