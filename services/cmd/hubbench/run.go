package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/auth"
	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/daemon"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/urlguard"
	"github.com/hubhooks/hubhooks/pkg/webhook"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/ceiling"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/procstat"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/report"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/sink"
	"github.com/hubhooks/hubhooks/services/deliverer"
)

// benchConfig is the run subcommand's settings.
type benchConfig struct {
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
	redisPrefix     string
	pids            string
	metricsURLs     string
	jsonOut         string
	skipCeilings    bool
	ceilingDuration time.Duration
	postConcurrency int
	drainTimeout    time.Duration
	cpuProfile      string
	selfProfile     string
	keep            bool
}

func (c *benchConfig) validate() error {
	var errs []error
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
	if c.drainTimeout <= 0 {
		errs = append(errs, errors.New("-drain-timeout must be positive"))
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

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubbench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &benchConfig{}
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long to publish")
	fs.Float64Var(&c.rate, "rate", 0, "domain events per second; 0 = as fast as the pipeline takes them (bounded by -window)")
	fs.IntVar(&c.hubs, "hubs", 1, "hubs to configure")
	fs.IntVar(&c.urls, "urls", 5, "callback URLs per hub (1-5), each a distinct local receiver port")
	fs.IntVar(&c.hangURLs, "hang-urls", 0, "extra callback URLs per hub that accept connections and never answer (isolation test); latency is measured on the healthy URLs")
	fs.IntVar(&c.payload, "payload", 512, "bytes of entity data per domain event")
	fs.StringVar(&c.event, "event", "USER.UPDATED", "domain subject: USER.UPDATED emits one webhook per URL; API.CREATED cascades to six")
	fs.IntVar(&c.window, "window", 256, "most domain events in flight end to end (published, deliveries not all received); also bounds unacknowledged async publishes")
	fs.StringVar(&c.target, "target", "hubd", "hubd: start the hubd binary as a child process; external: a running deployment (-nats-url, -grpc-addr)")
	fs.StringVar(&c.hubdBin, "hubd", defaultHubdBin(), "hubd binary for -target hubd")
	fs.StringVar(&c.natsURL, "nats-url", "", "NATS of the external deployment")
	fs.StringVar(&c.grpcAddr, "grpc-addr", "", "configsvc gRPC address of the external deployment")
	fs.StringVar(&c.adminToken, "admin-token", daemon.Env("HUBHOOKS_ADMIN_TOKEN", ""), "admin bearer token for gRPC (HUBHOOKS_ADMIN_TOKEN; unneeded on loopback)")
	fs.StringVar(&c.redisURL, "redis-url", daemon.Env("HUBHOOKS_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis the system uses (memory per log entry)")
	fs.StringVar(&c.redisPrefix, "redis-prefix", "", "external: the deployment's HUBHOOKS_REDIS_PREFIX, to count its keys (optional)")
	fs.StringVar(&c.pids, "pids", "", "external: processes to sample, name=pid,name=pid (or pid,pid)")
	fs.StringVar(&c.metricsURLs, "metrics", "", "external: comma-separated /metrics URLs whose non-zero hubhooks_*_total counters go into the result")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&c.skipCeilings, "skip-ceilings", false, "skip the raw HTTP POST and JetStream ceilings")
	fs.DurationVar(&c.ceilingDuration, "ceiling-duration", 5*time.Second, "how long each ceiling runs")
	fs.IntVar(&c.postConcurrency, "post-concurrency", 0, "concurrent senders of the POST ceiling; 0 = what the deliverer's defaults allow for these hubs and URLs")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 120*time.Second, "after publishing, wait at most this long for the expected deliveries")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "hubd: run it with HUBHOOKS_PPROF=true and save a CPU profile of the publishing window here (heap profile at <file>.heap)")
	fs.StringVar(&c.selfProfile, "self-cpuprofile", "", "save a CPU profile of this tool (publisher and receivers) during the publishing window here")
	fs.BoolVar(&c.keep, "keep", false, "keep hubd's temp data dir and log, and the run's Redis keys")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected arguments %v", fs.Args())
	}
	if err := c.validate(); err != nil {
		return err
	}
	if c.postConcurrency == 0 {
		// As many concurrent senders as the deliverer (its defaults) could keep
		// in flight for the same hubs and URLs.
		d := deliverer.Config{}.WithDefaults()
		c.postConcurrency = min(d.Concurrency, c.hubs*d.PerHubConcurrency, c.hubs*c.urls*d.PerURLConcurrency)
	}
	res, err := bench(ctx, c, stderr)
	if res != nil {
		if perr := res.PrintTable(stdout); perr != nil {
			err = errors.Join(err, perr)
		}
		if c.jsonOut != "" {
			if jerr := res.WriteJSONFile(c.jsonOut); jerr != nil {
				err = errors.Join(err, jerr)
			}
		}
		if err == nil && res.Missing > 0 {
			err = fmt.Errorf("%d deliveries missing", res.Missing)
		}
	}
	return err
}

