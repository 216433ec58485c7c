package deliverer

import (
	"slices"
	"time"
)

// With Config.AdaptiveConcurrency, a lane's POSTs in flight adapt to its
// URL's answer times, as TCP Vegas adapts a window to round-trip times. The
// lane keeps the fastest answer it saw lately (base); after each round (as
// many answers as its limit), the round's median answer time says how many
// of its POSTs were waiting somewhere instead of being served,
// queued = limit × (1 − base/median): under vegasAlpha the limit grows by
// one, over vegasBeta it shrinks by one.
//
// A receiver far away answers in its round trip however many POSTs are in
// flight, so its lane keeps all of Config.PerURLConcurrency. A lane whose
// answers slow down as it sends more (the deliverer's or the receiver's CPUs
// are the limit, or the receiver queues) sends fewer, and leaves the CPUs
// to every other hub's POSTs. It is opt-in: on saturated CPUs it cannot
// tell its own POSTs' queueing from the rest of the pipeline's, and settles
// a lone busy lane too low for its hub's top rate (docs/delivery.md).

const (
	// vegasAlpha and vegasBeta bound the POSTs a lane may keep waiting: few
	// enough that a busy lane adds little to the CPUs' run queue, enough that
	// it never runs dry between answers.
	vegasAlpha = 2
	vegasBeta  = 4
	// baseWindow is how long a fastest answer counts as the lane's base: the
	// base is the fastest of this window and the last, so a receiver that
	// became slower for good is not taken for congestion for longer than
	// two windows.
	baseWindow = 10 * time.Second
)

// postLimit is one lane's adaptive limit on POSTs in flight. Its zero value
// is not usable; see newPostLimit. It is not safe for concurrent use (lanes
// guards it).
type postLimit struct {
	limit, max int
	adaptive   bool

	base          time.Duration // min(curMin, prevMin); 0 until the first answer
	curMin        time.Duration // fastest answer of the current window
	prevMin       time.Duration // fastest answer of the previous window
	windowStarted time.Time

	round []time.Duration // answer times of the current round
}

// newPostLimit starts a lane at max POSTs in flight (what a lane without
// adaptation always has); adaptive false keeps it there.
func newPostLimit(max int, adaptive bool, now time.Time) postLimit {
	return postLimit{limit: max, max: max, adaptive: adaptive, windowStarted: now}
}

// observe takes the answer time of one of the lane's POSTs that the
// receiver answered with 2xx; it reports the change of the limit (-1, 0 or
// +1). Failed POSTs are not observed: a URL that refuses connections
// answers fast and would set a base no delivery reaches, and one that hangs
// is handled by the lane's stuck rule and the circuit breaker.
func (p *postLimit) observe(d time.Duration, now time.Time) int {
	if !p.adaptive || d <= 0 {
		return 0
	}
	if since := now.Sub(p.windowStarted); since >= baseWindow {
		p.prevMin = p.curMin
		if since >= 2*baseWindow { // the window before this one had no answer
			p.prevMin = 0
		}
		p.curMin, p.windowStarted, p.base = 0, now, p.prevMin
	}
	if p.curMin == 0 || d < p.curMin {
		p.curMin = d
	}
	if p.base == 0 || d < p.base {
		p.base = d
	}
	p.round = append(p.round, d)
	if len(p.round) < p.limit {
		return 0
	}
	slices.Sort(p.round)
	median := p.round[len(p.round)/2]
	p.round = p.round[:0]
	queued := float64(p.limit) * (1 - float64(p.base)/float64(median))
	switch {
	case queued < vegasAlpha && p.limit < p.max:
		p.limit++
		return 1
	case queued > vegasBeta && p.limit > 1:
		p.limit--
		return -1
	}
	return 0
}
