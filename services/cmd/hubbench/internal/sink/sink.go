// Package sink is the load tool's webhook receiver: plain net/http servers
// (keep-alive on) on loopback that count what arrives, detect duplicates by
// webhook-id and URL, and measure publish→receive latency from the domain
// event id, which carries the publish time.
//
// Domain event ids the load tool publishes have the form
// "<class>-<seq>-<publishUnixNano>": class separates warm-up, measured and
// ceiling traffic, so stragglers of one phase never count in another.
package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/latency"
)

// EventID builds a domain event id of the form the sink parses.
func EventID(class string, seq int64, sent time.Time) string {
	return class + "-" + strconv.FormatInt(seq, 10) + "-" + strconv.FormatInt(sent.UnixNano(), 10)
}

// ParseEventID splits an id made by EventID. ok is false for any other id.
func ParseEventID(id string) (class string, seq int64, sent time.Time, ok bool) {
	class, rest, found := strings.Cut(id, "-")
	if !found || class == "" {
		return "", 0, time.Time{}, false
	}
	seqStr, nanoStr, found := strings.Cut(rest, "-")
	if !found {
		return "", 0, time.Time{}, false
	}
	seq, err := strconv.ParseInt(seqStr, 10, 64)
	if err != nil {
		return "", 0, time.Time{}, false
	}
	nanos, err := strconv.ParseInt(nanoStr, 10, 64)
	if err != nil {
		return "", 0, time.Time{}, false
	}
	return class, seq, time.Unix(0, nanos), true
}

// Class counts the webhooks of one traffic class.
type Class struct {
	received   atomic.Int64
	duplicates atomic.Int64
	first      atomic.Int64 // unix nanos of the first webhook
	windowMax  atomic.Int64 // highest latency (ns) since the last TakeWindowMax
	last       atomic.Int64 // unix nanos of the latest webhook
	lat        latency.Recorder

	mu   sync.Mutex
	seen map[[2]uint64]struct{}
	// perDest counts unique webhooks by destination (host + path).
	perDest map[string]int64
	// destLat is the latency of unique webhooks by destination.
	destLat map[string]*latency.Recorder
}

// Counts is a snapshot of a Class.
type Counts struct {
	// Received counts every POST, duplicates included.
	Received int64
	// Unique counts distinct (webhook-id, URL) pairs.
	Unique int64
	// Duplicates is Received - Unique.
	Duplicates int64
	// First and Last are when the first and the latest webhook arrived.
	First, Last time.Time
}

// Counts returns the class's counters now.
func (c *Class) Counts() Counts {
	r, d := c.received.Load(), c.duplicates.Load()
	out := Counts{Received: r, Unique: r - d, Duplicates: d}
	if f := c.first.Load(); f != 0 {
		out.First = time.Unix(0, f)
	}
	if l := c.last.Load(); l != 0 {
		out.Last = time.Unix(0, l)
	}
	return out
}

// Latency summarises the publish→receive latency of the first arrival of
// every unique webhook of the class.
func (c *Class) Latency() latency.Summary { return c.lat.Summary() }

// LatencyByDestination summarises the latency of each destination (host
// and path) that received a webhook of the class: with one URL per hub,
// per hub.
func (c *Class) LatencyByDestination() map[string]latency.Summary {
	c.mu.Lock()
	recs := make(map[string]*latency.Recorder, len(c.destLat))
	for d, r := range c.destLat {
		recs[d] = r
	}
	c.mu.Unlock()
	out := make(map[string]latency.Summary, len(recs))
	for d, r := range recs {
		out[d] = r.Summary()
	}
	return out
}

// ReceivedAt is how many unique webhooks of the class destination (host and
// path) received.
func (c *Class) ReceivedAt(dest string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.perDest[dest]
}

// MinPerDestination is the fewest unique webhooks any one destination (host
// and path) received, 0 until n destinations received one.
func (c *Class) MinPerDestination(n int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.perDest) < n {
		return 0
	}
	m := int64(-1)
	for _, v := range c.perDest {
		if m < 0 || v < m {
			m = v
		}
	}
	return max(m, 0)
}

// TakeWindowMax returns the highest latency seen since its last call and
// starts a new window.
func (c *Class) TakeWindowMax() time.Duration { return time.Duration(c.windowMax.Swap(0)) }

// Sink receives webhooks on one or more loopback listeners.
type Sink struct {
	status int
	// classes maps a class name to its counters; replaced whole (copy on
	// write) by AddClass, so requests read it without a lock.
	classes atomic.Pointer[map[string]*Class]
	seed1   maphash.Seed
	seed2   maphash.Seed

	errors  atomic.Int64
	unknown atomic.Int64
	// delays maps a listener's host:port to how long its answers wait
	// (SetAnswerDelay); replaced whole, so requests read it without a lock.
	delays atomic.Pointer[map[string]time.Duration]

	mu      sync.Mutex
	servers []*http.Server
	wg      sync.WaitGroup
}

