package expander

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
)

// queued puts one event per hub name, in order.
func queued(t *testing.T, q *readAhead, hubs ...string) {
	t.Helper()
	for _, h := range hubs {
		if !q.put(h, &pending{size: 1, err: errFor(h)}) {
			t.Fatalf("put %s refused", h)
		}
	}
}

// errFor tags an event with its hub (the queue only sees the hub name).
func errFor(hub string) error { return permanent("test", "%s", hub) }

func takeHubs(t *testing.T, q *readAhead, n int) []string {
	t.Helper()
	var out []string
	for range n {
		p, ok := q.take()
		if !ok {
			t.Fatalf("take refused after %v", out)
		}
		out = append(out, p.err.(*permanentError).detail)
	}
	return out
}

func TestReadAheadTakesTurnsAcrossHubs(t *testing.T) {
	tests := []struct {
		name string
		put  []string
		want []string
	}{
		{"one hub keeps its order", []string{"a", "a", "a"}, []string{"a", "a", "a"}},
		{"a flood does not hold up the next hub", []string{"a", "a", "a", "a", "b"}, []string{"a", "b", "a", "a", "a"}},
		{"hubs in turn, in order of arrival", []string{"a", "a", "b", "b", "c"}, []string{"a", "b", "c", "a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newReadAhead(100, 100, 64)
			queued(t, q, tt.put...)
			if got := takeHubs(t, q, len(tt.want)); !slices.Equal(got, tt.want) {
				t.Errorf("taken %v, want %v", got, tt.want)
			}
			if n, b := q.size(); n != 0 || b != 0 {
				t.Errorf("size after taking all = %d events %d bytes", n, b)
			}
		})
	}
	// A hub that empties and comes back waits for the hubs queued meanwhile.
	q := newReadAhead(100, 100, 64)
	queued(t, q, "a", "b", "b")
	takeHubs(t, q, 1) // a
	queued(t, q, "a")
	if got := takeHubs(t, q, 3); !slices.Equal(got, []string{"b", "a", "b"}) {
		t.Errorf("taken %v, want [b a b]", got)
	}
}