// Traffic classes of domain event ids (see package sink).
const (
	classRun     = "r"
	classWarm    = "w"
	classCeiling = "c"
)

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// eventFactory builds the run's domain events.
type eventFactory struct {
	subject string
	entity  string // data field of the entity, e.g. "user"
	pad     *structpb.Value
	extra   map[string]*structpb.Value // e.g. baseUrls for API.CREATED
}

func newEventFactory(rules *cascade.Rules, subject string, payload int) (*eventFactory, error) {
	if !rules.Has(subject) {
		return nil, fmt.Errorf("-event %q: no cascade rule for it", subject)
	}
	entity, _, _ := strings.Cut(subject, ".")
	field, ok := rules.PayloadField(entity)
	if !ok {
		field = strings.ToLower(entity)
	}
	// The entity's JSON is {"id":"e<seq>","name":"<pad>","sentAt":<19 digits>}:
	// about 50 bytes of framing, the rest is padding.
	pad := strings.Repeat("x", max(0, payload-50))
	f := &eventFactory{subject: subject, entity: field, pad: structpb.NewStringValue(pad), extra: map[string]*structpb.Value{}}
	if subject == "API.CREATED" {
		f.extra["baseUrls"] = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{
			structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"url": structpb.NewStringValue("https://bench.example.com")}}),
		}})
	}
	return f, nil
}

func (f *eventFactory) event(id, hubID string, seq int64, sent time.Time) *eventsv1.DomainEvent {
	fields := map[string]*structpb.Value{
		f.entity: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"id":     structpb.NewStringValue(fmt.Sprintf("e%d", seq)),
			"name":   f.pad,
			"sentAt": structpb.NewNumberValue(float64(sent.UnixNano())),
		}}),
	}
	for k, v := range f.extra {
		fields[k] = v
	}
	return &eventsv1.DomainEvent{
		Id: id, HubId: hubID, Type: f.subject, OccurredAt: timestamppb.New(sent),
		Data: &structpb.Struct{Fields: fields}, Actor: "hubbench",
	}
}

func (f *eventFactory) msg(class string, seq int64, hubID string) (*nats.Msg, error) {
	sent := time.Now()
	id := sink.EventID(class, seq, sent)
	// The generated encoder: the tool's own publishing shares the machine
	// with the system under test, so it should cost as little as it can.
	b, err := f.event(id, hubID, seq, sent).MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encode domain event: %w", err)
	}
	m := nats.NewMsg(f.subject)
	m.Header.Set(eventbus.HeaderContentType, eventbus.ContentTypeProtobuf)
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = b
	return m, nil
}

