package report

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/latency"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/stages"
)

// Phase is one step of a scenario: traffic of one or more kinds published
// together, and what the processes spent on it.
type Phase struct {
	Name    string    `json:"name"`
	Traffic []Traffic `json:"traffic"`
	// Processes is CPU over the phase, per delivery of all its traffic.
	Processes []Process `json:"processes"`
	Backlog   Backlog   `json:"backlog"`
	Seconds   float64   `json:"seconds"`
	// SchedWaits is how long hubd's runnable goroutines waited for a CPU
	// over the phase (go_sched_latencies_seconds): the share of waits
	// longer than each of the histogram's bounds from 1 ms up. Every
	// hand-off between goroutines (a message read, a worker woken, an
	// answer back) waits so long, so on saturated CPUs these add up along
	// a webhook's way.
	SchedWaits []SchedWait `json:"sched_waits,omitempty"`
}

// SchedWait is the share of goroutine waits for a CPU longer than OverMs.
type SchedWait struct {
	OverMs float64 `json:"over_ms"`
	Share  float64 `json:"share"`
}

// Traffic is one kind of traffic of a phase (a bursting hub, quiet hubs,
// a healthy URL): what arrived and how late.
type Traffic struct {
	Name string `json:"name"`
	// Class is the receiver's class of the traffic (unique in a run).
	Class string `json:"class"`
	Hubs  int    `json:"hubs"`
	// Published counts domain events acknowledged by JetStream.
	Published  int64 `json:"published"`
	Expected   int64 `json:"expected"`
	Received   int64 `json:"received"`
	Duplicates int64 `json:"duplicates"`
	// Latency is publish->receive over every delivery of the traffic.
	Latency latency.Summary `json:"latency"`
	// WorstHubP99Ms is the highest p99 of one hub (when Hubs > 1), and
	// WorstHub that hub's first URL.
	WorstHubP99Ms float64 `json:"worst_hub_p99_ms,omitempty"`
	WorstHub      string  `json:"worst_hub,omitempty"`
	// Seconds is from the first publish to the last delivery; PerSecond
	// is Received over it.
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	// PublishAckMs is publish->JetStream ack of the traffic's events: the
	// part of the latency spent getting into the events stream, which
	// every hub shares.
	PublishAckMs latency.Summary `json:"publish_ack_ms"`
	// MaxLatencyPerWindowMs is the highest latency of the deliveries
	// received in each window (Params.TailWindowMs) of the phase: where a
	// tail comes from.
	MaxLatencyPerWindowMs []float64 `json:"max_latency_per_window_ms,omitempty"`
	// Stages times Traced of the traffic's deliveries through hubd's
	// stages (-trace). Untraced counts its traced events whose spans did
	// not all reach the tool (dropped by hubd's exporter, or never ended).
	Stages   []stages.Stage `json:"stages,omitempty"`
	Traced   int            `json:"traced,omitempty"`
	Untraced int            `json:"untraced,omitempty"`
}

// Find returns the traffic named name, nil when the phase has none.
func (p *Phase) Find(name string) *Traffic {
	for i := range p.Traffic {
		if p.Traffic[i].Name == name {
			return &p.Traffic[i]
		}
	}
	return nil
}

// Deliveries is what all the phase's traffic received.
func (p *Phase) Deliveries() int64 {
	var n int64
	for _, t := range p.Traffic {
		n += t.Received
	}
	return n
}

// Missing is what the phase's traffic expected and did not receive.
func (p *Phase) Missing() int64 {
	var n int64
	for _, t := range p.Traffic {
		n += max(0, t.Expected-t.Received)
	}
	return n
}

