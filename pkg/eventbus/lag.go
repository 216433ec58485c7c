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

// LagCollector reports a durable consumer's backlog as Prometheus gauges,
// asking JetStream for the consumer's info on every scrape (bounded by a
// timeout, so a NATS outage slows a scrape, never blocks it). Every
// replica of a service reports the same shared consumer: aggregate with
// max, not sum.
type LagCollector struct {
	js       jetstream.JetStream
	stream   string
	consumer string
	timeout  time.Duration
}

// NewLagCollector returns the collector of one durable consumer.
func NewLagCollector(js jetstream.JetStream, stream, consumer string) (*LagCollector, error) {
	if js == nil {
		return nil, errors.New("lag collector: nil jetstream")
	}
	if stream == "" || consumer == "" {
		return nil, errors.New("lag collector: stream and consumer are required")
	}
	return &LagCollector{js: js, stream: stream, consumer: consumer, timeout: 2 * time.Second}, nil
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
	info, err := c.info(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(lagUpDesc, prometheus.GaugeValue, 0, c.stream, c.consumer)
		return
	}
	ch <- prometheus.MustNewConstMetric(lagUpDesc, prometheus.GaugeValue, 1, c.stream, c.consumer)
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(info.NumPending), c.stream, c.consumer)
	ch <- prometheus.MustNewConstMetric(ackPendingDesc, prometheus.GaugeValue, float64(info.NumAckPending), c.stream, c.consumer)
}

func (c *LagCollector) info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	cons, err := c.js.Consumer(ctx, c.stream, c.consumer)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}
