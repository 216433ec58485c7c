package eventbus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Durable consumer names, one per service that consumes a stream; every
// replica of the service shares it.
const (
	ConsumerExpander  = "expander"
	ConsumerDeliverer = "deliverer"
	ConsumerLogger    = "logger"
)

// ConsumerConfig is the durable pull consumer config every replica of a
// service shares. ackWait bounds how long a message may be held before the
// server redelivers it; maxAckPending bounds messages in flight.
func ConsumerConfig(name string, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "hubhooks " + name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// EnsureConsumer creates or updates a durable consumer, retrying like Ensure.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := whileUnavailable(ctx, func() (jetstream.Consumer, error) { return js.CreateOrUpdateConsumer(ctx, stream, cfg) })
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}
