package deliverer

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Retries: after a failed attempt, outcome decides whether the delivery is
// retried and when (Config.Schedule, jittered; a receiver's Retry-After;
// the breaker's cool-down after a fail-fast). The next attempt waits in the
// retry store (retrystore.go) and the scheduler republishes it as a job
// when it is due (scheduler.go), so a retry holds no worker and no
// JetStream message.

// outcome decides the delivery's status after an attempt and, for
// retrying, when the next attempt is due.
func (s *Service) outcome(job *deliveryv1.DeliveryJob, res webhook.Result, now time.Time) (hubhooksv1.DeliveryStatus, time.Time) {
	attempt := int(job.GetAttempt())
	switch {
	case res.Succeeded():
		return hubhooksv1.StatusSucceeded, time.Time{}
	case job.GetTest(), res.Gone(),
		errors.Is(res.Err, urlguard.ErrBlocked), errors.Is(res.Err, urlguard.ErrInvalidURL):
		return hubhooksv1.StatusFailed, time.Time{}
	case attempt < len(s.cfg.Schedule):
		delay := jitter(s.cfg.Schedule[attempt], s.cfg.Jitter)
		if (res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable) && res.RetryAfter > 0 {
			delay = max(delay, min(res.RetryAfter, s.cfg.MaxRetryAfter))
		}
		if errors.Is(res.Err, ErrCircuitOpen) || errors.Is(res.Err, ErrEndpointStuck) {
			// Failed fast: the URL cannot be tried before its breaker probes
			// again, so the next attempt waits for the cool-down, never
			// earlier (jitter only adds), and a short schedule is not burnt
			// in seconds.
			cooldown := s.cfg.BreakerCooldown
			delay = max(delay, jitter(cooldown, s.cfg.Jitter)+time.Duration(float64(cooldown)*s.cfg.Jitter))
		}
		return hubhooksv1.StatusRetrying, now.Add(delay)
	default:
		return hubhooksv1.StatusDead, time.Time{}
	}
}

// storeRetry stores the next attempt of job in the retry store, due at
// next, and wakes the scheduler when it is due before its next poll. msg
// is the job's message, nak'd by the caller when the store fails.
func (s *Service) storeRetry(msg jobMsg, job *deliveryv1.DeliveryJob, next time.Time) (standing bool, err error) {
	nextJob := proto.Clone(job).(*deliveryv1.DeliveryJob)
	nextJob.Attempt = job.GetAttempt() + 1
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	v, err := s.retries.storeEntry(ctx, nextJob, next)
	if err != nil {
		_, parked := msg.(parkedMsg)
		return s.notStored(nextJob, v, err, parked), err
	}
	s.metrics.retries.Inc()
	if time.Until(next) < s.cfg.PollInterval {
		s.wakeScheduler()
	}
	return false, nil
}

// notStored handles a store of job (entry v) that failed with err. One
// Redis did not replicate in time (daemon.ErrNotReplicated) pauses parking
// and, unless its entry stays (keep: a parked attempt's, whose message is
// gone), removes the entry again (unstore). It reports whether an entry of
// the delivery may still stand beside the message.
func (s *Service) notStored(job *deliveryv1.DeliveryJob, v string, err error, keep bool) (standing bool) {
	if !errors.Is(err, daemon.ErrNotReplicated) {
		return false
	}
	s.pauseParking()
	return !keep && !s.unstore(job, v)
}

// unstore removes an entry written on the Redis primary but not on enough
// replicas (daemon.ErrNotReplicated) when the job's message is redelivered
// instead: the entry must not bring the attempt back as well. (A parked
// job's entry stays: its message is gone.) It reports whether the entry is
// gone. It is not when the store kept an entry of the same delivery further
// along (storeScript) or the removal failed: that entry may then bring the
// attempt back too, and the message waits standingSettle more (backAfter).
func (s *Service) unstore(job *deliveryv1.DeliveryJob, v string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
	defer cancel()
	removed, err := s.retries.removeEntry(ctx, job.GetHubId(), job.GetDeliveryId(), v)
	if err != nil {
		s.jobLog(job).Warn("remove a retry not replicated (the attempt may be made twice)", "err", err)
	}
	return removed && err == nil
}

// standingSettle is how much longer a message whose store failed waits
// before it comes back when an entry of its delivery stands in the retry
// store (unstore): time for the entry's attempt to be made and reach the
// event log first, so that the message, delivered again and so checked
// against the log, is then settled without a POST. Should the entry be
// lost in a failover, the message still makes the attempt, this much
// later.
const standingSettle = 30 * time.Second

// backAfter is the nak delay of a message whose store failed: delay, plus
// standingSettle when an entry of its delivery may still stand.
func backAfter(delay time.Duration, standing bool) time.Duration {
	if standing {
		return delay + standingSettle
	}
	return delay
}

// wakeScheduler makes the scheduler look for due retries now.
func (s *Service) wakeScheduler() {
	select {
	case s.schedulerWake <- struct{}{}:
	default:
	}
}

// jitter spreads d uniformly by ±frac.
func jitter(d time.Duration, frac float64) time.Duration {
	if d <= 0 || frac <= 0 {
		return max(d, 0)
	}
	f := 1 + frac*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}
