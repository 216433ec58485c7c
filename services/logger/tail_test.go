package logger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hubhooks/hubhooks/pkg/eventbus"
	"github.com/hubhooks/hubhooks/pkg/poll"
	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
	"github.com/hubhooks/hubhooks/services/logger"
)

// openTail starts a tail and waits for its first (empty) message, after
// which every change is sent.
func openTail(t *testing.T, client hubhooksv1.EventLogServiceClient, req *hubhooksv1.TailEventLogsRequest) grpc.ServerStreamingClient[hubhooksv1.TailEventLogsResponse] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	stream, err := client.TailEventLogs(ctx, req)
	if err != nil {
		t.Fatalf("TailEventLogs: %v", err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatalf("first tail message: %v", err)
	}
	if first.GetEventLog() != nil {
		t.Fatalf("first tail message = %v, want the empty 'live' message", first)
	}
	return stream
}

// nextEntry returns the next entry of stream, skipping heartbeats.
func nextEntry(t *testing.T, stream grpc.ServerStreamingClient[hubhooksv1.TailEventLogsResponse]) *hubhooksv1.EventLog {
	t.Helper()
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("tail: %v", err)
		}
		if m.GetEventLog() != nil {
			return m.GetEventLog()
		}
	}
}

func TestTailSendsMatchingChangesOnly(t *testing.T) {
	e := start(t, logger.Config{TailHeartbeat: 50 * time.Millisecond})
	stream := openTail(t, e.client, &hubhooksv1.TailEventLogsRequest{HubId: "hub1", EventType: "BILLINGPLAN.CREATED"})

	other := newJob("hub2", "dlv_other_hub", time.Now())
	otherType := newJob("hub1", "dlv_other_type", time.Now())
	otherType.EventType = "API.CREATED"
	job := newJob("hub1", "dlv_t1", time.Now())
	publish(t, e.js, record(other, 1, hubhooksv1.StatusSucceeded, 200), "")
	publish(t, e.js, record(otherType, 1, hubhooksv1.StatusSucceeded, 200), "")
	publish(t, e.js, record(job, 1, hubhooksv1.StatusRetrying, 500), "")
	got := nextEntry(t, stream)
	if got.GetId() != "dlv_t1" || got.GetStatus() != hubhooksv1.StatusRetrying.APIName() || got.GetAttempts() != 1 {
		t.Fatalf("first entry = %s %s attempts %d, want dlv_t1 retrying 1 (other hubs and types filtered out)", got.GetId(), got.GetStatus(), got.GetAttempts())
	}
	publish(t, e.js, record(job, 2, hubhooksv1.StatusSucceeded, 200), "")
	got = nextEntry(t, stream)
	if got.GetId() != "dlv_t1" || got.GetStatus() != hubhooksv1.StatusSucceeded.APIName() || got.GetAttempts() != 2 || got.GetResponseStatusCode() != 200 {
		t.Fatalf("changed entry = %s %s attempts %d code %d, want dlv_t1 succeeded 2 200", got.GetId(), got.GetStatus(), got.GetAttempts(), got.GetResponseStatusCode())
	}
}

func TestTailRefusesBadFilters(t *testing.T) {
	e := start(t, logger.Config{})
	stream, err := e.client.TailEventLogs(context.Background(), &hubhooksv1.TailEventLogsRequest{HubId: "bad hub", Status: "lost"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("tail with a bad hub id and status: %v, want InvalidArgument", err)
	}
}

// A reader that stops reading is dropped once the bounded backlog is full,
// and the server keeps nothing for it.
func TestTailDropsSlowReader(t *testing.T) {
	// One attempt message per write, so each notice names 50 entries, fewer
	// than the backlog holds: the reader is dropped because it reads nothing.
	e := start(t, logger.Config{TailBacklog: 64, BatchSize: 1})
	// A fixed, small flow-control window, so the server's sends block soon.
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	stream := openTail(t, hubhooksv1.NewEventLogServiceClient(conn), &hubhooksv1.TailEventLogsRequest{HubId: "hub1"})

	// Many changes, in batches, while the client reads nothing.
	for b := range 60 {
		var recs []*deliveryv1.AttemptRecorded
		var sizes []int
		for i := range 50 {
			job := newJob("hub1", fmt.Sprintf("dlv_slow_%d_%d", b, i), time.Now())
			rec := record(job, 1, hubhooksv1.StatusSucceeded, 200)
			recs, sizes = append(recs, rec), append(sizes, rec.SizeVT())
		}
		msg, err := eventbus.NewAttemptBatchMsg("hub1", recs, sizes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	// Every record written (and so announced) before the client reads.
	poll.Until(t, 60*time.Second, "every record written", func() bool {
		return streamMsgs(t, e.js, eventbus.StreamAttempts) == 0
	})
	// Now read: what was sent before the drop, then ResourceExhausted.
	n := 0
	for {
		m, err := stream.Recv()
		if err != nil {
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("after %d messages: %v, want ResourceExhausted", n, err)
			}
			t.Logf("dropped after %d of 3000 changes", n)
			if n == 0 || n >= 3000 {
				t.Fatalf("%d of 3000 changes arrived before the drop; want some (sent until the reader's window filled) but not all (buffered, not dropped)", n)
			}
			return
		}
		if m.GetEventLog() != nil {
			n++
		}
	}
}

// TailEventLogsRequest carries every filter of ListEventLogsRequest, with
// the same name, number and type, so that the tail's filters are the list's.
func TestTailRequestHasListFilters(t *testing.T) {
	list := (&hubhooksv1.ListEventLogsRequest{}).ProtoReflect().Descriptor().Fields()
	tail := (&hubhooksv1.TailEventLogsRequest{}).ProtoReflect().Descriptor().Fields()
	for i := range list.Len() {
		f := list.Get(i)
		if f.Name() == "page_size" || f.Name() == "page_token" {
			continue
		}
		g := tail.ByName(f.Name())
		if g == nil {
			t.Errorf("TailEventLogsRequest has no %s: add the ListEventLogs filter to it", f.Name())
			continue
		}
		if g.Number() != f.Number() || g.Kind() != f.Kind() || g.Cardinality() != f.Cardinality() || (f.Kind() == protoreflect.MessageKind && g.Message().FullName() != f.Message().FullName()) {
			t.Errorf("TailEventLogsRequest.%s differs from ListEventLogsRequest's (number, type or cardinality)", f.Name())
		}
	}
}
