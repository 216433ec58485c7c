package eventbus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	pendingDesc = prometheus.NewDesc("hubhooks_consumer_pending_messages",
		"Messages of the stream the durable consumer has not delivered yet (its backlog), read from JetStream at scrape time.",
		[]string{"stream", "consumer"}, nil)
	ackPendingDesc = prometheus.NewDesc("hubhooks_consumer_ack_pending_messages",
		"Messages the durable consumer delivered that are not acknowledged yet, read from JetStream at scrape time.",
		[]string{"stream", "consumer"}, nil)
	lagUpDesc = prometheus.NewDesc("hubhooks_consumer_info_up",
		"1 when the last scrape read the durable consumer's info from JetStream, 0 when it could not (NATS or the stream unavailable).",
		[]string{"stream", "consumer"}, nil)
)

// ConsumerRef names a durable consumer of a stream.
type ConsumerRef struct{ Stream, Consumer string }

// LagCollector reports the backlog of durable consumers as Prometheus
// gauges, asking JetStream for each consumer's info on every scrape
// (bounded by a timeout, so a NATS outage slows a scrape, never blocks
// it). Every replica of a service reports the same shared consumer:
// aggregate with max, not sum.
type LagCollector struct {
	js        jetstream.JetStream
	consumers []ConsumerRef
	timeout   time.Duration
}

// NewLagCollector returns the collector of the given durable consumers.
func NewLagCollector(js jetstream.JetStream, consumers ...ConsumerRef) (*LagCollector, error) {
	if js == nil {
		return nil, errors.New("lag collector: nil jetstream")
	}
	if len(consumers) == 0 {
		return nil, errors.New("lag collector: no consumer")
	}
	for _, c := range consumers {
		if c.Stream == "" || c.Consumer == "" {
			return nil, errors.New("lag collector: stream and consumer are required")
		}
	}
	return &LagCollector{js: js, consumers: consumers, timeout: 2 * time.Second}, nil
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- ackPendingDesc
	ch <- lagUpDesc
}

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, ref := range c.consumers {
		info, err := c.info(ctx, ref)
		if err != nil {
			ch <- prometheus.MustNewConstMetric(lagUpDesc, prometheus.GaugeValue, 0, ref.Stream, ref.Consumer)
			continue
		}
		ch <- prometheus.MustNewConstMetric(lagUpDesc, prometheus.GaugeValue, 1, ref.Stream, ref.Consumer)
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(info.NumPending), ref.Stream, ref.Consumer)
		ch <- prometheus.MustNewConstMetric(ackPendingDesc, prometheus.GaugeValue, float64(info.NumAckPending), ref.Stream, ref.Consumer)
	}
}

// info is one consumer info request: looking the consumer up reads its
// info already (asking again would double a scrape's requests).
func (c *LagCollector) info(ctx context.Context, ref ConsumerRef) (*jetstream.ConsumerInfo, error) {
	cons, err := c.js.Consumer(ctx, ref.Stream, ref.Consumer)
	if err != nil {
		return nil, err
	}
	return cons.CachedInfo(), nil
}
