package expander

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubhooks/hubhooks/pkg/batch"
)

// SeenEvents remembers which domain events the expander has expanded, so
// that a publisher that publishes an event again (a retry after a crash,
// minutes later, or without Nats-Msg-Id) does not cause a second delivery.
// JetStream's de-duplication window (HUBHOOKS_DEDUPE_WINDOW, minutes) drops
// copies that carry the same Nats-Msg-Id; this memory lasts longer and does
// not need the header. Implementations are safe for concurrent use.
type SeenEvents interface {
	// Remember records that the stream message seq carries domain event id
	// of hub and says what the memory knew of it within its window. flood
	// says the hub has a backlog in the expander: its questions must not
	// make those of other hubs wait.
	Remember(ctx context.Context, hub, id string, seq uint64, flood bool) (Sighting, error)
}

// Sighting is what the seen memory knew of a domain event's message.
type Sighting int

const (
	// Unseen: no message carried the event. It is expanded.
	Unseen Sighting = iota
	// SeenThisMessage: this same message was seen before. It is expanded
	// again as a redelivery (its jobs may have gone out already), whatever
	// its delivery count: JetStream delivers it again after a crash before
	// its ack, and a clustered consumer whose leader died before its
	// replicas agreed on what it had delivered hands it out again as if
	// for the first time.
	SeenThisMessage
	// SeenOtherMessage: another message carried the event (a publisher's
	// repeat). It is not expanded.
	SeenOtherMessage
)

// DefaultSeenWindow is how long a domain event id is remembered by default
// (HUBHOOKS_SEEN_WINDOW).
const DefaultSeenWindow = time.Hour

// MinSeenWindow is the shortest window NewSeen accepts: shorter than
// JetStream's own de-duplication window it would add nothing.
const MinSeenWindow = time.Minute

// RedisSeen is SeenEvents in Redis: one key per remembered event,
// <prefix>seen:{<hub>}:<16 hex digits of SHA-256(id)> holding the stream
// sequence of the message that carried it first, expiring after the window.
// The events asked about at the same time go to Redis in one pipeline
// (pkg/batch): one round trip per batch rather than one per event, which
// the expander's workers otherwise each wait for during a flood.
type RedisSeen struct {
	rdb    redis.UniversalClient
	prefix string
	window time.Duration
	// pending and floodPending batch the questions of hubs without and
	// with a backlog: each has senders of its own, so a quiet hub's
	// question never waits for a flood's round trips to Redis.
	pending, floodPending *batch.Batcher[*seenQuestion]
}

// seenQuestion is one Remember waiting for its batch's pipeline.
type seenQuestion struct {
	ctx      context.Context
	key, seq string
	answer   Sighting // once the pipeline returned
}

// Limits of one pipeline of seen-memory questions: like the fan-outs', two
// senders at once for each batcher and no lingering, so a lone event is
// not delayed.
const (
	seenBatchMax  = 64
	seenFlushers  = 2
	seenBatchByte = 1 << 20
)

// NewSeen returns a RedisSeen on rdb that remembers events for window (0
// means DefaultSeenWindow).
func NewSeen(rdb redis.UniversalClient, prefix string, window time.Duration) (*RedisSeen, error) {
	if window == 0 {
		window = DefaultSeenWindow
	}
	var errs []error
	if rdb == nil {
		errs = append(errs, fmt.Errorf("%w: redis client", ErrNilDependency))
	}
	if window < MinSeenWindow {
		errs = append(errs, fmt.Errorf("expander: seen window %v: at least %v", window, MinSeenWindow))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r := &RedisSeen{rdb: rdb, prefix: prefix + "seen:", window: window}
	lim := batch.Limits{MaxWeight: seenBatchMax, MaxBytes: seenBatchByte, Flushers: seenFlushers}
	r.pending, r.floodPending = batch.New(lim, r.ask), batch.New(lim, r.ask)
	return r, nil
}

// Window is how long an event is remembered.
func (r *RedisSeen) Window() time.Duration { return r.window }

func (r *RedisSeen) key(hub, id string) string {
	sum := sha256.Sum256([]byte(id))
	return r.prefix + "{" + hub + "}:" + hex.EncodeToString(sum[:8])
}

// Remember is one SET NX GET (pipelined with the questions of other
// workers): the first message of an event stores its sequence; a later one
// reads the sequence stored.
func (r *RedisSeen) Remember(ctx context.Context, hub, id string, seq uint64, flood bool) (Sighting, error) {
	q := &seenQuestion{ctx: ctx, key: r.key(hub, id), seq: strconv.FormatUint(seq, 10)}
	pending := r.pending
	if flood {
		pending = r.floodPending
	}
	if err := pending.Add("", q, 1, len(q.key)+len(q.seq)); err != nil {
		return Unseen, fmt.Errorf("remember domain event: %w", err)
	}
	return q.answer, nil
}

// ask sends qs in one pipeline, under the context of the oldest question
// (they all come with the expander's same short timeout), and sets each
// answer. An error fails the whole batch.
func (r *RedisSeen) ask(_ string, qs []*seenQuestion) error {
	ctx := qs[0].ctx
	cmds := make([]*redis.StatusCmd, len(qs))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range qs {
			cmds[i] = p.SetArgs(ctx, q.key, q.seq, redis.SetArgs{Mode: "NX", TTL: r.window, Get: true})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for i, q := range qs {
		prev, err := cmds[i].Result()
		switch {
		case errors.Is(err, redis.Nil):
			q.answer = Unseen
		case err != nil:
			return err
		case prev == q.seq:
			q.answer = SeenThisMessage
		default:
			q.answer = SeenOtherMessage
		}
	}
	return nil
}
