package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/services/deliverer"
)

// Scenarios of the run subcommand.
const (
	scenarioThroughput = "throughput"
	scenarioFairness   = "fairness"
	scenarioNoisy      = "noisy"
	scenarioReplay     = "replay"
)

// benchConfig is the run subcommand's settings.
type benchConfig struct {
	scenario        string
	duration        time.Duration
	rate            float64
	hubs            int
	urls            int
	hangURLs        int
	payload         int
	event           string
	window          int
	target          string
	hubdBin         string
	natsURL         string
	grpcAddr        string
	adminToken      string
	redisURL        string
	ownRedis        bool
	redisPrefix     string
	pids            string
	metricsURLs     string
	jsonOut         string
	skipCeilings    bool
	ceilingDuration time.Duration
	postConcurrency int
	drainTimeout    time.Duration
	tailWindow      time.Duration // the window of a phase's worst latencies (sampleTails)
	cpuProfile      string
	selfProfile     string
	keep            bool
	trace           bool // time the paced traffic through hubd's stages
	traceCSV        string

	fair   fairnessConfig
	noisy  noisyConfig
	replay replayConfig
}

// fairnessConfig shapes the fairness scenario.
type fairnessConfig struct {
	burstEvents   int           // domain events the bursting hub publishes at once
	burstURLs     int           // its callback URLs
	burstWindow   int           // most of its publishes awaiting their ack
	burstDelay    time.Duration // how long its receivers take to answer
	quietRate     float64       // events/s of the one quiet hub
	quietHubs     int           // hubs of the many-quiet phases
	quietHubsRate float64       // events/s of all of them together
	quietFor      time.Duration // how long the quiet-only phases publish
}

// noisyConfig shapes the noisy-URL scenario.
type noisyConfig struct {
	rate float64       // events/s of the fixed-rate phases (one healthy URL: deliveries/s)
	dur  time.Duration // how long each phase publishes
}

// replayConfig shapes the replay scenario.
type replayConfig struct {
	deliveries int           // deliveries the replay makes (rounded up to whole domain events)
	urls       int           // callback URLs of the replaying hub
	sameRate   float64       // live events/s of the replaying hub itself
	otherHubs  int           // other hubs with live traffic (one URL each)
	otherRate  float64       // live events/s of all of them together
	liveFor    time.Duration // how long the live-only phase publishes
}

