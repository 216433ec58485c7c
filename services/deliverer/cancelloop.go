package deliverer

import (
	"context"
	"fmt"
	"sync"
	"time"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// changedHubs collects the hubs whose config changed in a way that cancels
// some of their pending retries, for cancelLoop. It is safe for concurrent
// use.
type changedHubs struct {
	mu    sync.Mutex
	hubs  map[string]struct{}
	ready chan struct{} // signalled when a hub is added
}

func newChangedHubs() *changedHubs {
	return &changedHubs{hubs: map[string]struct{}{}, ready: make(chan struct{}, 1)}
}

// add notes hub for cancelLoop.
func (c *changedHubs) add(hub string) {
	if hub == "" {
		return
	}
	c.mu.Lock()
	c.hubs[hub] = struct{}{}
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// take returns the hubs noted since the last take.
func (c *changedHubs) take() map[string]struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	hubs := c.hubs
	c.hubs = map[string]struct{}{}
	return hubs
}

// addLater notes hub again after a second (a failed attempt), unless ctx
// ends first.
func (c *changedHubs) addLater(ctx context.Context, hub string) {
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
			c.add(hub)
		}
	}()
}

// watchConfigs notes the hubs whose config change disallows some retries.
func (s *Service) watchConfigs() {
	s.configs.OnChange(func(old, cur *hubhooksv1.HubConfig) {
		if !needsCancel(old, cur) {
			return
		}
		hub := old.GetHubId()
		if cur != nil {
			hub = cur.GetHubId()
		}
		s.changed.add(hub)
	})
}

// cancelLoop moves the pending retries that a config change disallows to
// the cancel outbox, atomically in Redis; the scheduler then publishes their
// "cancelled" records. Several replicas may do this for the same change:
// the move is idempotent and each entry is moved once.
func (s *Service) cancelLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed.ready:
		}
		moved := 0
		for hub := range s.changed.take() {
			n, err := s.cancelRetries(ctx, hub)
			if err != nil {
				s.metrics.handlingErrors.WithLabelValues("cancel").Inc()
				s.log.Warn("cancel pending retries; trying again", "hub", hub, "err", err)
				s.changed.addLater(ctx, hub)
				continue
			}
			if n > 0 {
				s.log.Info("pending retries cancelled", "hub", hub, "count", n)
			}
			moved += n
		}
		if moved > 0 {
			s.wakeScheduler()
		}
	}
}

// cancelRetries moves the pending retries of hub that its config no longer
// allows to the cancel outbox, and returns how many moved.
func (s *Service) cancelRetries(ctx context.Context, hub string) (int, error) {
	cfg, ok := s.configs.Get(hub)
	if !ok || cfg.GetVersion() == 0 {
		// The cache lost the hub (a reconnect's snapshot without it): ask
		// configsvc before cancelling anything, so a partial snapshot can
		// never cancel a hub's retries.
		fctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
		fresh, err := s.configs.Fetch(fctx, hub, 1)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("confirm the config of a vanished hub: %w", err)
		}
		cfg = fresh
	}
	opCtx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	n, err := s.retries.cancelExcept(opCtx, hub, keptURLIDs(cfg), time.Now())
	if err != nil || !filtersTypes(cfg) {
		return n, err
	}
	// A URL that takes only some types: its retries of the others go too.
	m, err := s.retries.cancelWhere(opCtx, hub, func(job *deliveryv1.DeliveryJob) bool {
		return !job.GetTest() && cancelReason(cfg, job) != ""
	}, time.Now())
	return n + m, err
}
