package expander

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	received     prometheus.Counter
	expanded     prometheus.Counter
	skipped      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	retried      prometheus.Counter
	jobs         prometheus.Counter
	webhooks     prometheus.Counter
	messages     prometheus.Counter
	fetchErrors  prometheus.Counter
	seenErrors   prometheus.Counter
	latency      prometheus.Histogram
	readAhead    prometheus.Gauge
	consumerLost prometheus.Counter
	position     prometheus.Gauge
	overflowed   prometheus.Counter
	moved        prometheus.Counter
	readBack     prometheus.Counter
	moveErrors   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_events_received_total",
			Help: "Domain events received (redeliveries included).",
		}),
		expanded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_events_expanded_total",
			Help: "Domain events expanded into delivery jobs and acknowledged.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_expander_events_skipped_total",
			Help: "Domain events acknowledged without jobs, by reason (disabled, no_urls, no_config, no_events, before_enabled, filtered, seen_before: the same hub and event id expanded from another message within HUBHOOKS_SEEN_WINDOW).",
		}, []string{"reason"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_expander_events_dead_lettered_total",
			Help: "Malformed domain events moved to the dead-letter stream, by reason kind.",
		}, []string{"reason"}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_events_retried_total",
			Help: "Domain events negatively acknowledged for a later retry (publish failures).",
		}),
		jobs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_jobs_published_total",
			Help: "Delivery jobs published and acknowledged by JetStream (duplicates included).",
		}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_messages_published_total",
			Help: "Delivery messages published and acknowledged by JetStream: a fan-out, or a batch of the fan-outs of events expanded together (jobs_published / messages_published is the jobs per message).",
		}),
		webhooks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_webhook_events_total",
			Help: "Webhook events created from domain events.",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_config_recheck_errors_total",
			Help: "Failed re-checks of a hub config against configsvc.",
		}),
		seenErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_seen_errors_total",
			Help: "Domain events expanded without asking whether they were seen before, because Redis did not answer (a publisher's repeat may then be delivered again).",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hubhooks_expander_expansion_seconds",
			Help:    "Time from receiving a domain event to acknowledging it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		consumerLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_consumer_lost_total",
			Help: "Times the expander found its durable consumer or the domain events stream deleted and made it again (see the ERROR log line for from where).",
		}),
		position: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubhooks_expander_acked_through_sequence",
			Help: "The domain events stream sequence through which the expander's consumer has acknowledged every event, as last read from JetStream: where the expander starts again should its consumer be deleted.",
		}),
		overflowed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_events_overflowed_total",
			Help: "Domain events whose fan-outs went to their hub's overflow shard, because the hub had a backlog in the read-ahead.",
		}),
		moved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_events_moved_total",
			Help: "Domain events of a flooding hub moved to its events-overflow subject (HUBHOOKS_EVENTS_OVERFLOW) instead of waiting in the read-ahead.",
		}),
		readBack: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_overflow_events_taken_total",
			Help: "Domain events read back from HUBHOOKS_EVENTS_OVERFLOW into the read-ahead (redeliveries included).",
		}),
		moveErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_expander_overflow_errors_total",
			Help: "Failed moves to, and fetches from, HUBHOOKS_EVENTS_OVERFLOW (a failed move hands the event back to the stream).",
		}),
		readAhead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubhooks_expander_read_ahead_events",
			Help: "Domain events read from the stream and waiting for their hub's turn (the expander's backlog in this replica).",
		}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.received, m.expanded, m.skipped, m.deadLettered, m.retried, m.jobs, m.messages, m.webhooks, m.fetchErrors, m.seenErrors, m.latency, m.readAhead, m.consumerLost, m.position, m.overflowed, m.moved, m.readBack, m.moveErrors} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}
