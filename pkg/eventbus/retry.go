package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// unavailableRetry is how long whileUnavailable waits between calls.
const unavailableRetry = 500 * time.Millisecond

// ensureAttempt bounds one attempt of Ensure, EnsureConsumer and
// CheckConsumer, shorter than the client's default request timeout: on a
// cluster, one of two replicas creating the same consumer at once may get
// no answer, and the next attempt finds the consumer made. The attempts
// are idempotent.
const ensureAttempt = 2 * time.Second

// ensuring is whileUnavailable with each call of fn bounded by
// ensureAttempt.
func ensuring[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	return whileUnavailable(ctx, func() (T, error) {
		actx, cancel := context.WithTimeout(ctx, ensureAttempt)
		defer cancel()
		return fn(actx)
	})
}

// whileUnavailable calls fn until it succeeds, fails with an error that
// does not mean JetStream is unavailable (see unavailable), or ctx ends.
func whileUnavailable[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	for {
		v, err := fn()
		if err == nil || !unavailable(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(unavailableRetry):
		}
	}
}

// unavailable reports whether err means JetStream cannot be reached yet (a
// server starting or reconnecting, a cluster electing a leader), so the
// same call may succeed later.
func unavailable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrNoServers)
}
