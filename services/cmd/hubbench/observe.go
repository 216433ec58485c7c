package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/procstat"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/report"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/sink"
)

// meter measures the CPU of the sampled processes over a window.
type meter struct {
	procs  []proc
	start  time.Time
	before []*procstat.Sample
}

func startMeter(procs []proc) *meter {
	return &meter{procs: procs, start: time.Now(), before: sampleAll(procs)}
}

// stop ends the window; deliveries (when positive) gives each process its
// CPU per delivery.
func (m *meter) stop(deliveries int64) []report.Process {
	ps := diffProcs(m.procs, m.before, sampleAll(m.procs), time.Since(m.start))
	report.SetPerDelivery(ps, deliveries)
	return ps
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

// streamBacklog is what a stream's consumers have still to do: the sum
// over its consumers of their pending and unacknowledged messages, from the
// services' hubhooks_consumer_pending_messages and
// hubhooks_consumer_ack_pending_messages gauges at metricsURLs (the largest
// any replica reports: replicas report the same shared consumer). It reads
// metrics, not JetStream: the tool connects to NATS as a publisher, which
// may not read the state of streams and consumers.
func streamBacklog(ctx context.Context, metricsURLs []string, stream string) (int64, error) {
	n, err := streamBacklogs(ctx, metricsURLs, stream)
	return n[0], err
}

// streamBacklogs is streamBacklog of several streams from one read of each
// metrics endpoint: a scrape costs the system under test CPU (every
// consumer's info is asked of JetStream), which counts as the run's. A
// stream the metrics do not show is -1, and named in the error.
func streamBacklogs(ctx context.Context, metricsURLs []string, streams ...string) ([]int64, error) {
	series := make([]map[string]float64, len(streams))
	for i := range series {
		series[i] = map[string]float64{}
	}
	var errs []error
	for _, u := range metricsURLs {
		ms, err := readMetrics(ctx, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, family := range []string{"hubhooks_consumer_pending_messages", "hubhooks_consumer_ack_pending_messages"} {
			for _, m := range ms[family].GetMetric() {
				if i := slices.Index(streams, label(m, "stream")); i >= 0 {
					name := seriesName(family, m)
					series[i][name] = max(series[i][name], value(m))
				}
			}
		}
	}
	out := make([]int64, len(streams))
	var missing []error
	for i, stream := range streams {
		if len(series[i]) == 0 {
			out[i] = -1
			missing = append(missing, fmt.Errorf("no backlog of %s in the metrics of %v: %w", stream, metricsURLs, errors.Join(errs...)))
			continue
		}
		var n float64
		for _, v := range series[i] {
			n += v
		}
		out[i] = int64(n)
	}
	return out, errors.Join(missing...)
}

// eventsBacklog is the domain events not yet expanded: the expander's
// backlog in HUBHOOKS_EVENTS and in HUBHOOKS_EVENTS_OVERFLOW (a flood
// moved out of other hubs' way; a build without it reports none).
func eventsBacklog(ctx context.Context, metricsURLs []string) (int64, error) {
	n, err := streamBacklogs(ctx, metricsURLs, eventbus.StreamEvents, eventbus.StreamEventsOverflow)
	if n[0] < 0 {
		return 0, err
	}
	return expanderBacklog(n[0], n[1]), nil
}

// expanderBacklog adds the events-overflow backlog, unknown (< 0) to a
// build without that stream, to the domain events' (known).
func expanderBacklog(events, overflow int64) int64 { return events + max(overflow, 0) }

// backlogSampler records the highest backlog of the domain events (the
// expander's) and of the delivery jobs (the deliverer's) while it runs:
// where a burst waits.
type backlogSampler struct {
	stopCh chan struct{}
	done   chan struct{}

	mu  sync.Mutex
	max report.Backlog
}

func sampleBacklogs(ctx context.Context, metricsURLs []string) *backlogSampler {
	b := &backlogSampler{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			// One scrape for every stream; a flood moved out of other
			// hubs' way (HUBHOOKS_EVENTS_OVERFLOW) is the expander's too.
			n, _ := streamBacklogs(qctx, metricsURLs, eventbus.StreamEvents, eventbus.StreamDeliveries, eventbus.StreamEventsOverflow)
			cancel()
			b.mu.Lock()
			if n[0] >= 0 {
				b.max.Events = max(b.max.Events, expanderBacklog(n[0], n[2]))
			}
			b.max.DeliveryMessages = max(b.max.DeliveryMessages, n[1])
			b.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-b.stopCh:
				return
			case <-t.C:
			}
		}
	}()
	return b
}