func TestReadAheadBoundsAndClose(t *testing.T) {
	q := newReadAhead(2, 100, 64)
	queued(t, q, "a", "a")
	put := make(chan bool)
	go func() { put <- q.put("b", &pending{size: 1, err: errFor("b")}) }()
	select {
	case <-put:
		t.Fatal("put into a full read-ahead did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	takeHubs(t, q, 1)
	if ok := <-put; !ok {
		t.Fatal("put refused once there was room")
	}
	// Bytes bound too, but one event alone may be larger.
	big := newReadAhead(10, 5, 64)
	if !big.put("a", &pending{size: 50}) {
		t.Fatal("a lone oversized event refused")
	}
	go func() { put <- big.put("a", &pending{size: 1}) }()
	select {
	case <-put:
		t.Fatal("put past the byte bound did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	// close hands back what is queued and releases the waiting put.
	if got := big.close(); len(got) != 1 || got[0].size != 50 {
		t.Errorf("close returned %v, want the queued event", got)
	}
	if ok := <-put; ok {
		t.Error("put waiting at close reported it queued the event")
	}
	if _, ok := big.take(); ok {
		t.Error("take after close returned an event")
	}
	if got := q.close(); len(got) != 2 {
		t.Errorf("close returned %d events, want 2", len(got))
	}
}

func TestReadAheadStale(t *testing.T) {
	q := newReadAhead(10, 100, 64)
	t0 := time.Now()
	old := &pending{size: 1, touched: t0.Add(-time.Minute)}
	fresh := &pending{size: 1, touched: t0}
	q.put("a", old)
	q.put("b", fresh)
	if got := q.stale(t0.Add(-time.Second), t0); len(got) != 1 {
		t.Fatalf("stale = %d messages, want the old one", len(got))
	}
	if !old.touched.Equal(t0) {
		t.Errorf("the stale event was not marked touched")
	}
	if got := q.stale(t0.Add(-time.Second), t0); len(got) != 0 {
		t.Errorf("reported in progress twice in a row: %d", len(got))
	}
}

func TestPeekHubID(t *testing.T) {
	s := &Service{cfg: Config{MaxEventBytes: 100}.withDefaults()}
	pb := func(ev *eventsv1.DomainEvent) []byte {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ev := pb(&eventsv1.DomainEvent{Id: "e1", HubId: "acme", Type: "USER.UPDATED"})
	twice := append(append([]byte{}, ev...), pb(&eventsv1.DomainEvent{HubId: "other"})...)
	tests := []struct {
		name        string
		contentType string
		data        []byte
		hub         string
		ok          bool
	}{
		{"protobuf", "application/protobuf", ev, "acme", true},
		{"no content type means protobuf", "", ev, "acme", true},
		{"x-protobuf", "application/x-protobuf", ev, "acme", true},
		{"the last hub_id wins, as in decoding", "", twice, "other", true},
		{"no hub_id", "", pb(&eventsv1.DomainEvent{Id: "e1"}), "", false},
		{"json is decoded at once", "application/json", []byte(`{"id":"e1","hubId":"acme"}`), "", false},
		{"json without its header too", "", []byte(`{"id":"e1","hubId":"acme"}`), "", false},
		{"truncated", "", ev[:len(ev)-3], "", false},
		{"oversize", "", append(ev, make([]byte, 200)...), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := nats.Header{}
			if tt.contentType != "" {
				hdr.Set("Content-Type", tt.contentType)
			}
			hub, ok := s.peekHubID(&fuzzMsg{subject: "USER.UPDATED", data: tt.data, hdr: hdr})
			if hub != tt.hub || ok != tt.ok {
				t.Errorf("peekHubID = %q %v, want %q %v", hub, ok, tt.hub, tt.ok)
			}
		})
	}
}

// takeQuietInto sends the hub of the event takeQuiet returns on got
// ("closed" once the read-ahead is closed).
func takeQuietInto(q *readAhead, got chan<- string) {
	p, ok := q.takeQuiet()
	if !ok {
		got <- "closed"
		return
	}
	got <- p.err.(*permanentError).detail
}

// The workers reserved for hubs that do not flood skip a flood, wait while
// only a flood is queued, and wake for the next quiet hub's event.
func TestReadAheadQuietWorkersSkipAFlood(t *testing.T) {
	q := newReadAhead(100, 100, 2)
	queued(t, q, "flood", "flood", "flood", "quiet", "flood")
	p, ok := q.takeQuiet()
	if !ok || p.err.(*permanentError).detail != "quiet" {
		t.Fatalf("takeQuiet = %v, %v; want the quiet hub's event", p, ok)
	}
	// The flood keeps its turn and its order for the other workers.
	if got := takeHubs(t, q, 2); !slices.Equal(got, []string{"flood", "flood"}) {
		t.Errorf("taken %v, want [flood flood]", got)
	}
	got := make(chan string, 1)
	go takeQuietInto(q, got)
	// Two flood events left: at quietMax, so no longer a flood.
	select {
	case h := <-got:
		if h != "flood" {
			t.Fatalf("takeQuiet = %s, want the flood hub, now down to quietMax events", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("takeQuiet waited while a hub with quietMax events was queued")
	}
	queued(t, q, "flood", "flood") // 3 queued: a flood again
	go takeQuietInto(q, got)
	select {
	case h := <-got:
		t.Fatalf("takeQuiet took %s while only a flood was queued", h)
	case <-time.After(100 * time.Millisecond):
	}
	queued(t, q, "late")
	select {
	case h := <-got:
		if h != "late" {
			t.Fatalf("takeQuiet = %s, want late", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("takeQuiet did not wake for a quiet hub's event")
	}
	q.close()
}

// admitted admits one live event of hub and returns the verdict.
func admitted(q *readAhead, hub string) verdict {
	return q.admit(hub, &pending{size: 1, err: errFor(hub)}, true)
}

func TestReadAheadMovesAFloodPastHalf(t *testing.T) {
	q := newReadAhead(8, 1000, 1)
	// The first half is for every hub, a flood included.
	for i := range 4 {
		if v := admitted(q, "a"); v != admitQueued {
			t.Fatalf("a's event %d: %v, want queued", i, v)
		}
	}
	// Half full: the flood moves, a hub with at most quietMax queued does not.
	if v := admitted(q, "a"); v != admitMove {
		t.Fatalf("a's 5th event: %v, want moved", v)
	}
	if v := admitted(q, "b"); v != admitQueued {
		t.Fatalf("b's first event: %v, want queued", v)
	}
	// While its copy is not read back, a's events move even with room:
	// they would overtake it.
	takeHubs(t, q, 5)
	if v := admitted(q, "a"); v != admitMove {
		t.Fatalf("a's event after its copy: %v, want moved", v)
	}
	t0 := time.Now()
	q.movedOne("a", true, false, t0) // the first copy stored
	q.movedOne("a", true, true, t0)  // the second a duplicate: nothing to read back
	if room, _ := q.overflowRoom(); room != 4 {
		t.Errorf("overflow room %d, want 4 (up to half)", room)
	}
	if !q.putBack("a", &pending{size: 1, overflow: true, first: true, err: errFor("a")}) {
		t.Fatal("putBack refused")
	}
	if v := admitted(q, "a"); v != admitQueued {
		t.Fatalf("a's event once its copies are read back: %v, want queued", v)
	}
	// A copy that failed has nothing to read back; one read back again
	// (redelivered) does not count twice.
	if v := admitted(q, "c"); v != admitQueued {
		t.Fatal("c queued")
	}
	takeHubs(t, q, 3)
	for range 4 {
		admitted(q, "c")
	}
	if v := admitted(q, "c"); v != admitMove {
		t.Fatalf("c's event past half: %v, want moved", v)
	}
	admitted(q, "c") // moved too: 2 unread
	q.movedOne("c", false, false, t0)
	q.putBack("c", &pending{size: 1, overflow: true, first: false, err: errFor("c")})
	if v := admitted(q, "c"); v != admitMove {
		t.Fatalf("c with a copy unread: %v, want moved", v)
	}
	// A shard found empty by a fetch asked after the last copy was stored:
	// another replica read it back.
	q.movedOne("c", true, false, t0)
	q.movedOne("c", true, false, t0)
	q.shardEmpty(eventbus.OverflowShard("c"), t0.Add(-time.Second))
	if m := q.moved["c"]; m == nil || m.unread != 2 {
		t.Fatalf("a fetch asked before the copies were stored cleared them: %+v", m)
	}
	q.shardEmpty(eventbus.OverflowShard("c")+1, t0.Add(time.Second))
	if q.moved["c"] == nil {
		t.Fatal("another shard's fetch cleared c")
	}
	q.shardEmpty(eventbus.OverflowShard("c"), t0.Add(time.Second))
	if q.moved["c"] != nil {
		t.Fatal("c still moves after its shard was found empty")
	}
}

func TestReadAheadFullMovesAFloodAndHoldsTheOthers(t *testing.T) {
	q := newReadAhead(4, 1000, 0)
	for _, h := range []string{"w", "x", "y", "z"} {
		admitted(q, h)
	}
	// Full of hubs with a backlog (quietMax 0): their next events move.
	if v := admitted(q, "x"); v != admitMove {
		t.Fatalf("x with a backlog in a full read-ahead: %v, want moved", v)
	}
	// An event that cannot name a subject waits for room, as a new hub's does.
	got := make(chan verdict, 2)
	go func() { got <- q.admit("bad.hub", &pending{size: 1}, false) }()
	go func() { got <- admitted(q, "v") }()
	select {
	case v := <-got:
		t.Fatalf("admitted into a full read-ahead: %v", v)
	case <-time.After(50 * time.Millisecond):
	}
	takeHubs(t, q, 2)
	for range 2 {
		if v := <-got; v != admitQueued {
			t.Errorf("once there is room: %v, want queued", v)
		}
	}
	q.close()
	if v := admitted(q, "v"); v != admitClosed {
		t.Errorf("after close: %v", v)
	}
}
