// Package report holds the result of one load-tool run and renders it as a
// table for people and as JSON for comparing runs.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/ceiling"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/latency"
)

// Machine describes where the run happened.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemBytes int64  `json:"mem_bytes"`
	Kernel   string `json:"kernel,omitempty"`
	Go       string `json:"go"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute averages when the run
	// started: other work on the machine skews every number.
	LoadAvg string `json:"load_avg,omitempty"`
}

// Params are the run's settings.
type Params struct {
	Target       string  `json:"target"`
	DurationSec  float64 `json:"duration_sec"`
	Rate         float64 `json:"rate"`
	Hubs         int     `json:"hubs"`
	URLsPerHub   int     `json:"urls_per_hub"`
	PayloadBytes int     `json:"payload_bytes"`
	Event        string  `json:"event"`
	Window       int     `json:"window"`
	// EmittedPerEvent is how many webhook events one domain event expands to.
	EmittedPerEvent int `json:"emitted_per_event"`
	// TailWindowMs is the window of each phase traffic's worst latencies
	// (Traffic.MaxLatencyPerWindowMs).
	TailWindowMs float64 `json:"tail_window_ms"`
}

// Process is CPU and memory of one process over the measured window.
type Process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// CPUSeconds is user+system CPU consumed during the measured window.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPercent is CPUSeconds over the window (100 = one core).
	CPUPercent float64 `json:"cpu_percent"`
	// PeakRSSBytes is VmHWM at the end (the process's lifetime peak).
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// RSSBytes is VmRSS at the end.
	RSSBytes int64 `json:"rss_bytes"`
	// CPUPerDeliveryUs is CPUSeconds per delivery of the window, in µs
	// (0 when the window delivered nothing).
	CPUPerDeliveryUs float64 `json:"cpu_per_delivery_us,omitempty"`
	Error            string  `json:"error,omitempty"`
}

// SetPerDelivery fills each process's CPUPerDeliveryUs for deliveries.
func SetPerDelivery(ps []Process, deliveries int64) {
	if deliveries <= 0 {
		return
	}
	for i := range ps {
		if ps[i].Error == "" {
			ps[i].CPUPerDeliveryUs = ps[i].CPUSeconds * 1e6 / float64(deliveries)
		}
	}
}

// Backlog is the highest backlog seen in a window: what the streams'
// consumers still had to do (pending plus unacknowledged messages).
type Backlog struct {
	// Events is the domain events not yet expanded.
	Events int64 `json:"events"`
	// DeliveryMessages is the delivery messages (jobs, fan-outs, batches
	// of them) not yet settled.
	DeliveryMessages int64 `json:"delivery_messages"`
}

// Point is one sample of the run's timeline, taken every second.
type Point struct {
	// Seconds since publishing started.
	Seconds float64 `json:"seconds"`
	// Delivered counts unique deliveries so far.
	Delivered int64 `json:"delivered"`
	// RSSBytes is each sampled process's VmRSS, by process name.
	RSSBytes map[string]int64 `json:"rss_bytes"`
	// MaxLatencyMs is the highest publish->receive latency of the
	// deliveries received in this second (where a tail comes from).
	MaxLatencyMs float64 `json:"max_latency_ms"`
}

// Milestone is the first timeline point at or past a delivery count.
type Milestone struct {
	Deliveries int64 `json:"deliveries"`
	Point      Point `json:"point"`
}

// Milestones returns, for 10k, 100k, 1M and 10M deliveries, the first
// timeline point that reached it.
func Milestones(timeline []Point) []Milestone {
	var out []Milestone
	for _, n := range []int64{10_000, 100_000, 1_000_000, 10_000_000} {
		for _, p := range timeline {
			if p.Delivered >= n {
				out = append(out, Milestone{Deliveries: n, Point: p})
				break
			}
		}
	}
	return out
}

// Redis is the log's memory cost.
type Redis struct {
	UsedMemoryBefore int64 `json:"used_memory_before"`
	UsedMemoryAfter  int64 `json:"used_memory_after"`
	// Entries is the number of log entries written in the window (one per
	// delivery) and still held: minus Trimmed.
	Entries int64 `json:"entries"`
	// Trimmed counts entries the logger trimmed in the window (its
	// per-hub cap), from hubhooks_logger_entries_trimmed_total.
	Trimmed int64 `json:"trimmed"`
	// BytesPerEntry is (after - before) / entries.
	BytesPerEntry float64 `json:"bytes_per_entry"`
	// Keys counts keys under the run's prefix at the end (-1 when not counted).
	Keys int64 `json:"keys"`
	// LoggerCaughtUp is false when the logger still had attempts pending
	// when memory was read.
	LoggerCaughtUp bool   `json:"logger_caught_up"`
	Error          string `json:"error,omitempty"`
}

// Result is one run.
type Result struct {
	// Scenario is the run's scenario: throughput (the fields below
	// Params), fairness or noisy (Phases and Verdicts).
	Scenario string    `json:"scenario"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Machine  Machine   `json:"machine"`
	Params   Params    `json:"params"`

	EventsPublished int64   `json:"events_published"`
	PublishErrors   int64   `json:"publish_errors"`
	PublishSeconds  float64 `json:"publish_seconds"`
	EventsPerSec    float64 `json:"events_per_sec"`

	DeliveriesExpected int64 `json:"deliveries_expected"`
	DeliveriesReceived int64 `json:"deliveries_received"`
	Duplicates         int64 `json:"duplicates"`
	Missing            int64 `json:"missing"`
	ReceiverErrors     int64 `json:"receiver_errors"`
	// DeliveredWhilePublishing counts deliveries received before publishing
	// stopped; over PublishSeconds it is the steady-state rate.
	DeliveredWhilePublishing int64 `json:"delivered_while_publishing"`
	// SteadyDeliveriesPerSec is DeliveredWhilePublishing / PublishSeconds.
	SteadyDeliveriesPerSec float64 `json:"steady_deliveries_per_sec"`
	// DeliverySeconds is from the first publish to the last delivery.
	DeliverySeconds float64 `json:"delivery_seconds"`
	// DeliveriesPerSec is DeliveriesReceived / DeliverySeconds: the rate the
	// pipeline sustained end to end.
	DeliveriesPerSec float64         `json:"deliveries_per_sec"`
	Latency          latency.Summary `json:"latency"`

	Processes []Process `json:"processes"`
	// Backlog is the highest backlog of the streams during the window.
	Backlog Backlog `json:"backlog"`
	// Timeline samples deliveries and RSS every second of the measured run.
	Timeline []Point `json:"timeline,omitempty"`
	Redis    *Redis  `json:"redis,omitempty"`

	HTTPCeiling *ceiling.Result `json:"http_ceiling,omitempty"`
	// HTTPCeilingAfter is the same POST ceiling measured again once the
	// system under test has stopped: the machine's speed drifts, and the
	// ratio uses the mean of both.
	HTTPCeilingAfter *ceiling.Result `json:"http_ceiling_after,omitempty"`
	JetStreamCeiling *ceiling.Result `json:"jetstream_ceiling,omitempty"`
	// RatioToHTTPCeiling is SteadyDeliveriesPerSec / the POST ceiling (the
	// mean of HTTPCeiling and HTTPCeilingAfter when both were measured).
	RatioToHTTPCeiling float64 `json:"ratio_to_http_ceiling,omitempty"`
	// HTTPCeilingDrift is how far apart the two POST ceilings are, as a
	// fraction of their mean: the machine's change of speed during the
	// run, and so a bound on how much the ratio can be trusted.
	HTTPCeilingDrift float64 `json:"http_ceiling_drift,omitempty"`
	// Counters are the system's non-zero hubhooks_*_total counters at the
	// end of the run (hubd target), for explaining the numbers.
	Counters map[string]float64 `json:"counters,omitempty"`
	// Phases are the steps of a fairness or noisy scenario, in order.
	Phases []Phase `json:"phases,omitempty"`
	// Verdicts compare phases against the goals they measure.
	Verdicts []Verdict `json:"verdicts,omitempty"`
	Notes    []string  `json:"notes,omitempty"`
}

