package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hubhooks/hubhooks/pkg/cascade"
	"github.com/hubhooks/hubhooks/pkg/eventbus"
	eventsv1 "github.com/hubhooks/hubhooks/proto/hubhooks/events/v1"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/latency"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/sink"
	"github.com/hubhooks/hubhooks/services/cmd/hubbench/internal/stages"
)

// eventFactory builds the run's domain events.
type eventFactory struct {
	subject string
	entity  string // data field of the entity, e.g. "user"
	pad     *structpb.Value
	extra   map[string]*structpb.Value // e.g. baseUrls for API.CREATED
}

func newEventFactory(rules *cascade.Rules, subject string, payload int) (*eventFactory, error) {
	if !rules.Has(subject) {
		return nil, fmt.Errorf("-event %q: no cascade rule for it", subject)
	}
	entity, _, _ := strings.Cut(subject, ".")
	field, ok := rules.PayloadField(entity)
	if !ok {
		field = strings.ToLower(entity)
	}
	// The entity's JSON is {"id":"e<seq>","name":"<pad>","sentAt":<19 digits>}:
	// about 50 bytes of framing, the rest is padding.
	pad := strings.Repeat("x", max(0, payload-50))
	f := &eventFactory{subject: subject, entity: field, pad: structpb.NewStringValue(pad), extra: map[string]*structpb.Value{}}
	if subject == "API.CREATED" {
		f.extra["baseUrls"] = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{
			structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"url": structpb.NewStringValue("https://bench.example.com")}}),
		}})
	}
	return f, nil
}

func (f *eventFactory) event(id, hubID string, seq int64, sent time.Time) *eventsv1.DomainEvent {
	fields := map[string]*structpb.Value{
		f.entity: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"id":     structpb.NewStringValue(fmt.Sprintf("e%d", seq)),
			"name":   f.pad,
			"sentAt": structpb.NewNumberValue(float64(sent.UnixNano())),
		}}),
	}
	for k, v := range f.extra {
		fields[k] = v
	}
	return &eventsv1.DomainEvent{
		Id: id, HubId: hubID, Type: f.subject, OccurredAt: timestamppb.New(sent),
		Data: &structpb.Struct{Fields: fields}, Actor: "hubbench",
	}
}

// msg is a domain event of traffic class class (see package sink) for
// hubID, stamped with the time now: the receiver measures latency from it.
func (f *eventFactory) msg(class string, seq int64, hubID string) (*nats.Msg, error) {
	sent := time.Now()
	id := sink.EventID(class, seq, sent)
	// The generated encoder: the tool's own publishing shares the machine
	// with the system under test, so it should cost as little as it can.
	b, err := f.event(id, hubID, seq, sent).MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encode domain event: %w", err)
	}
	m := nats.NewMsg(f.subject)
	m.Header.Set(eventbus.HeaderContentType, eventbus.ContentTypeProtobuf)
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = b
	return m, nil
}

// pubResult counts what one publisher got acknowledged.
type pubResult struct {
	acked, errors int64
	elapsed       time.Duration
	// ackLatency is publish->JetStream ack of each acknowledged event:
	// how long the events stream took to take it.
	ackLatency latency.Summary
}

// ackCounter publishes asynchronously, at most window publishes awaiting
// their ack, and counts the acks.
type ackCounter struct {
	js       jetstream.JetStream
	acks     chan pendingAck
	done     chan struct{}
	res      pubResult // the ack reader's until done
	lat      latency.Recorder
	start    time.Time
	sendErrs int64 // the publisher's
}

type pendingAck struct {
	fut  jetstream.PubAckFuture
	sent time.Time
}

func newAckCounter(js jetstream.JetStream, window int) *ackCounter {
	a := &ackCounter{js: js, acks: make(chan pendingAck, window), done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(a.done)
		for p := range a.acks {
			select {
			case <-p.fut.Ok():
				a.res.acked++
				a.lat.Record(time.Since(p.sent))
			case <-p.fut.Err():
				a.res.errors++
			case <-time.After(30 * time.Second):
				a.res.errors++
			}
		}
	}()
	return a
}

// publish sends m; it blocks while window publishes await their ack.
func (a *ackCounter) publish(m *nats.Msg) {
	sent := time.Now()
	fut, err := a.js.PublishMsgAsync(m)
	if err != nil {
		// The async window is full past the stall wait: count and go on.
		a.sendErrs++
		return
	}
	a.acks <- pendingAck{fut: fut, sent: sent}
}

// publishUncounted sends m without waiting for or counting its ack.
func (a *ackCounter) publishUncounted(m *nats.Msg) { _, _ = a.js.PublishMsgAsync(m) }

