// Package latency records durations and summarises them as percentiles
// computed from the sorted samples (exact, not bucketed).
package latency

import (
	"slices"
	"sync"
	"time"
)

// Recorder collects duration samples. It is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	samples []int64
}

// Record adds one sample. Negative durations (clock skew between the
// publisher's and the receiver's view, impossible on one machine but cheap
// to guard) are recorded as zero.
func (r *Recorder) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	r.mu.Lock()
	r.samples = append(r.samples, int64(d))
	r.mu.Unlock()
}

// Len is the number of samples recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples)
}

// Summary summarises the samples recorded so far.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	s := slices.Clone(r.samples)
	r.mu.Unlock()
	return Summarize(s)
}

// Summary is a latency distribution. Durations are in milliseconds so the
// JSON reads naturally.
type Summary struct {
	Count  int     `json:"count"`
	MinMs  float64 `json:"min_ms"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Summarize sorts samples (nanoseconds) in place and returns their summary;
// the zero Summary for none.
func Summarize(samples []int64) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum float64
	for _, v := range samples {
		sum += float64(v)
	}
	return Summary{
		Count:  len(samples),
		MinMs:  ms(samples[0]),
		MeanMs: sum / float64(len(samples)) / 1e6,
		P50Ms:  ms(Percentile(samples, 50)),
		P90Ms:  ms(Percentile(samples, 90)),
		P99Ms:  ms(Percentile(samples, 99)),
		P999Ms: ms(Percentile(samples, 99.9)),
		MaxMs:  ms(samples[len(samples)-1]),
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest sample such that at least p% of the samples are at or
// below it. It returns 0 for no samples.
func Percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	// rank = ceil(p/100 * n), computed in integers of 1e-6 to dodge float
	// error on exact ranks such as 50% of 10.
	num := int64(p*1e6+0.5) * int64(n)
	rank := num / 100e6
	if num%100e6 != 0 {
		rank++
	}
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }
