package report

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/ceiling"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/latency"
)

func sample() *Result {
	r := &Result{
		Version: "test", Started: time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC),
		Machine: Machine{CPUs: 2, CPUModel: "AMD EPYC", MemBytes: 24 << 30, Go: "go1.26"},
		Params:  Params{Target: "hubd", DurationSec: 20, Hubs: 1, URLsPerHub: 5, PayloadBytes: 512, Event: "USER.UPDATED", Window: 512, EmittedPerEvent: 1},

		EventsPublished: 1000, PublishSeconds: 2, DeliveredWhilePublishing: 3600,
		DeliveriesExpected: 5000, DeliveriesReceived: 4990, Duplicates: 3, DeliverySeconds: 2.5,
		Latency:     latency.Summary{Count: 4990, P50Ms: 3.2, P90Ms: 8, P99Ms: 21.5, MaxMs: 80},
		Processes:   []Process{{Name: "hubd", PID: 10, CPUSeconds: 3.5, CPUPercent: 140, PeakRSSBytes: 80 << 20, RSSBytes: 60 << 20}},
		Redis:       &Redis{UsedMemoryBefore: 1 << 20, UsedMemoryAfter: 1<<20 + 5000*600, Entries: 5000, Keys: 10001, LoggerCaughtUp: true},
		HTTPCeiling: &ceiling.Result{Ops: 40000, Seconds: 2, PerSecond: 20000, Concurrency: 64, BodyBytes: 700},
	}
	r.Finish()
	return r
}

func TestFinish(t *testing.T) {
	r := sample()
	tests := []struct {
		name      string
		got, want float64
	}{
		{"events/s", r.EventsPerSec, 500},
		{"deliveries/s", r.DeliveriesPerSec, 1996},
		{"missing", float64(r.Missing), 10},
		{"steady deliveries/s", r.SteadyDeliveriesPerSec, 1800},
		{"ratio", r.RatioToHTTPCeiling, 1800.0 / 20000},
		{"redis bytes/entry", r.Redis.BytesPerEntry, 600},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	// Measured before and after the run, the ratio uses the mean ceiling.
	r.HTTPCeilingAfter = &ceiling.Result{Ops: 30000, Seconds: 2, PerSecond: 15000}
	r.Finish()
	if want := 1800.0 / 17500; r.RatioToHTTPCeiling != want {
		t.Errorf("ratio with two ceilings = %v, want %v", r.RatioToHTTPCeiling, want)
	}
	// 20000 and 15000 are 29 % of their mean apart: the report says so.
	if want := 5000.0 / 17500; r.HTTPCeilingDrift != want {
		t.Errorf("ceiling drift = %v, want %v", r.HTTPCeilingDrift, want)
	}
	var text strings.Builder
	if err := r.PrintTable(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "the POST ceiling moved 29% between before and after the run") {
		t.Errorf("no drift warning in:\n%s", text.String())
	}
	r.HTTPCeilingAfter.PerSecond = 19000
	r.Finish()
	text.Reset()
	if err := r.PrintTable(&text); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "ceiling moved") {
		t.Errorf("drift warning at %.0f%%:\n%s", 100*r.HTTPCeilingDrift, text.String())
	}
	over := &Result{DeliveriesExpected: 5, DeliveriesReceived: 7}
	over.Finish()
	if over.Missing != 0 {
		t.Errorf("missing = %d when more arrived than expected, want 0", over.Missing)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sample()
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSONFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSONFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", got, r)
	}
}

func TestPrintTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sample().PrintTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := strings.Join(strings.Fields(buf.String()), " ")
	for _, want := range []string{"1800/s (3600 received while publishing)", "(1996/s overall)", "p99 21.5ms", "3 / 10", "process hubd (pid 10)", "600 B", "20000/s", "JetStream pub+consume skipped", "(9%)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestParseProc(t *testing.T) {
	model, cpus := ParseCPUInfo("processor\t: 0\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n")
	if model != "AMD EPYC" || cpus != 2 {
		t.Errorf("ParseCPUInfo = %q %d", model, cpus)
	}
	if got := ParseMemTotal("MemFree: 1 kB\nMemTotal:       24683520 kB\n"); got != 24683520*1024 {
		t.Errorf("ParseMemTotal = %d", got)
	}
	if got := ParseMemTotal("nothing"); got != 0 {
		t.Errorf("ParseMemTotal(nothing) = %d", got)
	}
}

