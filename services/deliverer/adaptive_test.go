package deliverer

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubhooks/hubhooks/pkg/poll"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// feed gives p answers of rtt(limit) each, one round after another, a
// millisecond apart from start; it returns the time after the last.
func feed(p *postLimit, start time.Time, answers int, rtt func(limit int) time.Duration) time.Time {
	now := start
	for range answers {
		p.observe(rtt(p.limit), now)
		now = now.Add(time.Millisecond)
	}
	return now
}

func TestPostLimitKeepsADistantReceiversLimit(t *testing.T) {
	t.Parallel()
	p := newPostLimit(16, true, time.Now())
	feed(&p, time.Now(), 2000, func(int) time.Duration { return 50 * ms })
	if p.limit != 16 {
		t.Fatalf("limit %d after answers that do not slow down, want all 16", p.limit)
	}
}

func TestPostLimitShrinksWhileAnswersSlowWithIt(t *testing.T) {
	t.Parallel()
	// The CPUs are the limit: they serve one POST per 100 µs, so the first
	// round, sent at once, is answered after 100, 200, … µs, and then every
	// answer takes 100 µs per POST in flight.
	answers := 0
	cpuBound := func(limit int) time.Duration {
		answers++
		if answers <= 16 {
			return time.Duration(answers) * 100 * time.Microsecond
		}
		return time.Duration(limit) * 100 * time.Microsecond
	}
	p := newPostLimit(16, true, time.Now())
	now := feed(&p, time.Now(), 2000, cpuBound)
	if p.limit < 3 || p.limit > 5 {
		t.Fatalf("limit %d, want the 3-5 that keep vegasAlpha-vegasBeta POSTs waiting", p.limit)
	}
	// The load went elsewhere: answers are as fast at any limit again.
	feed(&p, now, 2000, func(int) time.Duration { return 100 * time.Microsecond })
	if p.limit != 16 {
		t.Fatalf("limit %d after answers stopped slowing down, want all 16 back", p.limit)
	}
}

func TestPostLimitForgetsAnOldBase(t *testing.T) {
	t.Parallel()
	start := time.Now()
	p := newPostLimit(16, true, start)
	now := feed(&p, start, 100, func(int) time.Duration { return 10 * ms })
	// The receiver became 5 times slower for good, at any limit: taken for
	// congestion until its fast answers are two windows old.
	now = feed(&p, now, 1000, func(int) time.Duration { return 50 * ms })
	if p.limit == 16 {
		t.Fatal("limit kept at 16 right after the answers slowed fivefold; want it lower")
	}
	feed(&p, now.Add(2*baseWindow), 2000, func(int) time.Duration { return 50 * ms })
	if p.limit != 16 {
		t.Fatalf("limit %d two windows after the receiver slowed for good, want 16", p.limit)
	}
}

func TestPostLimitFixedNeverMoves(t *testing.T) {
	t.Parallel()
	p := newPostLimit(16, false, time.Now())
	feed(&p, time.Now(), 2000, func(limit int) time.Duration { return time.Duration(limit) * ms })
	if p.limit != 16 {
		t.Fatalf("fixed limit moved to %d", p.limit)
	}
}

func TestLaneRunsWhatItsLimitAllows(t *testing.T) {
	t.Parallel()
	ls := newLanes(4, true, 8, 100)
	now := time.Now()
	for range 8 {
		ls.admit(&heldJob{lane: "hub url", fetched: now}, now)
	}
	l := ls.m["hub url"]
	if l.running != 4 || len(l.queue) != 4 {
		t.Fatalf("running %d queued %d, want 4 and 4", l.running, len(l.queue))
	}
	l.limit.limit = 2 // its answers slowed down
	for i, want := range []bool{false, false, true} {
		h, more := ls.next("hub url", now)
		if (h != nil) != want || len(more) != 0 {
			t.Fatalf("next %d: job %v, %d more; want a job: %v, none more", i, h != nil, len(more), want)
		}
	}
	if l.running != 2 {
		t.Fatalf("running %d after the limit went to 2, want 2", l.running)
	}
	l.limit.limit = 4 // they sped up again
	h, more := ls.next("hub url", now)
	if h == nil || len(more) != 2 || l.running != 4 || len(l.queue) != 0 {
		t.Fatalf("job %v, %d more, running %d, queued %d; want a job, 2 more, 4 running, none queued", h != nil, len(more), l.running, len(l.queue))
	}
}

