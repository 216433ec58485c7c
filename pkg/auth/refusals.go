package auth

import (
	"log/slog"
	"sync"
	"time"
)

// refusals logs refused calls without letting a flood of them become a
// flood of log lines: the first refusal of each reason at once, then at
// most one line per interval, counting the refusals in between. It is safe
// for concurrent use.
type refusals struct {
	log     *slog.Logger
	every   time.Duration
	counted func(reason string) // Config.Refused; may be nil

	mu      sync.Mutex
	reasons map[string]*refusalCount
}

type refusalCount struct {
	logged time.Time // when a line was last written
	since  int       // refusals not logged since
}

func newRefusals(log *slog.Logger, every time.Duration, counted func(string)) *refusals {
	return &refusals{log: log, every: every, counted: counted, reasons: map[string]*refusalCount{}}
}

// note records a refused call and logs it when it is due.
func (r *refusals) note(reason, method, peer string) {
	if r.counted != nil {
		r.counted(reason)
	}
	now := time.Now()
	r.mu.Lock()
	c := r.reasons[reason]
	if c == nil {
		c = &refusalCount{}
		r.reasons[reason] = c
	}
	if !c.logged.IsZero() && now.Sub(c.logged) < r.every {
		c.since++
		r.mu.Unlock()
		return
	}
	suppressed := c.since
	c.logged, c.since = now, 0
	r.mu.Unlock()
	r.log.Info("grpc call refused", "reason", reason, "method", method, "peer", peer, "refused_since_last_line", suppressed)
}
