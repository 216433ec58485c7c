package deliverer

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/hubhooks/hubhooks/pkg/webhook"
)

// ErrCircuitOpen is the error of an attempt not made because the URL's
// circuit breaker is open: the endpoint kept failing.
var ErrCircuitOpen = errors.New("circuit open: endpoint failing")

// ErrEndpointStuck is the error of an attempt not made because every POST
// to the URL is already waiting for its timeout and none finished for a
// second: the endpoint accepts connections but does not answer.
var ErrEndpointStuck = errors.New("endpoint not answering: every POST to it is waiting for the timeout")

// errShutdown marks an attempt interrupted by the hard stop of a shutdown;
// the breaker does not count it.
var errShutdown = errors.New("deliverer shutting down")

type breakerEntry struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	lastUsed time.Time
}

// breakers holds one circuit breaker per (hub, URL). A breaker opens after
// cfg.BreakerFailures consecutive failed attempts (what counts as failed:
// breakerFailure), fails fast for cfg.BreakerCooldown, then lets one probe
// through (half-open): success closes it, failure opens it again. It is
// safe for concurrent use.
type breakers struct {
	mu       sync.Mutex
	m        map[string]*breakerEntry
	failures uint32
	cooldown time.Duration
	metrics  *metrics
	log      *slog.Logger
	changed  func(hub, urlID, url string, opened bool)
}

// newBreakers makes the breakers; changed is told when one opens or
// closes (hub, URL id, URL, opened).
func newBreakers(failures int, cooldown time.Duration, m *metrics, log *slog.Logger, changed func(hub, urlID, url string, opened bool)) *breakers {
	return &breakers{m: map[string]*breakerEntry{}, failures: uint32(failures), cooldown: cooldown, metrics: m, log: log, changed: changed}
}

// allow asks the breaker of key for permission; done must be called with
// the attempt's error (nil for success) when allowed.
func (b *breakers) allow(key, hub, urlID string) (done func(error), err error) {
	b.mu.Lock()
	e, ok := b.m[key]
	if !ok {
		e = &breakerEntry{cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        hub + "/" + urlID,
			MaxRequests: 1,
			Timeout:     b.cooldown,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= b.failures },
			IsExcluded:  func(err error) bool { return errors.Is(err, errShutdown) },
			OnStateChange: func(name string, from, to gobreaker.State) {
				b.metrics.breakerChanges.WithLabelValues(to.String()).Inc()
				b.log.Info("circuit breaker state changed", "breaker", name, "from", from.String(), "to", to.String())
				switch {
				case to == gobreaker.StateOpen && from == gobreaker.StateClosed:
					b.changed(hub, urlID, urlOfKey(key), true)
				case to == gobreaker.StateClosed:
					b.changed(hub, urlID, urlOfKey(key), false)
				}
			},
		})}
		b.m[key] = e
	}
	e.lastUsed = time.Now()
	b.mu.Unlock()
	done, err = e.cb.Allow()
	if err != nil {
		return nil, ErrCircuitOpen
	}
	return done, nil
}

// open reports whether the breaker of key is open (failing fast, not yet
// ready to probe).
func (b *breakers) open(key string) bool {
	b.mu.Lock()
	e, ok := b.m[key]
	b.mu.Unlock()
	return ok && e.cb.State() == gobreaker.StateOpen
}

// prune forgets closed breakers unused since before cutoff.
func (b *breakers) prune(cutoff time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, e := range b.m {
		if e.lastUsed.Before(cutoff) && e.cb.State() == gobreaker.StateClosed {
			delete(b.m, k)
		}
	}
}

// pruneLoop forgets, every minute until done is closed, the closed breakers
// unused for ten minutes.
func (b *breakers) pruneLoop(done <-chan struct{}) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			b.prune(now.Add(-10 * time.Minute))
		}
	}
}

// slowAnswer is how long an error answer may take before the breaker counts
// it as a failure of the endpoint.
const slowAnswer = 5 * time.Second

// breakerFailure is what a URL's breaker counts of res, nil for a success.
// The breaker protects the deliverer's capacity, so it counts what costs
// capacity: timeouts, connection errors, and error answers that were slow.
// An endpoint that answers an error promptly just follows the retry
// schedule: it holds no worker, and a flaky endpoint keeps its attempts. A
// POST cut short by the deliverer's hard stop (shuttingDown) is not counted.
func breakerFailure(res webhook.Result, shuttingDown bool) error {
	switch {
	case shuttingDown:
		return errShutdown
	case res.Succeeded():
		return nil
	case res.Err != nil:
		return res.Err
	case res.Duration >= slowAnswer:
		return errors.New("slow " + http.StatusText(res.StatusCode))
	}
	return nil
}
