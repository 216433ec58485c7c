package daemon

import (
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The registry tells how long goroutines waited for a CPU: hubbench reads
// it, and an operator tells a saturated process from a slow dependency.
func TestRegistryHasSchedulerLatencies(t *testing.T) {
	runtime.Gosched()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(NewRegistry(), promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`go_sched_latencies_seconds_bucket{le="+Inf"}`, "process_cpu_seconds_total", "go_goroutines"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