func TestMilestones(t *testing.T) {
	tl := []Point{
		{Seconds: 1, Delivered: 5_000},
		{Seconds: 2, Delivered: 12_000, RSSBytes: map[string]int64{"hubd": 50 << 20}},
		{Seconds: 30, Delivered: 100_000, RSSBytes: map[string]int64{"hubd": 80 << 20}},
		{Seconds: 31, Delivered: 101_000},
	}
	got := Milestones(tl)
	if len(got) != 2 || got[0].Deliveries != 10_000 || got[0].Point.Seconds != 2 || got[1].Deliveries != 100_000 || got[1].Point.Seconds != 30 {
		t.Fatalf("Milestones = %+v", got)
	}
	r := sample()
	r.Timeline = tl
	var buf bytes.Buffer
	if err := r.PrintTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := strings.Join(strings.Fields(buf.String()), " ")
	for _, want := range []string{"RSS at 10k deliveries hubd 50.0 MiB (t=2s)", "RSS at 100k deliveries hubd 80.0 MiB (t=30s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestPerDeliveryAndBareClient(t *testing.T) {
	ps := []Process{{Name: "hubd", CPUSeconds: 2}, {Name: "gone", Error: "not sampled"}}
	SetPerDelivery(ps, 20000)
	if ps[0].CPUPerDeliveryUs != 100 || ps[1].CPUPerDeliveryUs != 0 {
		t.Errorf("per delivery = %v / %v, want 100 / 0", ps[0].CPUPerDeliveryUs, ps[1].CPUPerDeliveryUs)
	}
	r := &Result{}
	if r.BareClientCPUPerPOST() != 0 {
		t.Errorf("bare client cost without ceilings")
	}
	r.HTTPCeiling = &ceiling.Result{Ops: 10000, CPUSeconds: 0.3}
	r.HTTPCeilingAfter = &ceiling.Result{Ops: 10000, CPUSeconds: 0.5}
	if got := r.BareClientCPUPerPOST(); got < 39*time.Microsecond || got > 41*time.Microsecond {
		t.Errorf("bare client per POST = %v, want the mean 40µs", got)
	}
}

func TestPhasesLostAndVerdicts(t *testing.T) {
	r := &Result{Phases: []Phase{
		{Name: "a", Traffic: []Traffic{{Name: "x", Expected: 10, Received: 10}, {Name: "y", Expected: 5, Received: 5}}},
	}}
	if err := r.Lost(); err != nil {
		t.Errorf("Lost = %v with nothing missing", err)
	}
	if r.Phases[0].Deliveries() != 15 || r.Phases[0].Find("y") == nil || r.Phases[0].Find("z") != nil {
		t.Errorf("Deliveries/Find")
	}
	r.Phases = append(r.Phases, Phase{Name: "b", Traffic: []Traffic{{Name: "x", Expected: 10, Received: 7}}})
	if err := r.Lost(); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), `3 in phase "b"`) {
		t.Errorf("Lost = %v, want 3 missing in phase b", err)
	}
	tests := []struct {
		alone, want float64
	}{
		{4, 29},  // +25 ms is larger
		{30, 60}, // 2x is larger
		{25, 50}, // equal
	}
	for _, tt := range tests {
		if got := LatencyLimit(tt.alone); got != tt.want {
			t.Errorf("LatencyLimit(%v) = %v, want %v", tt.alone, got, tt.want)
		}
	}
	r.Verdicts = []Verdict{NewVerdict("a", 1, 2, "ms", ""), NewVerdict("b", 2, 2, "ms", "")}
	if !r.Passed() {
		t.Errorf("verdicts at or under their limit failed")
	}
	r.Verdicts = append(r.Verdicts, NewVerdict("c", 2.1, 2, "ms", ""))
	if r.Passed() {
		t.Errorf("a verdict over its limit passed")
	}
	var out bytes.Buffer
	if err := r.PrintTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FAIL", "c: 2.1 ms, limit 2.0 ms", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
