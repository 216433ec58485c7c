package expander

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
)

// The expander's place in the domain events stream is its durable
// consumer. No hubhooks identity may delete it, but someone with the
// rights can; made again with the default policy it would expand every
// event the stream retains (72 h of them) again. So the expander says
// loudly when its consumer is gone and makes it again from where it was:
//
//   - gone while the expander runs: from the consumer's ack floor as last
//     read (every positionInterval): the events since are expanded again
//     and de-duplicated as any redelivery is;
//   - gone while the expander was down, which the stream's markerKey tells
//     from a first start: from the end of the stream. The events stored in
//     between are not expanded; ReplayDomainEvents re-expands a hub's events
//     deliberately.
//
// A deleted stream is made again, empty, and said so: its events are gone.

// markerKey is the events stream's metadata key that says the expander
// has made its consumer on it before.
const markerKey = "hubhooks.expander"

// positionInterval is how often the expander reads its consumer's ack floor.
const positionInterval = time.Second

// setup ensures the streams and the consumer. running says the expander
// was consuming (its consumer stopped); afterSeq is then the last ack floor
// it read.
func (s *Service) setup(ctx context.Context, running bool, afterSeq uint64) (jetstream.Consumer, error) {
	o := s.cfg.StreamOptions
	before, err := eventbus.StreamInfo(ctx, s.js, eventbus.StreamEvents)
	if err != nil {
		return nil, err
	}
	events := eventbus.EventsStreamConfig(s.rules.StreamSubjects(), o)
	events.Metadata = map[string]string{markerKey: "consumer made"}
	if err := eventbus.Ensure(ctx, s.js, events, eventbus.DeliveriesStreamConfig(o), eventbus.DeadLettersStreamConfig(o)); err != nil {
		return nil, err
	}
	cfg := eventbus.ConsumerConfig(eventbus.ConsumerExpander, s.cfg.AckWait, s.cfg.MaxAckPending)
	err = eventbus.CheckConsumer(ctx, s.js, eventbus.StreamEvents, eventbus.ConsumerExpander)
	switch {
	case err == nil:
	case !errors.Is(err, eventbus.ErrConsumerGone):
		return nil, err
	case before == nil && running:
		s.lost("the domain events stream was deleted while the expander ran: the events it held are gone; it is made again, empty",
			"stream", eventbus.StreamEvents)
	case before == nil:
		// A first start.
	case running:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, max(afterSeq+1, before.State.FirstSeq)
		s.lost("the expander's consumer was deleted while the expander ran (no hubhooks identity may delete it: someone with the NATS rights did); made again from where it was",
			"stream", eventbus.StreamEvents, "consumer", eventbus.ConsumerExpander, "from_sequence", cfg.OptStartSeq)
	case before.Config.Metadata[markerKey] != "" && before.State.Msgs > 0:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
		s.lost("the expander's consumer was deleted while the expander was down (no hubhooks identity may delete it: someone with the NATS rights did); made again for new events only: "+
			"the events the stream holds are NOT expanded again — re-expand a hub's with ReplayDomainEvents (hubctl replay) if they were not delivered",
			"stream", eventbus.StreamEvents, "consumer", eventbus.ConsumerExpander,
			"first_sequence", before.State.FirstSeq, "last_sequence", before.State.LastSeq,
			"first_stored", before.State.FirstTime, "last_stored", before.State.LastTime)
	}
	c, err := eventbus.EnsureConsumer(ctx, s.js, eventbus.StreamEvents, cfg)
	if err != nil {
		return nil, err
	}
	s.consumer.Store(&c)
	return c, nil
}

// lost logs a lost consumer or stream at ERROR and counts it.
func (s *Service) lost(msg string, args ...any) {
	s.m.consumerLost.Inc()
	s.cfg.Log.Error(msg, args...)
}

// trackPosition reads the consumer's ack floor every positionInterval
// until ctx ends, for setup to start from should the consumer be deleted.
func (s *Service) trackPosition(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(positionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c := s.consumer.Load()
		if c == nil {
			continue
		}
		ictx, cancel := context.WithTimeout(ctx, positionInterval)
		info, err := (*c).Info(ictx)
		cancel()
		if err != nil {
			log.Debug("read the expander's position", "err", err)
			continue
		}
		s.position.Store(info.AckFloor.Stream)
		s.m.position.Set(float64(info.AckFloor.Stream))
	}
}
