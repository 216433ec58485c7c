package deliverer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	attempts         *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	inFlight         prometheus.Gauge
	held             prometheus.Gauge
	retries          prometheus.Counter
	retriesPublished prometheus.Counter
	dead             prometheus.Counter
	cancelled        prometheus.Counter
	breakerChanges   *prometheus.CounterVec
	queueFull        prometheus.Counter
	parked           *prometheus.CounterVec
	skippedRecorded  prometheus.Counter
	rewound          prometheus.Counter
	poison           prometheus.Counter
	urlReplaced      prometheus.Counter
	consumerLost     prometheus.Counter
	handlingErrors   *prometheus.CounterVec
	overflowMoved    prometheus.Counter
	overflowTaken    prometheus.Counter
	runnersStarted   prometheus.Counter
	urlLimitChanges  *prometheus.CounterVec
	brakeLimit       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_attempts_total",
			Help: "Delivery attempts and cancellations recorded, by the delivery's status after them.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hubhooks_deliverer_attempt_duration_seconds",
			Help:    "Duration of webhook POSTs, by result (success, http_error, error, circuit_open).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
		}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubhooks_deliverer_in_flight",
			Help: "Webhook POSTs in flight in this replica.",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubhooks_deliverer_jobs_held",
			Help: "Delivery jobs fetched and not yet acknowledged (queued or in flight) in this replica.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_retries_scheduled_total",
			Help: "Retries stored in Redis for a later attempt.",
		}),
		retriesPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_retries_published_total",
			Help: "Due retries republished as delivery jobs.",
		}),
		dead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_dead_total",
			Help: "Deliveries whose last scheduled attempt failed.",
		}),
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_cancelled_total",
			Help: "Deliveries cancelled because their URL was removed or the hub's triggers were disabled.",
		}),
		breakerChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_breaker_state_changes_total",
			Help: "Per-URL circuit breaker state changes, by new state.",
		}, []string{"to"}),
		skippedRecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_redelivered_jobs_skipped_total",
			Help: "Jobs of messages delivered again whose attempt the event log already holds: settled without a second POST.",
		}),
		rewound: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_rewound_messages_total",
			Help: "Messages a consumer handed out again as first deliveries (a clustered consumer's new leader that lost track of what it had delivered): checked against the event log before their POSTs.",
		}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_held_jobs_parked_total",
			Help: "Jobs held past the hold limit and moved to the retry store, by state (queued, in_flight).",
		}, []string{"state"}),
		queueFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_queue_full_total",
			Help: "Jobs that found their URL's lane full: parked in the retry store, or failed fast when the URL does not answer.",
		}),
		poison: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_poison_jobs_total",
			Help: "Undecodable or invalid jobs moved to the dead-letter stream.",
		}),
		urlReplaced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_job_url_replaced_total",
			Help: "Jobs whose URL differed from the one the hub's config holds for their url_id: they were sent to the config's URL (a URL changed since the job was made, or a job altered on its way).",
		}),
		consumerLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_consumer_lost_total",
			Help: "Times the deliverer found its durable consumer or the deliveries stream deleted and made it again.",
		}),
		handlingErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_errors_total",
			Help: "Infrastructure errors while handling jobs (the job is retried), by stage.",
		}, []string{"stage"}),
		overflowMoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_overflow_moved_total",
			Help: "Live delivery messages moved to their hub's overflow shard because the replica held the hub's share of work.",
		}),
		overflowTaken: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_overflow_taken_total",
			Help: "Delivery messages taken from the overflow shards (with the room live traffic left).",
		}),
		runnersStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_runners_started_total",
			Help: "Goroutines started to run attempts and records because none was waiting for work; under steady load it levels off.",
		}),
		urlLimitChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubhooks_deliverer_url_limit_changes_total",
			Help: "Changes of a callback URL's adaptive limit on POSTs in flight, by direction (down: its answers slowed as more were sent; up: they did not).",
		}, []string{"direction"}),
		brakeLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubhooks_deliverer_backlog_brake_limit",
			Help: "POSTs in flight the backlog brake allows jobs taken from overflow (Config.BacklogBrake; the replica's concurrency while it is open).",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.attempts, m.latency, m.inFlight, m.held, m.retries, m.retriesPublished, m.dead, m.cancelled,
		m.breakerChanges, m.queueFull, m.parked, m.skippedRecorded, m.rewound, m.poison, m.urlReplaced, m.consumerLost, m.handlingErrors,
		m.overflowMoved, m.overflowTaken, m.runnersStarted, m.urlLimitChanges, m.brakeLimit,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register deliverer metrics: %w", err)
		}
	}
	return m, nil
}