// New returns a sink that answers status (200 when 0) and counts the given
// classes; webhooks of any other class count as unknown.
func New(status int, classes ...string) *Sink {
	if status == 0 {
		status = http.StatusOK
	}
	s := &Sink{status: status, seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
	m := make(map[string]*Class, len(classes))
	for _, c := range classes {
		m[c] = newClass()
	}
	s.classes.Store(&m)
	return s
}

func newClass() *Class { return &Class{seen: make(map[[2]uint64]struct{}, 1024)} }

// Class returns the counters of class name, nil when the sink does not count it.
func (s *Sink) Class(name string) *Class { return (*s.classes.Load())[name] }

// AddClass starts counting class name (a no-op when it is counted already)
// and returns its counters. Webhooks of the class that arrived before count
// as unknown.
func (s *Sink) AddClass(name string) *Class {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.classes.Load()
	if c := old[name]; c != nil {
		return c
	}
	m := make(map[string]*Class, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	c := newClass()
	m[name] = c
	s.classes.Store(&m)
	return c
}

// Errors counts requests that were not a readable webhook (unreadable body,
// not JSON, no webhook-id).
func (s *Sink) Errors() int64 { return s.errors.Load() }

// Unknown counts webhooks whose domain event id is of no counted class.
func (s *Sink) Unknown() int64 { return s.unknown.Load() }

type body struct {
	DomainEvent struct {
		ID string `json:"id"`
	} `json:"domain_event"`
}

// ServeHTTP handles one webhook.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	id := r.Header.Get("webhook-id")
	var ev body
	if err != nil || id == "" || json.Unmarshal(b, &ev) != nil {
		s.errors.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	class, _, sent, ok := ParseEventID(ev.DomainEvent.ID)
	c := (*s.classes.Load())[class]
	if !ok || c == nil {
		s.unknown.Add(1)
	} else {
		s.count(c, id, r.Host, r.URL.Path, sent, now)
	}
	if m := s.delays.Load(); m != nil {
		if d := (*m)[r.Host]; d > 0 {
			time.Sleep(d) // a receiver far away: counted on arrival, answered later
		}
	}
	w.WriteHeader(s.status)
}

// SetAnswerDelay makes the listeners of urls (from Listen) answer d after a
// webhook arrives, as a receiver one round trip of d away would; the
// webhook's latency is still taken on arrival. It replaces every earlier
// delay; no urls (or d 0) removes them.
func (s *Sink) SetAnswerDelay(urls []string, d time.Duration) error {
	m := map[string]time.Duration{}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("sink answer delay: %w", err)
		}
		m[u.Host] = d
	}
	s.delays.Store(&m)
	return nil
}

func (s *Sink) count(c *Class, webhookID, host, path string, sent, now time.Time) {
	var h1, h2 maphash.Hash
	h1.SetSeed(s.seed1)
	h2.SetSeed(s.seed2)
	for _, h := range []*maphash.Hash{&h1, &h2} {
		h.WriteString(webhookID)
		h.WriteByte(0)
		h.WriteString(host)
		h.WriteString(path)
	}
	key := [2]uint64{h1.Sum64(), h2.Sum64()}
	dest := host + path
	var destLat *latency.Recorder
	c.mu.Lock()
	_, dup := c.seen[key]
	if !dup {
		c.seen[key] = struct{}{}
		if c.perDest == nil {
			c.perDest = map[string]int64{}
			c.destLat = map[string]*latency.Recorder{}
		}
		c.perDest[dest]++
		if destLat = c.destLat[dest]; destLat == nil {
			destLat = &latency.Recorder{}
			c.destLat[dest] = destLat
		}
	}
	c.mu.Unlock()
	c.received.Add(1)
	nanos := now.UnixNano()
	c.first.CompareAndSwap(0, nanos)
	storeMax(&c.last, nanos)
	if dup {
		c.duplicates.Add(1)
		return
	}
	if sent.UnixNano() > 0 {
		d := now.Sub(sent)
		c.lat.Record(d)
		destLat.Record(d)
		storeMax(&c.windowMax, int64(d))
	}
}

// Listen starts n HTTP servers on 127.0.0.1 (free ports) and returns one
// callback URL for each, "http://127.0.0.1:<port>/hook/<i>": distinct
// endpoints, as distinct receivers would be.
func (s *Sink) Listen(n int) ([]string, error) {
	urls := make([]string, 0, n)
	for i := range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("sink listen: %w", err)
		}
		srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		s.mu.Lock()
		s.servers = append(s.servers, srv)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = srv.Serve(lis)
		}()
		urls = append(urls, fmt.Sprintf("http://%s/hook/%d", lis.Addr(), i))
	}
	return urls, nil
}

// Close stops every server, waiting at most until ctx ends for in-flight
// requests.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			_ = srv.Close()
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// storeMax raises a to v unless it already holds more.
func storeMax(a *atomic.Int64, v int64) {
	for cur := a.Load(); v > cur && !a.CompareAndSwap(cur, v); cur = a.Load() {
	}
}
