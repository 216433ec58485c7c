package latency

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	one2ten := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []int64
		p      float64
		want   int64
	}{
		{"empty", nil, 50, 0},
		{"single p50", []int64{7}, 50, 7},
		{"single p99", []int64{7}, 99, 7},
		{"p50 of 10 is the 5th", one2ten, 50, 5},
		{"p90 of 10 is the 9th", one2ten, 90, 9},
		{"p91 of 10 rounds up to the 10th", one2ten, 91, 10},
		{"p99 of 10 is the max", one2ten, 99, 10},
		{"p100 is the max", one2ten, 100, 10},
		{"p0 is the min", one2ten, 0, 1},
		{"p99 of 100", hundred, 99, 99},
		{"p99.9 of 100", hundred, 99.9, 100},
		{"p1 of 100", hundred, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %d, want %d", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	// 1..1000 ms, shuffled: Summarize must sort.
	s := make([]int64, 1000)
	for i := range s {
		s[i] = int64(i+1) * int64(time.Millisecond)
	}
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	got := Summarize(s)
	want := Summary{Count: 1000, MinMs: 1, MeanMs: 500.5, P50Ms: 500, P90Ms: 900, P99Ms: 990, P999Ms: 999, MaxMs: 1000}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if (Summarize(nil) != Summary{}) {
		t.Errorf("Summarize(nil) is not the zero Summary")
	}
}

func TestRecorderConcurrent(t *testing.T) {
	var r Recorder
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				r.Record(time.Duration(g*500+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	r.Record(-time.Second) // clamped to zero
	if r.Len() != 4001 {
		t.Fatalf("Len = %d, want 4001", r.Len())
	}
	sum := r.Summary()
	if sum.MinMs != 0 || sum.MaxMs != 3.999 {
		t.Errorf("min/max = %v/%v, want 0/3.999", sum.MinMs, sum.MaxMs)
	}
	// Summary must not reorder the recorder's own samples in a way that
	// loses any: a second summary is identical.
	if again := r.Summary(); again != sum {
		t.Errorf("second Summary %+v differs from first %+v", again, sum)
	}
	if !slices.IsSorted([]float64{sum.P50Ms, sum.P90Ms, sum.P99Ms, sum.P999Ms, sum.MaxMs}) {
		t.Errorf("percentiles not monotonic: %+v", sum)
	}
}
