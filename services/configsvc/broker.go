package configsvc

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// watchItem is one message for a watcher: a changed config, or a request to
// re-send a fresh snapshot of everything it watches.
type watchItem struct {
	cfg    *hubhooksv1.HubConfig
	resync bool
}

// watcher is one WatchHubConfig stream as the broker sees it.
type watcher struct {
	hubID string // "" watches every hub
	ch    chan watchItem
	done  chan struct{}
	err   error // set before done is closed
}

func (w *watcher) wants(hubID string) bool { return w.hubID == "" || w.hubID == hubID }

// broker fans the changes read from the feed out to the watchers. A watcher
// whose buffer is full is dropped with RESOURCE_EXHAUSTED instead of
// blocking the others. It is safe for concurrent use.
type broker struct {
	mu       sync.Mutex
	running  bool
	watchers map[*watcher]struct{}

	gauge   prometheus.Gauge
	dropped *prometheus.CounterVec
}

func newBroker(gauge prometheus.Gauge, dropped *prometheus.CounterVec) *broker {
	return &broker{watchers: map[*watcher]struct{}{}, gauge: gauge, dropped: dropped}
}

// start lets watchers register; call it once the feed reader knows its position.
func (b *broker) start() {
	b.mu.Lock()
	b.running = true
	b.mu.Unlock()
}

// isRunning reports whether watchers are accepted.
func (b *broker) isRunning() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running
}

// add registers a watcher of hubID ("" for all) with a buffer of size buf.
func (b *broker) add(hubID string, buf int) (*watcher, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.running {
		return nil, status.Error(codes.Unavailable, "configsvc is not reading its change feed (starting, stopping, or Redis unreachable); retry shortly")
	}
	w := &watcher{hubID: hubID, ch: make(chan watchItem, buf), done: make(chan struct{})}
	b.watchers[w] = struct{}{}
	b.gauge.Inc()
	return w, nil
}

// remove unregisters w; it is a no-op when w was already dropped.
func (b *broker) remove(w *watcher) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.watchers[w]; ok {
		delete(b.watchers, w)
		b.gauge.Dec()
	}
}

// dropLocked ends w with err. b.mu must be held.
func (b *broker) dropLocked(w *watcher, reason string, err error) {
	if _, ok := b.watchers[w]; !ok {
		return
	}
	delete(b.watchers, w)
	b.gauge.Dec()
	b.dropped.WithLabelValues(reason).Inc()
	w.err = err
	close(w.done)
}

func (b *broker) sendLocked(w *watcher, it watchItem) {
	select {
	case w.ch <- it:
	default:
		b.dropLocked(w, "slow", status.Errorf(codes.ResourceExhausted,
			"watcher fell more than %d changes behind and was disconnected; reconnect to get a fresh snapshot", cap(w.ch)))
	}
}

// publish hands changed configs to every watcher that wants them.
func (b *broker) publish(cfgs []*hubhooksv1.HubConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for w := range b.watchers {
		for _, c := range cfgs {
			if w.wants(c.GetHubId()) {
				b.sendLocked(w, watchItem{cfg: c})
				if _, ok := b.watchers[w]; !ok {
					break
				}
			}
		}
	}
}

// resync asks every watcher to re-send a fresh snapshot.
func (b *broker) resync() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for w := range b.watchers {
		b.sendLocked(w, watchItem{resync: true})
	}
}

// dropAll ends every watcher with err; reason labels the metric.
func (b *broker) dropAll(reason string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for w := range b.watchers {
		b.dropLocked(w, reason, err)
	}
}

// stop refuses new watchers and ends the current ones with err.
func (b *broker) stop(err error) {
	b.mu.Lock()
	b.running = false
	b.mu.Unlock()
	b.dropAll("shutdown", err)
}