// parseBenchFlags parses the run subcommand's arguments.
func parseBenchFlags(args []string, stderr io.Writer) (*benchConfig, error) {
	fs := flag.NewFlagSet("hubbench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &benchConfig{}
	fs.StringVar(&c.scenario, "scenario", scenarioThroughput, "throughput: one load shape against the ceilings; fairness: a burst of one hub beside quiet hubs (issue 19); noisy: a never-answering URL beside a healthy one at a fixed and at the highest rate; replay: live traffic alone and beside a replay of -replay-deliveries (issue 20)")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "throughput: how long to publish")
	fs.Float64Var(&c.rate, "rate", 0, "throughput: domain events per second; 0 = as fast as the pipeline takes them (bounded by -window)")
	fs.IntVar(&c.hubs, "hubs", 1, "throughput: hubs to configure")
	fs.IntVar(&c.urls, "urls", 5, "throughput: callback URLs per hub (1-5), each a distinct local receiver port")
	fs.IntVar(&c.hangURLs, "hang-urls", 0, "throughput: extra callback URLs per hub that accept connections and never answer (isolation test); latency is measured on the healthy URLs")
	fs.IntVar(&c.payload, "payload", 512, "bytes of entity data per domain event")
	fs.StringVar(&c.event, "event", "USER.UPDATED", "domain subject: USER.UPDATED emits one webhook per URL; API.CREATED cascades to six")
	fs.IntVar(&c.window, "window", 256, "most domain events in flight end to end in closed-loop publishing (published, deliveries not all received); also bounds unacknowledged async publishes")
	fs.StringVar(&c.target, "target", "hubd", "hubd: start the hubd binary as a child process; external: a running deployment (-nats-url, -grpc-addr)")
	fs.StringVar(&c.hubdBin, "hubd", defaultHubdBin(), "hubd binary for -target hubd")
	fs.StringVar(&c.natsURL, "nats-url", "", "NATS of the external deployment")
	fs.StringVar(&c.grpcAddr, "grpc-addr", "", "configsvc gRPC address of the external deployment")
	fs.StringVar(&c.adminToken, "admin-token", daemon.Env("HUBHOOKS_ADMIN_TOKEN", ""), "admin bearer token for gRPC (HUBHOOKS_ADMIN_TOKEN; unneeded on loopback)")
	fs.StringVar(&c.redisURL, "redis-url", daemon.Env("HUBHOOKS_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis the system uses (memory per log entry), unless -own-redis")
	fs.BoolVar(&c.ownRedis, "own-redis", true, "hubd: start a private redis-server (from PATH, no persistence) on a free port for the run, so its CPU is the run's alone; falls back to -redis-url when there is none")
	fs.StringVar(&c.redisPrefix, "redis-prefix", "", "external: the deployment's HUBHOOKS_REDIS_PREFIX, to count its keys (optional)")
	fs.StringVar(&c.pids, "pids", "", "external: processes to sample, name=pid,name=pid (or pid,pid)")
	fs.StringVar(&c.metricsURLs, "metrics", "", "external: comma-separated /metrics URLs whose non-zero hubhooks_*_total counters go into the result")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&c.skipCeilings, "skip-ceilings", false, "skip the raw HTTP POST and JetStream ceilings (and with them the bare client's CPU per POST)")
	fs.DurationVar(&c.ceilingDuration, "ceiling-duration", 5*time.Second, "how long each ceiling runs")
	fs.IntVar(&c.postConcurrency, "post-concurrency", 0, "concurrent senders of the POST ceiling; 0 = what the deliverer's defaults allow for the scenario's hubs and URLs")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 120*time.Second, "after publishing, wait at most this long for the expected deliveries")
	fs.DurationVar(&c.tailWindow, "tail-window", time.Second, "fairness, noisy, replay: report each traffic's worst latency per window of this length (10ms or more)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "hubd: run it with HUBHOOKS_PPROF=true and save a CPU profile here (heap profile at <file>.heap): throughput, of the publishing window; fairness, of the burst alone (20 s at most)")
	fs.StringVar(&c.selfProfile, "self-cpuprofile", "", "throughput: save a CPU profile of this tool (publisher and receivers) during the publishing window here")
	fs.BoolVar(&c.trace, "trace", false, "hubd: time the rate-paced (quiet) traffic's webhooks through each stage of hubd and report it per traffic; the tool begins their traces, hubd records only those and sends them to the tool over OTLP")
	fs.StringVar(&c.traceCSV, "trace-csv", "", "with -trace: also write every traced delivery's stages to this CSV file, one row each")
	fs.BoolVar(&c.keep, "keep", false, "keep hubd's temp data dir and log, and the run's Redis keys")

	fs.IntVar(&c.fair.burstEvents, "burst-events", 20000, "fairness: domain events the bursting hub publishes at once")
	fs.IntVar(&c.fair.burstURLs, "burst-urls", 5, "fairness: callback URLs of the bursting hub (1-5)")
	fs.IntVar(&c.fair.burstWindow, "burst-window", 1024, "fairness: most of the burst's publishes awaiting their JetStream ack")
	fs.DurationVar(&c.fair.burstDelay, "burst-answer-delay", 0, "fairness: the bursting hub's receivers answer this long after a webhook arrives, as distant receivers would (latency is taken on arrival)")
	fs.Float64Var(&c.fair.quietRate, "quiet-rate", 20, "fairness: events/s of the quiet hub (one URL)")
	fs.IntVar(&c.fair.quietHubs, "quiet-hubs", 100, "fairness: quiet hubs (one URL each) of the many-hubs phases")
	fs.Float64Var(&c.fair.quietHubsRate, "quiet-hubs-rate", 200, "fairness: events/s of all the many quiet hubs together")
	fs.DurationVar(&c.fair.quietFor, "quiet-duration", 10*time.Second, "fairness: how long the quiet-only phases publish")
	fs.Float64Var(&c.noisy.rate, "noisy-rate", 1000, "noisy: events/s of the fixed-rate phases (one healthy URL, so deliveries/s)")
	fs.DurationVar(&c.noisy.dur, "noisy-duration", 20*time.Second, "noisy: how long each phase publishes")
	fs.IntVar(&c.replay.deliveries, "replay-deliveries", 100000, "replay: deliveries the replay makes (its hub's events, published while its triggers were off)")
	fs.IntVar(&c.replay.urls, "replay-urls", 5, "replay: callback URLs of the replaying hub (1-5)")
	fs.Float64Var(&c.replay.sameRate, "replay-same-rate", 20, "replay: live events/s of the replaying hub itself")
	fs.IntVar(&c.replay.otherHubs, "replay-other-hubs", 10, "replay: other hubs with live traffic, one URL each")
	fs.Float64Var(&c.replay.otherRate, "replay-other-rate", 100, "replay: live events/s of all the other hubs together")
	fs.DurationVar(&c.replay.liveFor, "replay-live-duration", 20*time.Second, "replay: how long the live-only phase publishes")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("run: unexpected arguments %v", fs.Args())
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.postConcurrency == 0 {
		c.postConcurrency = defaultPostConcurrency(c.senderShape())
	}
	return c, nil
}

// senderShape is the hubs and URLs per hub whose deliveries the POST
// ceiling stands for: the scenario's busiest shape.
func (c *benchConfig) senderShape() (hubs, urls int) {
	switch c.scenario {
	case scenarioFairness:
		return 1, c.fair.burstURLs
	case scenarioNoisy:
		return 1, 1
	case scenarioReplay:
		return 1, c.replay.urls
	}
	return c.hubs, c.urls
}