// bench runs everything; the result is returned even on error when there is
// something to show.
func bench(ctx context.Context, c *benchConfig, log io.Writer) (*report.Result, error) {
	runID := newRunID()
	logf := func(format string, a ...any) { fmt.Fprintf(log, "hubbench: "+format+"\n", a...) }
	rules := cascade.Default()
	factory, err := newEventFactory(rules, c.event, c.payload)
	if err != nil {
		return nil, err
	}
	probe := factory.event(sink.EventID(classRun, 0, time.Now()), "h", 0, time.Now())
	emitted, err := rules.Expand(c.event, probe.GetData())
	if err != nil {
		return nil, fmt.Errorf("expand %s: %w", c.event, err)
	}
	perEvent := int64(len(emitted) * c.urls)
	if perEvent == 0 {
		return nil, fmt.Errorf("-event %s emits no webhook events", c.event)
	}
	res := &report.Result{
		Version: webhook.Version, Started: time.Now().UTC(), Machine: report.ReadMachine(runtime.Version()),
		Params: report.Params{
			Target: c.target, DurationSec: c.duration.Seconds(), Rate: c.rate, Hubs: c.hubs, URLsPerHub: c.urls,
			PayloadBytes: c.payload, Event: c.event, Window: c.window, EmittedPerEvent: len(emitted),
		},
	}

	// The receiver: one loopback port per callback URL.
	rx := sink.New(http.StatusOK, classRun, classWarm, classCeiling)
	urls, err := rx.Listen(c.hubs * c.urls)
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rx.Close(sctx)
	}()

	var post func() (ceiling.Result, error)
	if !c.skipCeilings {
		if post, err = runCeilings(ctx, c, res, factory, urls, runID, logf); err != nil {
			return res, err
		}
	}

	// The system under test.
	var tg *target
	switch c.target {
	case "hubd":
		tg, err = startHubd(ctx, hubdOptions{bin: c.hubdBin, redisURL: c.redisURL, runID: runID, pprof: c.cpuProfile != "", keep: c.keep, log: log})
		if err != nil {
			return res, err
		}
	default:
		procs, err := parsePids(c.pids)
		if err != nil {
			return res, err
		}
		tg = &target{natsURL: c.natsURL, grpcAddr: c.grpcAddr, prefix: c.redisPrefix, procs: procs, stop: func() error { return nil }}
	}
	rdb, rdbErr := connectRedis(ctx, c.redisURL)
	stopped := false
	// stopTarget stops hubd and deletes its Redis keys (not the external
	// deployment's); it runs once, also on early return and on interrupt.
	stopTarget := func() error {
		if stopped {
			return nil
		}
		stopped = true
		err := tg.stop()
		if c.target == "hubd" && rdb != nil && !c.keep {
			deleteKeys(context.WithoutCancel(ctx), rdb, tg.prefix, 60*time.Second)
		}
		return err
	}
	defer func() {
		_ = stopTarget()
		if rdb != nil {
			_ = rdb.Close()
		}
	}()
	if rdb != nil {
		if pid, err := redisPID(ctx, rdb); err == nil {
			if _, err := procstat.Read(pid); err == nil {
				tg.procs = append(tg.procs, proc{name: "redis-server", pid: pid})
			}
		}
	}
	tg.procs = append(tg.procs, proc{name: "hubbench (this tool)", pid: os.Getpid()})

	nc, err := nats.Connect(tg.natsURL, nats.Name("hubbench"), nats.MaxReconnects(-1))
	if err != nil {
		return res, fmt.Errorf("connect nats %s: %w", tg.natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(c.window+16))
	if err != nil {
		return res, err
	}
	conn, err := dialGRPC(tg.grpcAddr, c.adminToken)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	cfgClient := hubhooksv1.NewConfigServiceClient(conn)

	hubs, err := setupHubs(ctx, cfgClient, runID, c.hubs, urls, c.urls)
	if err != nil {
		return res, err
	}
	if c.hangURLs > 0 {
		hang, err := listenHanging(ctx)
		if err != nil {
			return res, err
		}
		for _, hub := range hubs {
			for i := range c.hangURLs {
				u := fmt.Sprintf("http://%s/hang-%d", hang, i)
				if _, err := cfgClient.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: u}); err != nil {
					return res, fmt.Errorf("add hanging URL: %w", err)
				}
			}
		}
		res.Notes = append(res.Notes, fmt.Sprintf("%d never-answering URL(s) per hub beside the %d healthy one(s); latency is of the healthy URLs", c.hangURLs, c.urls))
	}
	logf("configured %d hub(s) x %d URL(s) (+%d never answering); warming up", c.hubs, c.urls, c.hangURLs)
	if err := waitStream(ctx, js, eventbus.StreamEvents, 30*time.Second); err != nil {
		return res, err
	}
	if err := warmUp(ctx, js, factory, rx.Class(classWarm), hubs, perEvent, logf); err != nil {
		return res, err
	}
	logf("warm-up done")
	loggerCaughtUp(ctx, js, 15*time.Second)

	// Baselines.
	metricsURLs := strings.FieldsFunc(c.metricsURLs, func(r rune) bool { return r == ',' })
	if tg.httpAddr != "" {
		metricsURLs = append(metricsURLs, "http://"+tg.httpAddr+"/metrics")
	}
	trimmedBefore, trimmedKnown := trimmed(fetchAll(ctx, metricsURLs, nil))
	before := sampleAll(tg.procs)
	var rs *report.Redis
	if rdbErr != nil {
		rs = &report.Redis{Error: rdbErr.Error()}
	} else if used, err := usedMemory(ctx, rdb); err != nil {
		rs = &report.Redis{Error: err.Error()}
	} else {
		rs = &report.Redis{UsedMemoryBefore: used, Keys: -1}
	}
	var profDone chan error
	if c.cpuProfile != "" && tg.httpAddr != "" {
		secs := int(min(c.duration, 120*time.Second).Seconds())
		profDone = make(chan error, 1)
		go func() {
			profDone <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", tg.httpAddr, secs), c.cpuProfile, time.Duration(secs+30)*time.Second)
		}()
	}

	stopSelfProfile, err := startSelfProfile(c.selfProfile)
	if err != nil {
		return nil, err
	}
	// Measured run, sampled every second.
	run := rx.Class(classRun)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	timelineDone := make(chan []report.Point, 1)
	go func() { timelineDone <- sampleTimeline(sampleCtx, tg.procs, run) }()
	logf("publishing %s for %s (rate %s)", c.event, c.duration, rateStr(c.rate))
	start := time.Now()
	// Deliveries done, as far as the window is concerned: the slowest
	// destination's count for every destination, so one URL that lags (its
	// lane queues, the others race ahead) cannot let the window grow.
	dests := len(hubs) * c.urls
	done := func() int64 { return run.MinPerDestination(dests) * int64(dests) }
	pub := publish(ctx, js, factory, hubs, c.duration, c.rate, c.window, done, perEvent)
	if err := stopSelfProfile(); err != nil {
		res.Notes = append(res.Notes, "self cpu profile: "+err.Error())
	}
	res.DeliveredWhilePublishing = run.Counts().Unique
	res.EventsPublished, res.PublishErrors = pub.acked, pub.errors
	res.PublishSeconds = pub.elapsed.Seconds()
	res.DeliveriesExpected = pub.acked * perEvent
	logf("published %d events (%d errors) in %.1fs; waiting for %d deliveries", pub.acked, pub.errors, res.PublishSeconds, res.DeliveriesExpected)
	if c.rate > 0 && res.PublishSeconds > 0 && float64(pub.acked)/res.PublishSeconds < 0.95*c.rate {
		res.Notes = append(res.Notes, fmt.Sprintf("published %.0f events/s, below the requested %.0f/s: the pipeline did not keep up within the window of %d events", float64(pub.acked)/res.PublishSeconds, c.rate, c.window))
	}
	drain(ctx, run, res.DeliveriesExpected, c.drainTimeout, logf)
	counts := run.Counts()
	res.DeliveriesReceived = counts.Unique
	res.Duplicates = counts.Duplicates
	res.ReceiverErrors = rx.Errors() + rx.Unknown()
	if !counts.Last.IsZero() {
		res.DeliverySeconds = counts.Last.Sub(start).Seconds()
	}
	res.Latency = run.Latency()
	stopSampling()
	res.Timeline = <-timelineDone
	caught := loggerCaughtUp(ctx, js, 60*time.Second)
	after := sampleAll(tg.procs)
	window := time.Since(start)
	res.Processes = diffProcs(tg.procs, before, after, window)
	if profDone != nil {
		if err := <-profDone; err != nil {
			res.Notes = append(res.Notes, "cpu profile: "+err.Error())
		} else {
			res.Notes = append(res.Notes, "cpu profile written to "+c.cpuProfile)
			if err := fetchProfile(ctx, "http://"+tg.httpAddr+"/debug/pprof/heap", c.cpuProfile+".heap", 30*time.Second); err != nil {
				res.Notes = append(res.Notes, "heap profile: "+err.Error())
			}
		}
	}
	texts := fetchAll(ctx, metricsURLs, func(err error) { res.Notes = append(res.Notes, "metrics: "+err.Error()) })
	for i, u := range metricsURLs {
		if texts[i] == "" {
			continue
		}
		m := parseCounters(texts[i])
		if res.Counters == nil {
			res.Counters = map[string]float64{}
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			res.Counters[k] += m[k]
			if notable(k) {
				res.Notes = append(res.Notes, fmt.Sprintf("counter %s = %.0f (%s)", k, m[k], u))
			}
		}
	}
	if rs.Error == "" {
		if used, err := usedMemory(ctx, rdb); err != nil {
			rs.Error = err.Error()
		} else {
			rs.UsedMemoryAfter, rs.Entries, rs.LoggerCaughtUp = used, res.DeliveriesReceived, caught
			// The logger trims each hub's oldest entries beyond its
			// retention: count only the entries still held.
			if trimmedAfter, ok := trimmed(texts); ok && trimmedKnown {
				rs.Trimmed = int64(trimmedAfter - trimmedBefore)
				rs.Entries -= rs.Trimmed
			} else {
				res.Notes = append(res.Notes, "logger trim counter not available (pass -metrics): bytes per entry assumes nothing was trimmed")
			}
			if tg.prefix != "" {
				rs.Keys = countKeys(ctx, rdb, tg.prefix, 20*time.Second)
			}
		}
	}
	res.Redis = rs
	if err := stopTarget(); err != nil {
		res.Notes = append(res.Notes, err.Error())
	}
	if post != nil {
		// The POST ceiling again, with hubd stopped (an external
		// deployment idle), as for the first: the machine's speed drifts,
		// and the ratio uses the mean of both.
		logf("ceiling: raw HTTP POSTs again for %s", c.ceilingDuration)
		if h, err := post(); err != nil {
			res.Notes = append(res.Notes, "POST ceiling after the run: "+err.Error())
		} else {
			res.HTTPCeilingAfter = &h
		}
	}
	res.Finish()
	return res, nil
}

