package deliverer

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// runners run the deliverer's per-job work (a lane's attempts, a record's
// settling, a fail-fast) on goroutines that outlive it for a while: a
// goroutine that finished its work waits runnerIdle for the next before it
// exits. An attempt's stack is deep (net/http, tracing, signing), and a new
// goroutine grows its small first stack again, copying it at each
// doubling, for every job it runs.
type runners struct {
	handoff chan func() // unbuffered: a send succeeds only to a waiting runner
	wg      *sync.WaitGroup
	stop    <-chan struct{}
	started prometheus.Counter // runners started
}

// runnerIdle is how long a runner waits for more work before it exits.
const runnerIdle = time.Second

func newRunners(wg *sync.WaitGroup, stop <-chan struct{}, started prometheus.Counter) *runners {
	return &runners{handoff: make(chan func()), wg: wg, stop: stop, started: started}
}

// run runs f on a waiting runner, or on a new one when none waits. wg
// counts every runner, so shutdown waits for the work they run.
func (r *runners) run(f func()) {
	if r.give(f) {
		return
	}
	r.started.Inc()
	r.wg.Add(1)
	go r.loop(f)
}

// give hands f to a runner waiting for work, if one is.
func (r *runners) give(f func()) bool {
	select {
	case r.handoff <- f:
		return true
	default:
		return false
	}
}

// loop runs f, then the work handed over while it waits, until it has
// waited runnerIdle for nothing or stop is closed.
func (r *runners) loop(f func()) {
	defer r.wg.Done()
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(runnerIdle)
		select {
		case f = <-r.handoff:
		case <-idle.C:
			return
		case <-r.stop:
			return
		}
	}
}