// stop ends the sampling and returns the highest backlogs seen.
func (b *backlogSampler) stop() report.Backlog {
	close(b.stopCh)
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max
}

// fetchAll reads each metrics endpoint once; a URL that fails leaves nil
// (and is reported to onErr, when set).
func fetchAll(ctx context.Context, urls []string, onErr func(error)) []metrics {
	all := make([]metrics, len(urls))
	for i, u := range urls {
		ms, err := readMetrics(ctx, u)
		if err != nil {
			if onErr != nil {
				onErr(err)
			}
			continue
		}
		all[i] = ms
	}
	return all
}

// metrics is one read of a /metrics endpoint: its metric families by name.
type metrics map[string]*dto.MetricFamily

// readMetrics reads url's Prometheus text and parses it as it arrives.
func readMetrics(ctx context.Context, url string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Uncompressed: a gzip writer per read is hubd's CPU the run would
	// count as delivery cost.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	ms, err := parseMetrics(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return ms, nil
}

// parseMetrics parses Prometheus text.
func parseMetrics(r io.Reader) (metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// value is the value of a counter, gauge or untyped series.
func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// label is the value of m's label name, "" when it has none.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// seriesName names series m of family as the text format does:
// family{label="value",...}.
func seriesName(family string, m *dto.Metric) string {
	if len(m.GetLabel()) == 0 {
		return family
	}
	labels := make([]string, len(m.GetLabel()))
	for i, l := range m.GetLabel() {
		labels[i] = l.GetName() + "=" + strconv.Quote(l.GetValue())
	}
	return family + "{" + strings.Join(labels, ",") + "}"
}

// counters is the hubhooks_* counters of ms (names ending in _total)
// with a non-zero value, by series name.
func counters(ms metrics) map[string]float64 {
	out := map[string]float64{}
	for family, f := range ms {
		if !strings.HasPrefix(family, "hubhooks_") || !strings.HasSuffix(family, "_total") {
			continue
		}
		for _, m := range f.GetMetric() {
			if v := value(m); v != 0 {
				out[seriesName(family, m)] = v
			}
		}
	}
	return out
}

// trimmed sums hubhooks_logger_entries_trimmed_total over the metrics
// read; ok is false when none has it.
func trimmed(all []metrics) (float64, bool) {
	var sum float64
	ok := false
	for _, ms := range all {
		for _, m := range ms["hubhooks_logger_entries_trimmed_total"].GetMetric() {
			sum += value(m)
			ok = true
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

// schedHistogram reads hubd's go_sched_latencies_seconds buckets
// (cumulative counts by upper bound in seconds) from the first of
// metricsURLs that has them; nil when none answers with them.
func schedHistogram(ctx context.Context, metricsURLs []string) map[float64]float64 {
	for _, u := range metricsURLs {
		ms, err := readMetrics(ctx, u)
		if err != nil {
			continue
		}
		for _, m := range ms["go_sched_latencies_seconds"].GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			out := map[float64]float64{math.Inf(1): float64(h.GetSampleCount())}
			for _, b := range h.GetBucket() {
				out[b.GetUpperBound()] = float64(b.GetCumulativeCount())
			}
			return out
		}
	}
	return nil
}

// schedWaits is the share of the waits between two readings of
// schedHistogram longer than each finite bound of 1 ms or more.
func schedWaits(before, after map[float64]float64) []report.SchedWait {
	total := after[math.Inf(1)] - before[math.Inf(1)]
	if before == nil || after == nil || total <= 0 {
		return nil
	}
	var out []report.SchedWait
	for _, bound := range slices.Sorted(maps.Keys(after)) {
		if bound < 0.0009 || math.IsInf(bound, 1) {
			continue
		}
		within := after[bound] - before[bound]
		out = append(out, report.SchedWait{OverMs: bound * 1000, Share: (total - within) / total})
	}
	return out
}
