package deliverer

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hubhooks/hubhooks/pkg/poll"
)

// TestRunnersReuseAWaitingGoroutine: a runner that finished its work waits
// for more, and work handed over then runs on it (no new goroutine grows
// its stack again); work that finds none waiting starts one; runners exit
// on stop, so shutdown's wait ends.
func TestRunnersReuseAWaitingGoroutine(t *testing.T) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	started := prometheus.NewCounter(prometheus.CounterOpts{Name: "started"})
	r := newRunners(&wg, stop, started)
	done := make(chan int)
	r.run(func() { done <- 0 })
	<-done
	for i := 1; i < 10; i++ {
		poll.Until(t, 5*time.Second, "a waiting runner takes the work", func() bool { return r.give(func() { done <- i }) })
		if got := <-done; got != i {
			t.Fatalf("ran job %d, want %d", got, i)
		}
	}
	if n := testutil.ToFloat64(started); n != 1 {
		t.Errorf("10 jobs one after another started %v runners, want 1", n)
	}
	block := make(chan struct{})
	r.run(func() { <-block }) // the waiting runner, or a new one
	r.run(func() { <-block }) // a new one: none waits
	if n := testutil.ToFloat64(started); n < 2 || n > 3 {
		t.Errorf("two jobs at once: %v runners started in all, want 2 or 3", n)
	}
	close(block)
	close(stop)
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("runners did not exit on stop")
	}
}
