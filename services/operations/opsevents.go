package operations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/hubid"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// publishOps publishes an operational event, best effort: what it reports
// is done already, so a failure is logged, not returned.
func (s *Service) publishOps(ev *hubhooksv1.OperationalEvent) {
	m, err := eventbus.NewOpsMsg(ev)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = s.js.PublishMsg(ctx, m)
		cancel()
	}
	if err != nil {
		s.log.Warn("publish operational event", "hub_id", ev.GetHubId(), "type", ev.GetType().String(), "err", err)
	}
}

// watchOps is WatchOperationalEvents: an ordered consumer on the hub's ops
// subject, from since or from now.
func (s *Service) watchOps(ctx context.Context, req *hubhooksv1.WatchOperationalEventsRequest, send func(*hubhooksv1.OperationalEvent) error) error {
	if err := hubid.Validate(req.GetHubId()); err != nil {
		return invalidError{err}
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{eventbus.OpsSubject(req.GetHubId())}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if ts := req.GetSince(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return invalidf("since: %v", err)
		}
		since := ts.AsTime()
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	if err := s.Ready(ctx); err != nil {
		return err
	}
	cons, err := s.js.OrderedConsumer(ctx, eventbus.StreamOps, cfg)
	if err != nil {
		return fmt.Errorf("read operational events: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read operational events: %w", err)
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read operational events: %w", err)
		}
		ev, err := eventbus.DecodeOpsMsg(m.Data())
		if err != nil {
			s.log.Warn("skipping an undecodable operational event", "subject", m.Subject(), "err", err)
			continue
		}
		if err := send(ev); err != nil {
			return err
		}
	}
}

// forwardOps delivers the operational events of every hub to the hub's URL
// marked operational_events, as webhooks, until ctx ends.
func (s *Service) forwardOps(ctx context.Context) {
	cons, err := eventbus.EnsureConsumer(ctx, s.js, eventbus.StreamOps, eventbus.ConsumerConfig(eventbus.ConsumerOperations, 30*time.Second, 256))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("operational events will not be delivered as webhooks", "err", err)
		}
		return
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := s.forwardOne(ctx, m); err != nil {
			s.log.Warn("deliver an operational event as a webhook; retried", "subject", m.Subject(), "err", err)
			_ = m.NakWithDelay(5 * time.Second)
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		s.log.Error("operational events will not be delivered as webhooks", "err", err)
		return
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
}

// forwardOne publishes the delivery job of one operational event to its
// hub's operational-events URL, if the hub has one.
func (s *Service) forwardOne(ctx context.Context, m jetstream.Msg) error {
	ev, err := eventbus.DecodeOpsMsg(m.Data())
	if err != nil {
		s.log.Warn("dropping an undecodable operational event", "subject", m.Subject(), "err", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg, err := s.configs.GetHubConfig(ctx, &hubhooksv1.GetHubConfigRequest{HubId: ev.GetHubId()})
	if err != nil {
		return err
	}
	var to *hubhooksv1.CallbackUrl
	for _, u := range cfg.GetCallbackUrls() {
		if u.GetOperationalEvents() && !u.GetDisabled() {
			to = u
		}
	}
	if to == nil || !cfg.GetEventsEnabled() {
		return nil
	}
	data, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode operational event: %w", err)
	}
	typ := eventbus.OperationalWebhookType(ev.GetType())
	at := ev.GetOccurredAt().AsTime().UTC()
	wh := &webhook.Event{
		ID: webhook.OperationalEventID(ev.GetHubId(), ev.GetId()), Type: typ, HubID: ev.GetHubId(), CreatedAt: at, Data: data,
		DomainEvent: webhook.DomainEventRef{ID: ev.GetId(), Type: typ, OccurredAt: at},
	}
	body, err := wh.Marshal()
	if err != nil {
		return err
	}
	job := &deliveryv1.DeliveryJob{
		DeliveryId: webhook.DeliveryID(wh.ID, to.GetId()), HubId: ev.GetHubId(), WebhookEventId: wh.ID, EventType: typ,
		UrlId: to.GetId(), Url: to.GetUrl(), Body: body, CreatedAt: timestamppb.New(at),
		DomainEventId: ev.GetId(), DomainEventType: typ, Attempt: 1, ConfigVersion: cfg.GetVersion(),
	}
	jm, err := eventbus.NewJobMsg(job)
	if err != nil {
		return err
	}
	if _, err := s.js.PublishMsg(ctx, jm, jetstream.WithExpectStream(eventbus.StreamDeliveries)); err != nil {
		return fmt.Errorf("publish delivery: %w", err)
	}
	return nil
}

// autoDisable disables, every check, the URLs that have failed every
// attempt for longer than Config.AutoDisableAfter, until ctx ends.
func (s *Service) autoDisable(ctx context.Context) {
	every := min(time.Minute, max(s.cfg.AutoDisableAfter/10, 50*time.Millisecond))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		if err := s.disableFailing(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("auto-disable failing URLs; trying again", "err", err)
		}
	}
}

// disableFailing disables the URLs failing since before now-AutoDisableAfter.
func (s *Service) disableFailing(ctx context.Context, now time.Time) error {
	runs, err := s.health.Failing(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range runs {
		if now.Sub(r.Since) < s.cfg.AutoDisableAfter {
			continue
		}
		reason := fmt.Sprintf("failed every attempt since %s (%s); hubhooks disabled it (HUBHOOKS_AUTO_DISABLE_AFTER)",
			r.Since.UTC().Format(time.RFC3339), now.Sub(r.Since).Round(time.Second))
		enabled := false
		_, err := s.configs.ConfigureCallbackUrl(ctx, &hubhooksv1.ConfigureCallbackUrlRequest{
			HubId: r.Hub, Id: r.URLID, Enabled: &enabled, DisabledReason: clip(reason, 200),
		})
		switch {
		case err == nil:
			s.m.autoDisabled.Inc()
			s.log.Warn("callback URL disabled: it failed every attempt", "hub_id", r.Hub, "url_id", r.URLID, "since", r.Since)
		case isNotFound(err):
			// The URL (or hub) is gone: nothing to disable.
		default:
			errs = append(errs, fmt.Errorf("disable %s/%s: %w", r.Hub, r.URLID, err))
			continue
		}
		if err := s.health.Forget(ctx, r.Hub, r.URLID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