// slowingReceiver answers each POST after fixed plus perInFlight times the
// POSTs in flight when it arrived (itself included), and remembers that
// count.
type slowingReceiver struct {
	fixed       time.Duration
	perInFlight time.Duration
	inFlight    atomic.Int64
	mu          sync.Mutex
	seen        []int64
}

func (r *slowingReceiver) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	r.mu.Lock()
	r.seen = append(r.seen, n)
	r.mu.Unlock()
	time.Sleep(r.fixed + time.Duration(n)*r.perInFlight)
	w.WriteHeader(http.StatusNoContent)
}

// mostInFlight is the most POSTs in flight any of the last n arrivals saw.
func (r *slowingReceiver) mostInFlight(n int) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var m int64
	for _, v := range r.seen[max(0, len(r.seen)-n):] {
		m = max(m, v)
	}
	return m
}

func (r *slowingReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// deliverTo delivers jobs POSTs to a receiver of its own answering like rx,
// through a deliverer with 16 POSTs per URL, fixed or adaptive, and returns
// once all arrived.
func deliverTo(t *testing.T, rx *slowingReceiver, jobs int, fixed bool) {
	t.Helper()
	e := newTestEnv(t)
	srv := httptest.NewServer(rx)
	t.Cleanup(srv.Close)
	u := &hubhooksv1.CallbackUrl{Id: "url_1", Url: srv.URL}
	cfg := e.addHub("hub1", u)
	for i := range jobs {
		e.publishJob(t, cfg, u, i, false)
	}
	c := baseConfig(e.prefix, 0, time.Hour)
	c.PerURLConcurrency = 16
	c.AdaptiveConcurrency = !fixed
	c.HoldLimit = 4 * time.Second // the jobs wait for the lane, not in the retry store
	e.start(t, c, newSender(t))
	poll.Until(t, 60*time.Second, "every job POSTed", func() bool { return rx.count() >= jobs })
}

func TestAdaptiveLimitSendsFewerToAURLThatSlowsDown(t *testing.T) {
	t.Parallel()
	rx := &slowingReceiver{perInFlight: 3 * ms}
	deliverTo(t, rx, 400, false)
	if n := rx.mostInFlight(100); n > 8 {
		t.Fatalf("the last 100 POSTs found up to %d in flight, want at most 8: the limit did not follow the slowing answers", n)
	}

	fixed := &slowingReceiver{perInFlight: 3 * ms}
	deliverTo(t, fixed, 400, true)
	if n := fixed.mostInFlight(100); n < 12 {
		t.Fatalf("with the limit fixed, the last 100 POSTs found at most %d in flight, want about 16", n)
	}
}

func TestAdaptiveLimitKeepsADistantURLsPOSTs(t *testing.T) {
	t.Parallel()
	rx := &slowingReceiver{fixed: 30 * ms} // however many are in flight
	deliverTo(t, rx, 600, false)
	if n := rx.mostInFlight(200); n < 12 {
		t.Fatalf("the last 200 POSTs found at most %d in flight, want about 16: a distant URL lost its POSTs", n)
	}
}

func TestLaneComingBackKeepsWhatItLearnt(t *testing.T) {
	t.Parallel()
	ls := newLanes(16, true, 8, 100)
	now := time.Now()
	run := func(at time.Time) *lane {
		ls.admit(&heldJob{lane: "hub url", fetched: at}, at)
		return ls.m["hub url"]
	}
	run(now).limit.limit = 3 // it learnt that 3 is enough
	if h, _ := ls.next("hub url", now); h != nil || ls.m["hub url"] != nil {
		t.Fatal("the lane without work was kept")
	}
	if l := run(now.Add(time.Second)); l.limit.limit != 3 {
		t.Fatalf("limit %d when the lane came back a second later, want the 3 it learnt", l.limit.limit)
	}
	ls.next("hub url", now.Add(time.Second))
	ls.forgetIdle(now.Add(time.Second + limitMemory))
	if len(ls.idle) != 0 {
		t.Fatalf("%d idle limits kept after limitMemory, want none", len(ls.idle))
	}
	if l := run(now.Add(time.Second + limitMemory)); l.limit.limit != 16 {
		t.Fatalf("limit %d when the lane came back after limitMemory, want all 16", l.limit.limit)
	}
}
