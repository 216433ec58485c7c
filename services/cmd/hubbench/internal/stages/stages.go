// Package stages times a traffic's webhooks through each stage of hubd:
// the tool starts their traces (a sampled W3C traceparent on the domain
// event), hubd records only those (its sample ratio 0) and exports them to
// the OTLP/gRPC collector here, and each delivery's spans give when its
// event was stored, read, taken, checked against the seen memory, its job
// stored, taken by the deliverer, POSTed and answered (the events named in
// pkg/tracing). Other traffic (a burst) stays untraced and costs hubd
// nothing.
package stages

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/hubhooks/hubhooks/pkg/tracing"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/latency"
)

// Names are the stages in order; their durations add up to publish →
// answer.
var Names = []string{
	"publish → stored",         // the events stream takes the event
	"stored → read",            // the expander's reader reaches it
	"read → taken",             // it waits in the read-ahead for its turn
	"taken → seen answered",    // its config and the seen memory
	"seen → job stored",        // its fan-outs sent and stored
	"job stored → taken",       // the deliverer fetches the message
	"taken → POST",             // the URL's lane and a POST slot
	"POST → answer",            // the receiver (the webhook arrives on the way)
	"publish → answer (total)", // the sum
}

// Stage is one stage's latency over a traffic's traced deliveries, and its
// mean over the slowest of them.
type Stage struct {
	Name    string          `json:"name"`
	Latency latency.Summary `json:"latency"`
	// SlowestMeanMs is the stage's mean over the deliveries whose total is
	// in the slowest 1 % (at least one): where the tail waited.
	SlowestMeanMs float64 `json:"slowest_mean_ms"`
}

// Collector receives hubd's spans. It is safe for concurrent use.
type Collector struct {
	coltracepb.UnimplementedTraceServiceServer
	srv  *grpc.Server
	addr string

	mu     sync.Mutex
	traces map[[16]byte]*traced
}

// traced is one event whose trace the tool began.
type traced struct {
	class  string
	sent   time.Time
	expand *tracepb.Span
	// attempts are the deliveries' first attempts, one per URL.
	attempts []*tracepb.Span
}

// Start listens on a free loopback port.
func Start() (*Collector, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &Collector{srv: grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20)), addr: ln.Addr().String(), traces: map[[16]byte]*traced{}}
	coltracepb.RegisterTraceServiceServer(c.srv, c)
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// Addr is the collector's host:port (HUBHOOKS_OTLP_ENDPOINT).
func (c *Collector) Addr() string { return c.addr }

// Stop stops the collector; what it received stays readable.
func (c *Collector) Stop() { c.srv.Stop() }

// Begin starts the trace of the domain event in m, of traffic class: m
// gets a sampled traceparent of a new trace.
func (c *Collector) Begin(m *nats.Msg, class string) {
	var id [16]byte
	var parent [8]byte
	_, _ = rand.Read(id[:])
	_, _ = rand.Read(parent[:])
	m.Header.Set("traceparent", "00-"+hex.EncodeToString(id[:])+"-"+hex.EncodeToString(parent[:])+"-01")
	c.mu.Lock()
	c.traces[id] = &traced{class: class, sent: time.Now()}
	c.mu.Unlock()
}

// Export keeps the expansion and first-attempt spans of the traces Begin
// started.
func (c *Collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := sp.GetTraceId()
				if len(id) != 16 {
					continue
				}
				t := c.traces[[16]byte(id)]
				switch {
				case t == nil:
				case hasEvent(sp, tracing.EventRead):
					t.expand = sp
				case hasEvent(sp, tracing.EventJobTaken) && firstAttempt(sp):
					t.attempts = append(t.attempts, sp)
				}
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func hasEvent(sp *tracepb.Span, name string) bool {
	return slices.ContainsFunc(sp.GetEvents(), func(e *tracepb.Span_Event) bool { return e.GetName() == name })
}

func eventAt(sp *tracepb.Span, name string) (time.Time, bool) {
	for _, e := range sp.GetEvents() {
		if e.GetName() == name {
			return nanos(e.GetTimeUnixNano()), true
		}
	}
	return time.Time{}, false
}

// firstAttempt says whether sp is an attempt span of attempt 1.
func firstAttempt(sp *tracepb.Span) bool {
	for _, a := range sp.GetAttributes() {
		if a.GetKey() == "hubhooks.attempt" {
			return a.GetValue().GetIntValue() == 1
		}
	}
	return false
}

func nanos(n uint64) time.Time { return time.Unix(0, int64(n)) }

// WriteCSV writes every traced delivery with its stages, one row each:
// its class, when its event was published (Unix ms) and each stage in ms
// (Names' order), for a timeline of where the tail waited.
func (c *Collector) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(append([]string{"class", "published_unix_ms"}, Names...))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.traces {
		for _, r := range t.rows() {
			rec := []string{t.class, strconv.FormatFloat(float64(t.sent.UnixMicro())/1000, 'f', 3, 64)}
			for _, d := range r {
				rec = append(rec, strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64))
			}
			_ = cw.Write(rec)
		}
	}
	cw.Flush()
	return cw.Error()
}

// Of times the deliveries of class through the stages (Names): the
// stages of every delivery whose event's and attempt's spans arrived, and
// how many traced events have none.
func (c *Collector) Of(class string) (stages []Stage, deliveries, incomplete int) {
	var rows [][]time.Duration
	c.mu.Lock()
	for _, t := range c.traces {
		if t.class != class {
			continue
		}
		r := t.rows()
		if len(r) == 0 {
			incomplete++
		}
		rows = append(rows, r...)
	}
	c.mu.Unlock()
	if len(rows) == 0 {
		return nil, 0, incomplete
	}
	// The slowest 1 % by total.
	slices.SortFunc(rows, func(a, b []time.Duration) int { return int(b[len(b)-1] - a[len(a)-1]) })
	slowest := rows[:max(1, len(rows)/100)]
	for i, name := range Names {
		samples := make([]int64, len(rows))
		for j, r := range rows {
			samples[j] = int64(max(r[i], 0))
		}
		var sum time.Duration
		for _, r := range slowest {
			sum += r[i]
		}
		stages = append(stages, Stage{
			Name: name, Latency: latency.Summarize(samples),
			SlowestMeanMs: float64(sum.Microseconds()) / 1000 / float64(len(slowest)),
		})
	}
	return stages, len(rows), incomplete
}

// rows are the stage durations of t's deliveries (one per first attempt,
// in Names' order), none when its expansion's span or an event is missing.
func (t *traced) rows() [][]time.Duration {
	if t.expand == nil {
		return nil
	}
	stored, ok1 := eventAt(t.expand, tracing.EventStored)
	read, ok2 := eventAt(t.expand, tracing.EventRead)
	seen, ok3 := eventAt(t.expand, tracing.EventSeenAnswered)
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	taken := nanos(t.expand.GetStartTimeUnixNano())
	var rows [][]time.Duration
	for _, a := range t.attempts {
		jobStored, ok1 := eventAt(a, tracing.EventJobStored)
		jobTaken, ok2 := eventAt(a, tracing.EventJobTaken)
		if !ok1 || !ok2 {
			continue
		}
		post, answer := nanos(a.GetStartTimeUnixNano()), nanos(a.GetEndTimeUnixNano())
		at := []time.Time{t.sent, stored, read, taken, seen, jobStored, jobTaken, post, answer}
		row := make([]time.Duration, 0, len(Names))
		for i := 1; i < len(at); i++ {
			row = append(row, at[i].Sub(at[i-1]))
		}
		rows = append(rows, append(row, answer.Sub(t.sent)))
	}
	return rows
}