// defaultPostConcurrency is as many concurrent senders as the deliverer
// (its defaults) could keep in flight for hubs hubs of urls URLs each.
func defaultPostConcurrency(hubs, urls int) int {
	d := deliverer.Config{}.WithDefaults()
	return min(d.Concurrency, hubs*d.PerHubConcurrency, hubs*urls*d.PerURLConcurrency)
}

func (c *benchConfig) validate() error {
	var errs []error
	switch c.scenario {
	case scenarioThroughput, scenarioFairness, scenarioNoisy, scenarioReplay:
	default:
		errs = append(errs, fmt.Errorf("-scenario %q: want %s, %s, %s or %s", c.scenario, scenarioThroughput, scenarioFairness, scenarioNoisy, scenarioReplay))
	}
	if c.duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	if c.rate < 0 {
		errs = append(errs, errors.New("-rate must not be negative"))
	}
	if c.hubs < 1 || c.hubs > 1000 {
		errs = append(errs, errors.New("-hubs must be 1 to 1000"))
	}
	if c.urls < 1 || c.urls > 5 {
		errs = append(errs, errors.New("-urls must be 1 to 5 (a hub has at most five callback URLs)"))
	}
	if c.hangURLs < 0 || c.urls+c.hangURLs > 5 {
		errs = append(errs, errors.New("-hang-urls must be 0 to 5 minus -urls (a hub has at most five callback URLs)"))
	}
	if c.payload < 0 || c.payload > 512<<10 {
		errs = append(errs, errors.New("-payload must be 0 to 512 KiB"))
	}
	if c.window < 1 {
		errs = append(errs, errors.New("-window must be positive"))
	}
	if c.ceilingDuration <= 0 {
		errs = append(errs, errors.New("-ceiling-duration must be positive"))
	}
	if c.tailWindow < 10*time.Millisecond {
		errs = append(errs, errors.New("-tail-window must be 10ms or more"))
	}
	if c.drainTimeout <= 0 {
		errs = append(errs, errors.New("-drain-timeout must be positive"))
	}
	f := c.fair
	if f.burstEvents < 1 {
		errs = append(errs, errors.New("-burst-events must be positive"))
	}
	if f.burstURLs < 1 || f.burstURLs > 5 {
		errs = append(errs, errors.New("-burst-urls must be 1 to 5"))
	}
	if f.burstWindow < 1 {
		errs = append(errs, errors.New("-burst-window must be positive"))
	}
	if f.burstDelay < 0 || f.burstDelay > 10*time.Second {
		errs = append(errs, errors.New("-burst-answer-delay must be 0 to 10s"))
	}
	if f.quietRate <= 0 || f.quietHubsRate <= 0 {
		errs = append(errs, errors.New("-quiet-rate and -quiet-hubs-rate must be positive"))
	}
	if f.quietHubs < 1 || f.quietHubs > 1000 {
		errs = append(errs, errors.New("-quiet-hubs must be 1 to 1000"))
	}
	if f.quietFor <= 0 {
		errs = append(errs, errors.New("-quiet-duration must be positive"))
	}
	if c.noisy.rate <= 0 || c.noisy.dur <= 0 {
		errs = append(errs, errors.New("-noisy-rate and -noisy-duration must be positive"))
	}
	r := c.replay
	if r.deliveries < 1 || r.urls < 1 || r.urls > 5 {
		errs = append(errs, errors.New("-replay-deliveries must be positive and -replay-urls 1 to 5"))
	}
	if r.sameRate <= 0 || r.otherRate <= 0 || r.otherHubs < 1 || r.otherHubs > 1000 || r.liveFor <= 0 {
		errs = append(errs, errors.New("-replay-same-rate, -replay-other-rate and -replay-live-duration must be positive, -replay-other-hubs 1 to 1000"))
	}
	if c.traceCSV != "" && !c.trace {
		errs = append(errs, errors.New("-trace-csv needs -trace"))
	}
	switch c.target {
	case "hubd":
	case "external":
		if c.natsURL == "" || c.grpcAddr == "" {
			errs = append(errs, errors.New("-target external needs -nats-url and -grpc-addr"))
		}
		if c.cpuProfile != "" {
			errs = append(errs, errors.New("-cpuprofile needs -target hubd"))
		}
		if c.trace {
			errs = append(errs, errors.New("-trace needs -target hubd (it sets hubd's tracing)"))
		}
		if c.scenario == scenarioNoisy {
			errs = append(errs, errors.New("-scenario noisy needs -target hubd (each phase starts a fresh hubd)"))
		}
		if c.scenario == scenarioReplay {
			errs = append(errs, errors.New("-scenario replay needs -target hubd (it switches a hub's triggers off and replays over hubd's gRPC address)"))
		}
	default:
		errs = append(errs, fmt.Errorf("-target %q: want hubd or external", c.target))
	}
	return errors.Join(errs...)
}

func defaultHubdBin() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "hubd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "bin/hubd"
}