// Verdict compares a measured value with the limit a goal sets.
type Verdict struct {
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit"`
	// Pass is Value <= Limit.
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// NewVerdict is a Verdict that passes when value <= limit.
func NewVerdict(goal string, value, limit float64, unit, detail string) Verdict {
	return Verdict{Goal: goal, Value: value, Limit: limit, Unit: unit, Pass: value <= limit, Detail: detail}
}

// LatencyLimit is the p99 a goal of "within 2x of alone, or +25 ms,
// whichever is larger" allows for a traffic whose p99 alone is aloneMs.
func LatencyLimit(aloneMs float64) float64 { return max(2*aloneMs, aloneMs+25) }

// ErrMissing is returned by Lost when a run delivered less than it expected.
var ErrMissing = errors.New("deliveries missing")

// Lost returns an error wrapping ErrMissing when the run (or any of its
// phases) received fewer deliveries than it expected, nil otherwise.
func (r *Result) Lost() error {
	if r.Missing > 0 {
		return fmt.Errorf("%w: %d", ErrMissing, r.Missing)
	}
	for _, p := range r.Phases {
		if n := p.Missing(); n > 0 {
			return fmt.Errorf("%w: %d in phase %q", ErrMissing, n, p.Name)
		}
	}
	return nil
}

// Passed reports whether every verdict passed.
func (r *Result) Passed() bool {
	for _, v := range r.Verdicts {
		if !v.Pass {
			return false
		}
	}
	return true
}

// printPhases writes the table of a scenario with phases: one row per
// (phase, traffic), then CPU per delivery of each process per phase, then
// the verdicts.
func (r *Result) printPhases(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	p := r.Params
	fmt.Fprintf(tw, "hubbench %s\tscenario %s, target %s, %s (x%d webhooks), %d B payload\n", r.Version, r.Scenario, p.Target, p.Event, p.EmittedPerEvent, p.PayloadBytes)
	fmt.Fprintf(tw, "machine\t%d CPU(s), %s, %s RAM, %s, load average at start %s\n", r.Machine.CPUs, r.Machine.CPUModel, bytesStr(r.Machine.MemBytes), r.Machine.Go, r.Machine.LoadAvg)
	fmt.Fprintln(tw, "\t")
	fmt.Fprintln(tw, "phase\ttraffic\thubs\treceived/expected\tdup\tp50\tp99\tmax\tworst hub p99\tpublish ack p99\tdeliveries/s\tbacklog (events/msgs)")
	for _, ph := range r.Phases {
		for i, t := range ph.Traffic {
			name, backlog := ph.Name, fmt.Sprintf("%d/%d", ph.Backlog.Events, ph.Backlog.DeliveryMessages)
			if i > 0 {
				name, backlog = "", ""
			}
			worst := "-"
			if t.Hubs > 1 {
				worst = msStr(t.WorstHubP99Ms)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d/%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\n", name, t.Name, t.Hubs, t.Received, t.Expected, t.Duplicates,
				msStr(t.Latency.P50Ms), msStr(t.Latency.P99Ms), msStr(t.Latency.MaxMs), worst, msStr(t.PublishAckMs.P99Ms), t.PerSecond, backlog)
		}
	}
	fmt.Fprintln(tw, "\t")
	var names []string
	if len(r.Phases) > 0 {
		for _, pr := range r.Phases[0].Processes {
			names = append(names, pr.Name)
		}
	}
	fmt.Fprintf(tw, "CPU per delivery\t%s\n", strings.Join(names, "\t"))
	for _, ph := range r.Phases {
		cells := make([]string, len(ph.Processes))
		for i, pr := range ph.Processes {
			cells[i] = usStr(pr.CPUPerDeliveryUs)
			if pr.Error != "" {
				cells[i] = "not sampled"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\n", ph.Name, strings.Join(cells, "\t"))
	}
	fmt.Fprintf(tw, "bare client per POST\t%s\n", r.bareClientStr())
	r.printSchedWaits(tw)
	if c := r.HTTPCeiling; c != nil {
		fmt.Fprintf(tw, "ceiling: raw HTTP POST\t%.0f/s (%d senders, %d B body)\n", r.POSTCeiling(), c.Concurrency, c.BodyBytes)
	}
	fmt.Fprintln(tw, "\t")
	for _, v := range r.Verdicts {
		mark := "PASS"
		if !v.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s: %.1f %s, limit %.1f %s (%s)\n", mark, v.Goal, v.Value, v.Unit, v.Limit, v.Unit, v.Detail)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "note\t%s\n", n)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return r.printStages(w)
}

// printSchedWaits writes the share of hubd's goroutine waits for a CPU
// over each bound, one row per phase that has them.
func (r *Result) printSchedWaits(tw io.Writer) {
	header := false
	for _, ph := range r.Phases {
		if len(ph.SchedWaits) == 0 {
			continue
		}
		cells := make([]string, len(ph.SchedWaits))
		bounds := make([]string, len(ph.SchedWaits))
		for i, w := range ph.SchedWaits {
			cells[i] = fmt.Sprintf("%.2f %%", 100*w.Share)
			bounds[i] = fmt.Sprintf("> %.3g ms", w.OverMs)
		}
		if !header {
			fmt.Fprintf(tw, "hubd waiting for a CPU\t%s\n", strings.Join(bounds, "\t"))
			header = true
		}
		fmt.Fprintf(tw, "%s\t%s\n", ph.Name, strings.Join(cells, "\t"))
	}
}

// printStages writes a table of stages per traffic that has them (-trace).
func (r *Result) printStages(w io.Writer) error {
	for _, ph := range r.Phases {
		for _, t := range ph.Traffic {
			if len(t.Stages) == 0 {
				continue
			}
			fmt.Fprintf(w, "\nstages of %q in %q: %d deliveries traced (%d events without a complete trace), ms\n", t.Name, ph.Name, t.Traced, t.Untraced)
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "stage\tp50\tp90\tp99\tmax\tslowest 1 %, mean\t")
			for _, s := range t.Stages {
				l := s.Latency
				fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", s.Name, l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs, s.SlowestMeanMs)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}
