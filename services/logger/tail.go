package logger

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger/logstore"
)

// tailReadChunk bounds the entries read from Redis in one round trip.
const tailReadChunk = 256

// errTooSlow ends a tail whose reader fell behind.
var errTooSlow = status.Error(codes.ResourceExhausted,
	"the reader fell behind the event log's changes and was dropped; list to catch up, then tail again")

// TailEventLogs follows a hub's change notices (announce): each names
// entries, which are read again from the store, filtered and sent. What one
// call holds is bounded: at most TailBacklog entry ids waiting to be read
// and as many entries waiting for the client; beyond either the reader is
// dropped (errTooSlow). Sending runs on its own goroutine, so a client that
// stops reading cannot hold the call: the call ends and the blocked send
// fails with it.
func (g *server) TailEventLogs(req *hubhooksv1.TailEventLogsRequest, stream grpc.ServerStreamingServer[hubhooksv1.TailEventLogsResponse]) error {
	q, err := listQuery(tailAsList(req))
	if err != nil {
		return err
	}
	ctx := stream.Context()
	nc := g.svc.js.Conn()
	backlog := newChangedIDs(g.svc.cfg.TailBacklog)
	sub, err := nc.Subscribe(eventbus.LogChangedSubject(q.HubID), func(m *nats.Msg) {
		backlog.add(eventbus.DecodeLogChanged(m.Data))
	})
	if err != nil {
		return status.Error(codes.Unavailable, "tail: cannot follow the event log right now; try again")
	}
	defer func() { _ = sub.Unsubscribe() }()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		// The subscription must be known to the NATS server before the
		// first message says the tail is live.
		return status.Error(codes.Unavailable, "tail: cannot follow the event log right now; try again")
	}

	out := make(chan *hubhooksv1.TailEventLogsResponse, g.svc.cfg.TailBacklog)
	done := make(chan struct{})
	defer close(done)
	sendErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-done:
				return
			case m := <-out:
				select {
				case <-done:
					return
				default:
				}
				if err := stream.Send(m); err != nil {
					sendErr <- err
					return
				}
			}
		}
	}()
	push := func(m *hubhooksv1.TailEventLogsResponse) bool {
		select {
		case out <- m:
			return true
		default:
			return false
		}
	}

	push(&hubhooksv1.TailEventLogsResponse{})
	heartbeat := time.NewTicker(g.svc.cfg.TailHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-g.svc.stopping:
			return status.Error(codes.Unavailable, "the server is shutting down; tail again")
		case err := <-sendErr:
			return err
		case <-heartbeat.C:
			if !push(&hubhooksv1.TailEventLogsResponse{}) {
				return errTooSlow
			}
			continue
		case <-backlog.wake:
		}
		ids, overflow := backlog.take()
		if dropped, _ := sub.Dropped(); overflow || dropped > 0 {
			return errTooSlow
		}
		for len(ids) > 0 {
			n := min(len(ids), tailReadChunk)
			logs, err := g.svc.store.Summaries(ctx, q.HubID, ids[:n])
			if err != nil {
				return g.toStatus(ctx, "tail event logs", err)
			}
			for _, l := range logs {
				if l != nil && q.Matches(l) && !push(&hubhooksv1.TailEventLogsResponse{EventLog: l}) {
					return errTooSlow
				}
			}
			ids = ids[n:]
		}
	}
}

// tailAsList is the ListEventLogsRequest with the filters of req: fields
// are copied by name, so a filter added to both messages applies to tails
// without code here.
func tailAsList(req *hubhooksv1.TailEventLogsRequest) *hubhooksv1.ListEventLogsRequest {
	list := &hubhooksv1.ListEventLogsRequest{}
	dst := list.ProtoReflect()
	fields := dst.Descriptor().Fields()
	req.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if f := fields.ByName(fd.Name()); f != nil {
			if fd.Message() != nil {
				v = protoreflect.ValueOfMessage(proto.Clone(v.Message().Interface()).ProtoReflect())
			}
			dst.Set(f, v)
		}
		return true
	})
	return list
}

// changedIDs is one tail's backlog: the ids of entries announced changed and
// not yet read, each once, at most limit (then overflow is set and no more
// are kept). wake has a value while ids are waiting.
type changedIDs struct {
	limit int
	wake  chan struct{}

	mu       sync.Mutex
	ids      []string
	set      map[string]struct{}
	overflow bool
}

func newChangedIDs(limit int) *changedIDs {
	return &changedIDs{limit: limit, wake: make(chan struct{}, 1), set: map[string]struct{}{}}
}

func (c *changedIDs) add(ids []string) {
	c.mu.Lock()
	for _, id := range ids {
		if c.overflow {
			break
		}
		if !logstore.ValidID(id) {
			continue
		}
		if _, ok := c.set[id]; ok {
			continue
		}
		if len(c.ids) == c.limit {
			c.overflow = true
			break
		}
		c.set[id] = struct{}{}
		c.ids = append(c.ids, id)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take returns the waiting ids and empties the backlog.
func (c *changedIDs) take() (ids []string, overflow bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids, c.ids = c.ids, nil
	clear(c.set)
	return ids, c.overflow
}
