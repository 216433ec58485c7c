package deliverer

import (
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// rewinds notices a consumer handing out again, as first deliveries,
// messages it handed out before. A consumer hands out new messages in
// stream order and redeliveries with a delivery count above one; but a
// clustered consumer whose leader dies before its replicas agreed on what
// it had delivered starts again from what they agreed, and what it hands
// out again counts as delivered once. Such a message at or below the
// highest stream sequence this replica already had from that consumer may
// have been attempted: its jobs are checked against the event log like a
// redelivery's. Safe for concurrent use (the fetch loop and the overflow
// loop share it).
type rewinds struct {
	mu      sync.Mutex
	highest map[string]uint64 // consumer name → highest stream sequence handed out here
}

func newRewinds() *rewinds { return &rewinds{highest: map[string]uint64{}} }

// again records md's message and reports whether its consumer handed out
// its stream sequence, or a later one, to this replica before.
func (r *rewinds) again(md *jetstream.MsgMetadata) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.highest[md.Consumer]
	if md.Sequence.Stream > seen {
		r.highest[md.Consumer] = md.Sequence.Stream
		return false
	}
	return true
}

// forget drops what the consumers handed out: they were made again, and
// the stream with them perhaps, its sequences starting over.
func (r *rewinds) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.highest)
}