// fetchAll reads each Prometheus text endpoint once; a URL that fails
// leaves "" (and is reported to onErr, when set).
func fetchAll(ctx context.Context, urls []string, onErr func(error)) []string {
	texts := make([]string, len(urls))
	for i, u := range urls {
		text, err := fetchText(ctx, u)
		if err != nil {
			if onErr != nil {
				onErr(err)
			}
			continue
		}
		texts[i] = text
	}
	return texts
}

func fetchText(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// parseCounters reads the hubhooks_* counters (names ending in _total,
// labels kept) with a non-zero value from Prometheus text.
func parseCounters(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "hubhooks_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, val := line[:i], line[i+1:]
		base, _, _ := strings.Cut(name, "{")
		if !strings.HasSuffix(base, "_total") {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil || v == 0 {
			continue
		}
		out[name] = v
	}
	return out
}

// trimmed sums hubhooks_logger_entries_trimmed_total over the metrics
// texts; ok is false when none has it.
func trimmed(texts []string) (float64, bool) {
	var sum float64
	ok := false
	for _, text := range texts {
		for _, line := range strings.Split(text, "\n") {
			if v, found := strings.CutPrefix(line, "hubhooks_logger_entries_trimmed_total "); found {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					sum += f
					ok = true
				}
			}
		}
	}
	return sum, ok
}