// BareClientCPUPerPOST is what the bare client (the POST ceiling's own
// process) spent per POST: the mean over the ceilings that measured it,
// 0 when none did.
func (r *Result) BareClientCPUPerPOST() time.Duration {
	var sum time.Duration
	n := 0
	for _, c := range []*ceiling.Result{r.HTTPCeiling, r.HTTPCeilingAfter} {
		if c != nil && c.CPUPerOp() > 0 {
			sum += c.CPUPerOp()
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / time.Duration(n)
}

// Finish fills the derived fields.
func (r *Result) Finish() {
	if r.PublishSeconds > 0 {
		r.EventsPerSec = float64(r.EventsPublished) / r.PublishSeconds
		r.SteadyDeliveriesPerSec = float64(r.DeliveredWhilePublishing) / r.PublishSeconds
	}
	if r.DeliverySeconds > 0 {
		r.DeliveriesPerSec = float64(r.DeliveriesReceived) / r.DeliverySeconds
	}
	r.Missing = max(0, r.DeliveriesExpected-r.DeliveriesReceived)
	if c := r.POSTCeiling(); c > 0 {
		r.RatioToHTTPCeiling = r.SteadyDeliveriesPerSec / c
		if b, a := r.HTTPCeiling, r.HTTPCeilingAfter; b != nil && a != nil && b.PerSecond > 0 && a.PerSecond > 0 {
			r.HTTPCeilingDrift = math.Abs(b.PerSecond-a.PerSecond) / c
		}
	}
	if r.Redis != nil && r.Redis.Entries > 0 {
		r.Redis.BytesPerEntry = float64(r.Redis.UsedMemoryAfter-r.Redis.UsedMemoryBefore) / float64(r.Redis.Entries)
	}
}

// maxCeilingDrift is the HTTPCeilingDrift above which the report warns
// that the ratio is unreliable.
const maxCeilingDrift = 0.15

// POSTCeiling is the POST ceiling the ratio uses: the mean of the
// measurements before and after the system under test ran (0 when none).
func (r *Result) POSTCeiling() float64 {
	var sum float64
	var n int
	for _, c := range []*ceiling.Result{r.HTTPCeiling, r.HTTPCeilingAfter} {
		if c != nil && c.PerSecond > 0 {
			sum += c.PerSecond
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// WriteJSONFile writes r as indented JSON to path.
func (r *Result) WriteJSONFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// ReadJSONFile reads a result written by WriteJSONFile.
func ReadJSONFile(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode result %s: %w", path, err)
	}
	return &r, nil
}

// PrintTable writes the human-readable table.
func (r *Result) PrintTable(w io.Writer) error {
	if len(r.Phases) > 0 {
		return r.printPhases(w)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	p := r.Params
	rate := "max (bounded window " + fmt.Sprint(p.Window) + ")"
	if p.Rate > 0 {
		rate = fmt.Sprintf("%.0f events/s", p.Rate)
	}
	fmt.Fprintf(tw, "hubbench %s\ttarget %s, %d hub(s) x %d URL(s), %s (x%d webhooks), %d B payload, %.0fs at %s\n",
		r.Version, p.Target, p.Hubs, p.URLsPerHub, p.Event, p.EmittedPerEvent, p.PayloadBytes, p.DurationSec, rate)
	fmt.Fprintf(tw, "machine\t%d CPU(s), %s, %s RAM, %s, load average at start %s\n", r.Machine.CPUs, r.Machine.CPUModel, bytesStr(r.Machine.MemBytes), r.Machine.Go, r.Machine.LoadAvg)
	fmt.Fprintln(tw, "\t")
	fmt.Fprintf(tw, "domain events published\t%d in %.1fs = %.0f/s (publish errors %d)\n", r.EventsPublished, r.PublishSeconds, r.EventsPerSec, r.PublishErrors)
	fmt.Fprintf(tw, "deliveries/s (steady)\t%.0f/s (%d received while publishing)\n", r.SteadyDeliveriesPerSec, r.DeliveredWhilePublishing)
	fmt.Fprintf(tw, "deliveries received\t%d of %d expected, last one %.1fs after the first publish (%.0f/s overall)\n", r.DeliveriesReceived, r.DeliveriesExpected, r.DeliverySeconds, r.DeliveriesPerSec)
	fmt.Fprintf(tw, "latency publish->receive\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d)\n",
		msStr(r.Latency.P50Ms), msStr(r.Latency.P90Ms), msStr(r.Latency.P99Ms), msStr(r.Latency.P999Ms), msStr(r.Latency.MaxMs), r.Latency.Count)
	fmt.Fprintf(tw, "errors / duplicates / missing\t%d / %d / %d\n", r.ReceiverErrors+r.PublishErrors, r.Duplicates, r.Missing)
	for _, pr := range r.Processes {
		if pr.Error != "" {
			fmt.Fprintf(tw, "process %s (pid %d)\t%s\n", pr.Name, pr.PID, pr.Error)
			continue
		}
		fmt.Fprintf(tw, "process %s (pid %d)\tCPU %.1fs (%.0f%% of one core), %s per delivery, peak RSS %s, RSS now %s\n",
			pr.Name, pr.PID, pr.CPUSeconds, pr.CPUPercent, usStr(pr.CPUPerDeliveryUs), bytesStr(pr.PeakRSSBytes), bytesStr(pr.RSSBytes))
	}
	fmt.Fprintf(tw, "bare client CPU per POST\t%s\n", r.bareClientStr())
	fmt.Fprintf(tw, "highest backlog\t%d domain events, %d delivery messages\n", r.Backlog.Events, r.Backlog.DeliveryMessages)
	for _, m := range Milestones(r.Timeline) {
		var parts []string
		for _, pr := range r.Processes {
			if v, ok := m.Point.RSSBytes[pr.Name]; ok && !strings.HasPrefix(pr.Name, "hubbench") {
				parts = append(parts, pr.Name+" "+bytesStr(v))
			}
		}
		fmt.Fprintf(tw, "RSS at %s deliveries\t%s (t=%.0fs)\n", countStr(m.Deliveries), strings.Join(parts, ", "), m.Point.Seconds)
	}
	switch {
	case r.Redis == nil:
		fmt.Fprintf(tw, "redis per log entry\tnot measured\n")
	case r.Redis.Error != "":
		fmt.Fprintf(tw, "redis per log entry\t%s\n", r.Redis.Error)
	default:
		caught := ""
		if !r.Redis.LoggerCaughtUp {
			caught = " (logger had not caught up: underestimate)"
		}
		fmt.Fprintf(tw, "redis per log entry\t%.0f B (used_memory %s -> %s over %d entries held, %d trimmed by retention; %d keys under the prefix)%s\n",
			r.Redis.BytesPerEntry, bytesStr(r.Redis.UsedMemoryBefore), bytesStr(r.Redis.UsedMemoryAfter), r.Redis.Entries, r.Redis.Trimmed, r.Redis.Keys, caught)
	}
	if c := r.HTTPCeiling; c != nil {
		fmt.Fprintf(tw, "ceiling: raw HTTP POST\t%.0f/s (%d in %.1fs, %d senders, %d B body, errors %d)\n", c.PerSecond, c.Ops, c.Seconds, c.Concurrency, c.BodyBytes, c.Errors)
		if a := r.HTTPCeilingAfter; a != nil {
			fmt.Fprintf(tw, "  again after the run\t%.0f/s (%d in %.1fs, errors %d); mean %.0f/s\n", a.PerSecond, a.Ops, a.Seconds, a.Errors, r.POSTCeiling())
		}
	} else {
		fmt.Fprintf(tw, "ceiling: raw HTTP POST\tskipped\n")
	}
	if c := r.JetStreamCeiling; c != nil {
		fmt.Fprintf(tw, "ceiling: JetStream pub+consume\t%.0f/s (%d in %.1fs, window %d, %d B msgs, errors %d)\n", c.PerSecond, c.Ops, c.Seconds, c.Concurrency, c.BodyBytes, c.Errors)
	} else {
		fmt.Fprintf(tw, "ceiling: JetStream pub+consume\tskipped\n")
	}
	switch {
	case r.RatioToHTTPCeiling > 0 && r.Params.Rate > 0:
		fmt.Fprintf(tw, "deliveries/s / POST ceiling\t%.2f (at a fixed rate: not a throughput ratio; use -rate 0)\n", r.RatioToHTTPCeiling)
	case r.RatioToHTTPCeiling > 0:
		fmt.Fprintf(tw, "steady deliveries/s / POST ceiling\t%.2f (%.0f%%)\n", r.RatioToHTTPCeiling, 100*r.RatioToHTTPCeiling)
	}
	if r.HTTPCeilingDrift > maxCeilingDrift {
		fmt.Fprintf(tw, "warning\tthe POST ceiling moved %.0f%% between before and after the run: the machine's speed changed while it ran; compare ratios over several runs\n", 100*r.HTTPCeilingDrift)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "note\t%s\n", n)
	}
	return tw.Flush()
}

// bareClientStr describes BareClientCPUPerPOST for the tables.
func (r *Result) bareClientStr() string {
	per := r.BareClientCPUPerPOST()
	if per == 0 {
		return "not measured (-skip-ceilings)"
	}
	return fmt.Sprintf("%s (the POST ceiling's own process, %d senders): the floor of a delivery's cost", usStr(float64(per.Nanoseconds())/1000), r.HTTPCeiling.Concurrency)
}

func usStr(us float64) string {
	if us == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f µs", us)
}

func countStr(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}

func msStr(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.2fms", ms)
	}
	return fmt.Sprintf("%.1fms", ms)
}

func bytesStr(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// ReadMachine describes this machine from /proc.
func ReadMachine(goVersion string) Machine {
	m := Machine{Go: goVersion}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel, m.CPUs = ParseCPUInfo(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemBytes = ParseMemTotal(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// ParseCPUInfo returns the first "model name" and the number of processors
// listed in /proc/cpuinfo content.
func ParseCPUInfo(s string) (model string, cpus int) {
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			cpus++
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		}
	}
	return model, cpus
}

// ParseMemTotal returns MemTotal in bytes from /proc/meminfo content, 0 if absent.
func ParseMemTotal(s string) int64 {
	for _, line := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}
