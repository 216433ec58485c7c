package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// Durable consumer names, one per service that consumes a stream; every
// replica of the service shares it.
const (
	ConsumerExpander  = "expander"
	ConsumerDeliverer = "deliverer"
	ConsumerLogger    = "logger"
	// ConsumerOperations delivers operational events (StreamOps) to the
	// URLs that take them.
	ConsumerOperations = "operations"
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

// EnsureConsumer creates or updates a durable consumer, retrying like
// Ensure. An existing consumer keeps where it starts (cfg's deliver policy
// and start apply to a new one only: JetStream cannot change them). One
// that already has cfg (by its digest, see configDigestKey) is not updated.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var digest string
	cfg.Metadata, digest = withDigest(cfg.Metadata, cfg)
	c, err := ensuring(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		cfg := cfg
		cur, err := js.Consumer(ctx, stream, cfg.Durable)
		switch {
		case err == nil && cur.CachedInfo().Config.Metadata[configDigestKey] == digest:
			return cur, nil
		case err == nil:
			was := cur.CachedInfo().Config
			cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = was.DeliverPolicy, was.OptStartSeq, was.OptStartTime
		case !errors.Is(err, jetstream.ErrConsumerNotFound):
			return nil, err
		}
		return js.CreateOrUpdateConsumer(ctx, stream, cfg)
	})
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}

// EnsureConsumers ensures the durable consumers of stream as EnsureConsumer
// does, all at once: replicas starting together each wait out a request
// timeout for a consumer they both create, and at once they wait it out
// only once.
func EnsureConsumers(ctx context.Context, js jetstream.JetStream, stream string, cfgs ...jetstream.ConsumerConfig) ([]jetstream.Consumer, error) {
	out := make([]jetstream.Consumer, len(cfgs))
	g, gctx := errgroup.WithContext(ctx)
	for i, cfg := range cfgs {
		g.Go(func() (err error) {
			out[i], err = EnsureConsumer(gctx, js, stream, cfg)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// ErrConsumerGone is what CheckConsumer wraps when a durable consumer or its
// stream does not exist.
var ErrConsumerGone = errors.New("durable consumer gone")

// CheckConsumer asks JetStream whether the durable consumer name of stream
// exists: nil when it does, ErrConsumerGone (wrapping the server's answer,
// jetstream.ErrConsumerNotFound or jetstream.ErrStreamNotFound) when it or
// its stream does not, another error when JetStream cannot say by the time
// ctx ends (it asks again while JetStream is unavailable, as Ensure does:
// a cluster still electing its leaders answers nothing for seconds). A
// service whose fetches fail asks it to tell a deleted consumer from an
// outage.
func CheckConsumer(ctx context.Context, js jetstream.JetStream, stream, name string) error {
	_, err := ensuring(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return js.Consumer(ctx, stream, name)
	})
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: %s on %s: %w", ErrConsumerGone, name, stream, err)
	}
	return err
}