// notable picks counters that explain lost time or work done twice.
func notable(name string) bool {
	for _, w := range []string{"queue_full", "nak", "retr", "redeliver", "fail", "error", "poison", "dead", "dropped", "dlq"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

func rateStr(r float64) string {
	if r <= 0 {
		return "max"
	}
	return fmt.Sprintf("%.0f/s", r)
}

// runCeilings measures both ceilings into res and returns the POST ceiling
// as a function, to measure it again after the run.
func runCeilings(ctx context.Context, c *benchConfig, res *report.Result, f *eventFactory, urls []string, runID string, logf func(string, ...any)) (func() (ceiling.Result, error), error) {
	// The same client the deliverer builds (assembly.Sender): webhook.NewClient
	// with the URL guard, loopback allowed as for the run.
	guard, err := urlguard.New(urlguard.WithAllowedCIDRs("127.0.0.0/8"))
	if err != nil {
		return nil, err
	}
	client, err := webhook.NewClient(webhook.WithGuard(guard))
	if err != nil {
		return nil, err
	}
	data, err := f.event("x", "x", 0, time.Now()).GetData().GetFields()[f.entity].MarshalJSON()
	if err != nil {
		return nil, err
	}
	ev := webhook.Event{
		ID: "msg_ceiling", Type: f.subject, HubID: "bench-" + runID, CreatedAt: time.Now().UTC(), Data: data,
		DomainEvent: webhook.DomainEventRef{ID: sink.EventID(classCeiling, 0, time.Unix(0, 0)), Type: f.subject, OccurredAt: time.Now().UTC(), Actor: "hubbench"},
	}
	body, err := ev.Marshal()
	if err != nil {
		return nil, err
	}
	n := min(len(urls), c.urls*c.hubs)
	logf("ceiling: raw HTTP POSTs for %s after %s of warm-up (%d senders, %d URLs, %d B body)", c.ceilingDuration, ceilingWarmUp(c.ceilingDuration), c.postConcurrency, n, len(body))
	rounds := 0
	postFor := func(d time.Duration) (ceiling.Result, error) {
		rounds++
		return ceiling.HTTP(ctx, ceiling.HTTPConfig{
			Sender: client, URLs: urls[:n], Body: body, Secret: webhook.NewSecret(), Concurrency: c.postConcurrency,
			Duration: d, IDPrefix: fmt.Sprintf("msg_c%s_%d_", runID, rounds),
		})
	}
	post := func() (ceiling.Result, error) { return postFor(c.ceilingDuration) }
	// The first seconds of POSTs from this fresh process run slower
	// (connections opening, the receiver's maps and the heap growing, the
	// vCPUs waking up): measured 5-25 % below the rounds that follow. They
	// are not counted, or the ceiling before the run would be understated
	// and the ratio overstated.
	if _, err := postFor(ceilingWarmUp(c.ceilingDuration)); err != nil {
		return nil, err
	}
	h, err := post()
	if err != nil {
		return nil, err
	}
	res.HTTPCeiling = &h
	probe, err := f.msg(classCeiling, 0, "bench")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hubbench-js-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	logf("ceiling: raw JetStream publish+consume for %s (file store, window %d, %d B messages)", c.ceilingDuration, c.window, len(probe.Data))
	j, err := ceiling.JetStream(ctx, ceiling.JetStreamConfig{StoreDir: dir, MsgBytes: len(probe.Data), Window: c.window, Batch: 256, Duration: c.ceilingDuration})
	if err != nil {
		return nil, err
	}
	res.JetStreamCeiling = &j
	return post, nil
}

// ceilingWarmUp is how long the POST ceiling runs, uncounted, before its
// first measurement: 3 s, or the ceiling's own duration if shorter.
func ceilingWarmUp(d time.Duration) time.Duration { return min(3*time.Second, d) }

func dialGRPC(addr, token string) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.BearerCredentials(token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// setupHubs configures hubs bench-<run>-<i>, each with its own urlsPerHub
// receiver URLs and triggers on. It retries for up to 30s while the service
// is unavailable.
func setupHubs(ctx context.Context, cl hubhooksv1.ConfigServiceClient, runID string, n int, urls []string, urlsPerHub int) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(n)*time.Second)
	defer cancel()
	retry := func(what string, call func(context.Context) error) error {
		var last error
		for {
			cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
			last = call(cctx)
			ccancel()
			if last == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w", what, last)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	hubs := make([]string, n)
	for i := range n {
		hub := fmt.Sprintf("bench-%s-%d", runID, i)
		hubs[i] = hub
		for _, u := range urls[i*urlsPerHub : (i+1)*urlsPerHub] {
			if err := retry("AddCallbackUrl "+u, func(ctx context.Context) error {
				_, err := cl.AddCallbackUrl(ctx, &hubhooksv1.AddCallbackUrlRequest{HubId: hub, Url: u})
				return err
			}); err != nil {
				return nil, err
			}
		}
		if err := retry("SetEventsEnabled", func(ctx context.Context) error {
			_, err := cl.SetEventsEnabled(ctx, &hubhooksv1.SetEventsEnabledRequest{HubId: hub, Enabled: true})
			return err
		}); err != nil {
			return nil, err
		}
	}
	return hubs, nil
}

func waitStream(ctx context.Context, js jetstream.JetStream, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		_, err := js.Stream(ctx, name)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s not found within %s: %w", name, timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// warmUp makes sure every hub delivers before the measured run: for each
// hub in turn it publishes one event and waits until its deliveries arrive
// (the config reached the expander's and deliverer's caches, connections are
// open), publishing again every 3s, for at most 60s in all.
func warmUp(ctx context.Context, js jetstream.JetStream, f *eventFactory, warm *sink.Class, hubs []string, perEvent int64, logf func(string, ...any)) error {
	deadline := time.Now().Add(60 * time.Second)
	var seq int64
	for _, hub := range hubs {
		want := warm.Counts().Unique + perEvent
		for warm.Counts().Unique < want {
			m, err := f.msg(classWarm, seq, hub)
			if err != nil {
				return err
			}
			seq++
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = js.PublishMsg(pctx, m)
			cancel()
			if err != nil {
				logf("warm-up publish: %v", err)
			}
			retry := time.Now().Add(3 * time.Second)
			for warm.Counts().Unique < want && time.Now().Before(retry) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				time.Sleep(5 * time.Millisecond)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("warm-up: hub %s: no delivery within 60s: is the pipeline delivering?", hub)
			}
		}
	}
	return nil
}

// loggerCaughtUp waits until the logger's consumer on the attempts stream
// has nothing pending, so Redis holds every entry; false on timeout or when
// the consumer is not found.
func loggerCaughtUp(ctx context.Context, js jetstream.JetStream, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		cons, err := js.Consumer(ctx, eventbus.StreamAttempts, eventbus.ConsumerLogger)
		if err == nil {
			if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type pubResult struct {
	acked, errors int64
	elapsed       time.Duration
}

// publish publishes domain events for d at rate per second (0: as fast as
// the pipeline delivers them), round-robin over hubs. The window bounds
// events in flight end to end: an event is published only while fewer than
// window events' worth of deliveries are still to arrive at the slowest
// destination (delivered reports the slowest destination's deliveries times
// the destinations, perEvent is deliveries per event), so a fast JetStream
// never builds a backlog that only measures queueing. Async publishes
// awaiting their ack are bounded by the same window.
func publish(ctx context.Context, js jetstream.JetStream, f *eventFactory, hubs []string, d time.Duration, rate float64, window int, delivered func() int64, perEvent int64) pubResult {
	acks := make(chan jetstream.PubAckFuture, window)
	var res pubResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		for fut := range acks {
			select {
			case <-fut.Ok():
				res.acked++
			case <-fut.Err():
				res.errors++
			case <-time.After(30 * time.Second):
				res.errors++
			}
		}
	}()
	start := time.Now()
	end := start.Add(d)
	var seq, sendErrs int64 // sendErrs: this goroutine's; res.errors: the ack reader's
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		due := int64(1 << 62)
		if rate > 0 {
			due = int64(now.Sub(start).Seconds()*rate) + 1
			if seq >= due {
				time.Sleep(time.Millisecond)
				continue
			}
		}
		for seq < due && time.Now().Before(end) {
			if seq*perEvent-delivered() >= int64(window)*perEvent {
				time.Sleep(200 * time.Microsecond)
				break
			}
			m, err := f.msg(classRun, seq, hubs[seq%int64(len(hubs))])
			if err != nil {
				sendErrs++
				seq++
				continue
			}
			fut, err := js.PublishMsgAsync(m)
			seq++
			if err != nil {
				// The async window is full past the stall wait: count and go on.
				sendErrs++
				continue
			}
			acks <- fut // blocks while window acks are outstanding
			if rate <= 0 && seq%256 == 0 {
				break // re-check the clock and ctx
			}
		}
	}
	res.elapsed = time.Since(start)
	close(acks)
	<-done
	res.errors += sendErrs
	return res
}

// drain waits until want deliveries arrived, at most timeout, and gives up
// early when nothing arrives for 30s.
func drain(ctx context.Context, c *sink.Class, want int64, timeout time.Duration, logf func(string, ...any)) {
	deadline := time.Now().Add(timeout)
	last, lastChange, lastLog := c.Counts().Unique, time.Now(), time.Now()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		got := c.Counts().Unique
		if got >= want {
			return
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > 30*time.Second {
			logf("no delivery for 30s: %d of %d arrived", got, want)
			return
		}
		if time.Since(lastLog) > 5*time.Second {
			logf("waiting: %d of %d deliveries", got, want)
			lastLog = time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.Counts().Unique; got < want {
		logf("gave up waiting after %s: %d of %d deliveries", timeout, got, want)
	}
}

// sampleTimeline records deliveries and RSS every second until ctx ends.
func sampleTimeline(ctx context.Context, ps []proc, c *sink.Class) []report.Point {
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var out []report.Point
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		p := report.Point{Seconds: time.Since(start).Seconds(), Delivered: c.Counts().Unique, RSSBytes: map[string]int64{},
			MaxLatencyMs: float64(c.TakeWindowMax().Microseconds()) / 1000}
		for _, pr := range ps {
			if s, err := procstat.Read(pr.pid); err == nil {
				p.RSSBytes[pr.name] = s.RSSBytes
			}
		}
		out = append(out, p)
	}
}

func sampleAll(ps []proc) []*procstat.Sample {
	out := make([]*procstat.Sample, len(ps))
	for i, p := range ps {
		if s, err := procstat.Read(p.pid); err == nil {
			out[i] = &s
		}
	}
	return out
}

func diffProcs(ps []proc, before, after []*procstat.Sample, window time.Duration) []report.Process {
	out := make([]report.Process, len(ps))
	for i, p := range ps {
		out[i] = report.Process{Name: p.name, PID: p.pid}
		if before[i] == nil || after[i] == nil {
			out[i].Error = "not sampled (process gone or /proc unreadable)"
			continue
		}
		cpu := after[i].CPU - before[i].CPU
		out[i].CPUSeconds = cpu.Seconds()
		out[i].CPUPercent = 100 * cpu.Seconds() / window.Seconds()
		out[i].PeakRSSBytes = after[i].PeakRSSBytes
		out[i].RSSBytes = after[i].RSSBytes
	}
	return out
}

func connectRedis(ctx context.Context, url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", opts.Addr, err)
	}
	return rdb, nil
}

func infoField(info, key string) (string, bool) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v, true
		}
	}
	return "", false
}

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO memory: %w", err)
	}
	v, ok := infoField(info, "used_memory")
	if !ok {
		return 0, errors.New("redis INFO memory has no used_memory")
	}
	var n int64
	if _, err := fmt.Sscan(v, &n); err != nil {
		return 0, fmt.Errorf("redis used_memory %q: %w", v, err)
	}
	return n, nil
}

func redisPID(ctx context.Context, rdb *redis.Client) (int, error) {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	v, ok := infoField(info, "process_id")
	if !ok {
		return 0, errors.New("no process_id")
	}
	var pid int
	_, err = fmt.Sscan(v, &pid)
	return pid, err
}

func countKeys(ctx context.Context, rdb *redis.Client, prefix string, timeout time.Duration) int64 {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var n int64
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if iter.Err() != nil {
		return -1
	}
	return n
}

// deleteKeys removes the run's keys (only a hubbench: prefix, never anything else).
func deleteKeys(ctx context.Context, rdb *redis.Client, prefix string, timeout time.Duration) {
	if !strings.HasPrefix(prefix, "hubbench:") {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_ = daemon.UnlinkPrefix(ctx, rdb, prefix)
}

func fetchProfile(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// listenHanging accepts connections on a free loopback port and never
// answers: requests read, no response, until ctx ends.
func listenHanging(ctx context.Context) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		<-ctx.Done()
		_ = ln.Close()
	}()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// startSelfProfile starts a CPU profile of this process into path (nothing
// when path is empty); the returned func stops it and closes the file.
func startSelfProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-self-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-self-cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