// close waits for the outstanding acks and returns the counts.
func (a *ackCounter) close() pubResult {
	a.res.elapsed = time.Since(a.start)
	close(a.acks)
	<-a.done
	a.res.errors += a.sendErrs
	a.res.ackLatency = a.lat.Summary()
	return a.res
}

// publishClosedLoop publishes domain events of class for d at rate per
// second (0: as fast as the pipeline delivers them), round-robin over hubs;
// each shadow hub gets one event (class + "s") for each of them, outside
// the window (hubs whose URLs never answer).
// The window bounds events in flight end to end: an event is published
// only while fewer than window events' worth of deliveries are still to
// arrive at the slowest destination (delivered reports the slowest
// destination's deliveries times the destinations, perEvent is deliveries
// per event), so a fast JetStream never builds a backlog that only
// measures queueing. Async publishes awaiting their ack are bounded by the
// same window.
func publishClosedLoop(ctx context.Context, js jetstream.JetStream, f *eventFactory, class string, hubs, shadow []hub, d time.Duration, rate float64, window int, delivered func() int64, perEvent int64) pubResult {
	// The slowest destination moves on once per round over the hubs, so a
	// window under two rounds would stall (never reach every destination,
	// below one round) or publish in rounds.
	window = max(window, 2*len(hubs))
	a := newAckCounter(js, window)
	start := time.Now()
	end := start.Add(d)
	var seq, encodeErrs int64
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		due := int64(1 << 62)
		if rate > 0 {
			due = int64(now.Sub(start).Seconds()*rate) + 1
			if seq >= due {
				time.Sleep(time.Millisecond)
				continue
			}
		}
		for seq < due && time.Now().Before(end) {
			if seq*perEvent-delivered() >= int64(window)*perEvent {
				time.Sleep(200 * time.Microsecond)
				break
			}
			m, err := f.msg(class, seq, hubs[seq%int64(len(hubs))].id)
			for _, h := range shadow {
				if sm, err := f.msg(class+"s", seq, h.id); err == nil {
					a.publishUncounted(sm)
				}
			}
			seq++
			if err != nil {
				encodeErrs++
				continue
			}
			a.publish(m)
			if rate <= 0 && seq%256 == 0 {
				break // re-check the clock and ctx
			}
		}
	}
	res := a.close()
	res.errors += encodeErrs
	return res
}

// publishBurst publishes n domain events of class for one hub as fast as
// JetStream acknowledges them, at most window awaiting their ack: a hub
// importing its users.
func publishBurst(ctx context.Context, js jetstream.JetStream, f *eventFactory, class string, hubID string, n, window int) pubResult {
	a := newAckCounter(js, window)
	var encodeErrs int64
	for seq := range int64(n) {
		if ctx.Err() != nil {
			break
		}
		m, err := f.msg(class, seq, hubID)
		if err != nil {
			encodeErrs++
			continue
		}
		a.publish(m)
	}
	res := a.close()
	res.errors += encodeErrs
	return res
}

// publishTrickle publishes domain events of class at rate per second in
// all, round-robin over hubs and evenly spaced, until stop is closed or ctx
// ends. With traces set, each event's trace is begun there.
func publishTrickle(ctx context.Context, js jetstream.JetStream, f *eventFactory, class string, hubs []hub, rate float64, stop <-chan struct{}, traces *stages.Collector) pubResult {
	a := newAckCounter(js, 256)
	start := time.Now()
	var seq, encodeErrs int64
	for {
		due := start.Add(time.Duration(float64(seq) / rate * float64(time.Second)))
		select {
		case <-ctx.Done():
			res := a.close()
			res.errors += encodeErrs
			return res
		case <-stop:
			res := a.close()
			res.errors += encodeErrs
			return res
		case <-time.After(time.Until(due)):
		}
		m, err := f.msg(class, seq, hubs[seq%int64(len(hubs))].id)
		seq++
		if err != nil {
			encodeErrs++
			continue
		}
		if traces != nil {
			traces.Begin(m, class)
		}
		a.publish(m)
	}
}

// drain waits until want deliveries of c arrived, at most timeout, and
// gives up early when nothing arrives for 30s. It reports whether all came.
func drain(ctx context.Context, c *sink.Class, want int64, timeout time.Duration, logf func(string, ...any)) bool {
	deadline := time.Now().Add(timeout)
	last, lastChange, lastLog := c.Counts().Unique, time.Now(), time.Now()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		got := c.Counts().Unique
		if got >= want {
			return true
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > 30*time.Second {
			logf("no delivery for 30s: %d of %d arrived", got, want)
			return false
		}
		if time.Since(lastLog) > 5*time.Second {
			logf("waiting: %d of %d deliveries", got, want)
			lastLog = time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := c.Counts().Unique
	if got < want {
		logf("gave up waiting after %s: %d of %d deliveries", timeout, got, want)
	}
	return got >= want
}
