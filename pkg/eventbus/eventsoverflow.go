package eventbus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"
)

// Domain events of a hub that floods the expander wait in a stream of
// their own, one subject per hub in OverflowShards shards:
//
//	HUBHOOKS_EVENTS           <ENTITY>.<ACTION>                       consumer "expander"
//	HUBHOOKS_EVENTS_OVERFLOW  hubhooks.events.overflow.<shard>.<hub>  consumer "expander-overflow-<shard>"
//
// The domain events' subjects are the publishers' contract and carry no
// hub, so the expander, not the publisher, moves a flood's further events
// there (EventsOverflowCopyOf: a copy, then the ack of the original) and
// reads them back with the room other hubs leave, in turns across the
// shards. Only the expander may publish there. The overflow stream is a
// work queue: a copy is gone once expanded, and HUBHOOKS_EVENTS keeps the
// original for inspection and replay. A hub's shard is OverflowShard, as
// for delivery messages. See services/expander and docs/delivery.md.
const (
	StreamEventsOverflow = "HUBHOOKS_EVENTS_OVERFLOW"

	subjectEventsOverflow = "hubhooks.events.overflow."

	// EventsOverflowSubjects matches every events-overflow subject, for the
	// stream's subjects and permissions.
	EventsOverflowSubjects = subjectEventsOverflow + "*.*"

	// ConsumerExpanderOverflowPrefix starts the names of the expander's
	// durable consumers of the overflow shards: "expander-overflow-0" to
	// "expander-overflow-15".
	ConsumerExpanderOverflowPrefix = "expander-overflow-"
)

// Headers of an events-overflow copy: where and when the original was
// stored, and its own Nats-Msg-Id (the copy has one of its own).
const (
	HeaderOriginalTime  = "Hubhooks-Original-Time"
	HeaderOriginalMsgID = "Hubhooks-Original-Msg-Id"
)

// EventsOverflowSubject is the events-overflow subject of hubID.
func EventsOverflowSubject(hubID string) string {
	return subjectEventsOverflow + strconv.Itoa(OverflowShard(hubID)) + "." + hubID
}

// ExpanderOverflowConsumerName is the expander's consumer of events-overflow
// shard shard.
func ExpanderOverflowConsumerName(shard int) string {
	return ConsumerExpanderOverflowPrefix + strconv.Itoa(shard)
}

// ExpanderConsumers are the expander's consumers: the domain events', then
// one per events-overflow shard.
func ExpanderConsumers() []ConsumerRef {
	out := []ConsumerRef{{Stream: StreamEvents, Consumer: ConsumerExpander}}
	for s := range OverflowShards {
		out = append(out, ConsumerRef{Stream: StreamEventsOverflow, Consumer: ExpanderOverflowConsumerName(s)})
	}
	return out
}

// EventsOverflowStreamConfig is the work queue of the domain events moved
// out of a flooding hub's way. Its duplicate window absorbs a second copy
// of one event (the expander died between the copy and the ack, and the
// original came back after the ack wait, which the expander keeps at most
// half of DeliveriesDuplicateWindow).
func EventsOverflowStreamConfig(o Options) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamEventsOverflow,
		Description: "hubhooks domain events of a flooding hub, waiting for the expander's room",
		Subjects:    []string{EventsOverflowSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  min(o.DuplicateWindow, DeliveriesDuplicateWindow),
	}
}

// ExpanderOverflowConsumerConfig is the expander's consumer of
// events-overflow shard shard.
func ExpanderOverflowConsumerConfig(shard int, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	cfg := ConsumerConfig(ExpanderOverflowConsumerName(shard), ackWait, maxAckPending)
	cfg.FilterSubject = subjectEventsOverflow + strconv.Itoa(shard) + ".*"
	return cfg
}

// EventsOverflowCopyOf is the copy of msg, a domain event of hubID taken
// from HUBHOOKS_EVENTS (md its metadata), for the hub's events-overflow
// subject: the same body and headers, except the server's own (Nats-*),
// plus where and when the original was stored, its Nats-Msg-Id, and
// Nats-Msg-Id = "HUBHOOKS_EVENTS.<sequence>", so copying it twice (the
// expander died between the copy and the ack) stores it once. again
// (JetStream delivered the original again) sets HeaderRecheck: its jobs
// may have been published before.
func EventsOverflowCopyOf(hubID string, msg jetstream.Msg, md *jetstream.MsgMetadata, again bool) *nats.Msg {
	m := &nats.Msg{Subject: EventsOverflowSubject(hubID), Header: nats.Header{}, Data: msg.Data()}
	for k, vs := range msg.Headers() {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		m.Header[k] = vs
	}
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		m.Header.Set(HeaderOriginalMsgID, id)
	}
	seq := strconv.FormatUint(md.Sequence.Stream, 10)
	m.Header.Set(HeaderOriginalSubject, msg.Subject())
	m.Header.Set(HeaderOriginalStream, StreamEvents)
	m.Header.Set(HeaderOriginalSeq, seq)
	m.Header.Set(HeaderOriginalTime, md.Timestamp.UTC().Format(time.RFC3339Nano))
	m.Header.Set(jetstream.MsgIDHeader, StreamEvents+"."+seq)
	if again {
		m.Header.Set(HeaderRecheck, "1")
	}
	return m
}

// EventsOverflowOriginal is what an events-overflow copy says of its
// original: its subject, headers (with its own Nats-Msg-Id, without the
// copy's), stream sequence and time in HUBHOOKS_EVENTS, and whether it may
// have been expanded before (HeaderRecheck). ok is false when the copy
// lacks any of it.
type EventsOverflowOriginal struct {
	Subject string
	Header  nats.Header
	Seq     uint64
	Stored  time.Time
	Again   bool
}

// OriginalOfEventsOverflow reads EventsOverflowOriginal from the headers
// of a copy.
func OriginalOfEventsOverflow(h nats.Header) (o EventsOverflowOriginal, ok bool) {
	seq, err1 := strconv.ParseUint(h.Get(HeaderOriginalSeq), 10, 64)
	stored, err2 := time.Parse(time.RFC3339Nano, h.Get(HeaderOriginalTime))
	o.Subject = h.Get(HeaderOriginalSubject)
	if err1 != nil || err2 != nil || o.Subject == "" {
		return o, false
	}
	o.Seq, o.Stored, o.Again = seq, stored, h.Get(HeaderRecheck) != ""
	o.Header = nats.Header{}
	for k, vs := range h {
		switch k {
		case HeaderOriginalSubject, HeaderOriginalStream, HeaderOriginalSeq, HeaderOriginalTime, HeaderOriginalMsgID, HeaderRecheck:
			continue
		}
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		o.Header[k] = vs
	}
	if id := h.Get(HeaderOriginalMsgID); id != "" {
		o.Header.Set(jetstream.MsgIDHeader, id)
	}
	return o, true
}

// ContentTypeEventsOverflowBatch marks an events-overflow message that
// carries several domain events of one hub (EventsOverflowBatchOf): one
// stored message, fetched and acknowledged once, for up to a batch of
// moved events instead of one each.
const ContentTypeEventsOverflowBatch = "application/vnd.hubhooks.events-overflow-batch"

// MovedEvent is one domain event of an events-overflow batch: what its
// original was (EventsOverflowOriginal) and its body.
type MovedEvent struct {
	EventsOverflowOriginal
	Data []byte
}

// Fields of a MovedEvent frame, encoded with protowire (no schema of its
// own: the frame is internal to the expander).
const (
	movedSubject protowire.Number = iota + 1
	movedHeader                   // repeated: a key and a value, fields 1 and 2
	movedSeq
	movedStored // Unix nanoseconds
	movedAgain
	movedData
)

// EventsOverflowBatchOf is the copy of msgs, domain events of hubID taken
// from HUBHOOKS_EVENTS in stream order (mds their metadata), for the hub's
// events-overflow subject: each event framed with its subject, headers
// (except the server's own, Nats-*, but with its Nats-Msg-Id), stream
// sequence and time, and whether JetStream delivered it again (again[i]:
// its jobs may have been published before). Nats-Msg-Id is
// "HUBHOOKS_EVENTS.<first sequence>-<last sequence>": the same events
// copied again in the same batch are stored once; copied again in another
// batch they were delivered again, and so are expanded as redeliveries.
func EventsOverflowBatchOf(hubID string, msgs []jetstream.Msg, mds []*jetstream.MsgMetadata, again []bool) *nats.Msg {
	var data []byte
	var frame []byte
	for i, msg := range msgs {
		frame = frame[:0]
		frame = protowire.AppendTag(frame, movedSubject, protowire.BytesType)
		frame = protowire.AppendString(frame, msg.Subject())
		for k, vs := range msg.Headers() {
			if strings.HasPrefix(k, "Nats-") && k != jetstream.MsgIDHeader {
				continue
			}
			for _, v := range vs {
				// A key and a value, fields 1 and 2 (a tag byte each), in place.
				frame = protowire.AppendTag(frame, movedHeader, protowire.BytesType)
				frame = protowire.AppendVarint(frame, uint64(2+protowire.SizeBytes(len(k))+protowire.SizeBytes(len(v))))
				frame = protowire.AppendTag(frame, 1, protowire.BytesType)
				frame = protowire.AppendString(frame, k)
				frame = protowire.AppendTag(frame, 2, protowire.BytesType)
				frame = protowire.AppendString(frame, v)
			}
		}
		frame = protowire.AppendTag(frame, movedSeq, protowire.VarintType)
		frame = protowire.AppendVarint(frame, mds[i].Sequence.Stream)
		frame = protowire.AppendTag(frame, movedStored, protowire.VarintType)
		frame = protowire.AppendVarint(frame, uint64(mds[i].Timestamp.UnixNano()))
		if again[i] {
			frame = protowire.AppendTag(frame, movedAgain, protowire.VarintType)
			frame = protowire.AppendVarint(frame, 1)
		}
		frame = protowire.AppendTag(frame, movedData, protowire.BytesType)
		frame = protowire.AppendBytes(frame, msg.Data())
		data = protowire.AppendBytes(data, frame) // length-prefixed, as frames.go
	}
	id := StreamEvents + "." + strconv.FormatUint(mds[0].Sequence.Stream, 10) + "-" + strconv.FormatUint(mds[len(mds)-1].Sequence.Stream, 10)
	return &nats.Msg{
		Subject: EventsOverflowSubject(hubID),
		Header:  nats.Header{HeaderContentType: []string{ContentTypeEventsOverflowBatch}, jetstream.MsgIDHeader: []string{id}},
		Data:    data,
	}
}

// IsEventsOverflowBatch says whether h is the header of an events-overflow
// batch (EventsOverflowBatchOf) rather than of one copied event.
func IsEventsOverflowBatch(h nats.Header) bool {
	return h.Get(HeaderContentType) == ContentTypeEventsOverflowBatch
}

// EventsOverflowBatch decodes the events of an events-overflow batch, in
// the order they were copied. The bodies alias data.
func EventsOverflowBatch(data []byte) ([]MovedEvent, error) {
	var out []MovedEvent
	err := eachFrame(data, "moved event", func(i int, frame []byte) error {
		e, err := decodeMoved(frame)
		if err != nil {
			return fmt.Errorf("moved event %d: %w", i, err)
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

func decodeMoved(b []byte) (MovedEvent, error) {
	e := MovedEvent{EventsOverflowOriginal: EventsOverflowOriginal{Header: nats.Header{}}}
	var stored, seq bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return e, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case typ == protowire.BytesType && (num == movedSubject || num == movedHeader || num == movedData):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return e, protowire.ParseError(n)
			}
			b = b[n:]
			switch num {
			case movedSubject:
				e.Subject = string(v)
			case movedData:
				e.Data = v
			default:
				k, val, err := decodeHeaderField(v)
				if err != nil {
					return e, err
				}
				e.Header.Add(k, val)
			}
		case typ == protowire.VarintType && (num == movedSeq || num == movedStored || num == movedAgain):
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return e, protowire.ParseError(n)
			}
			b = b[n:]
			switch num {
			case movedSeq:
				e.Seq, seq = v, true
			case movedStored:
				e.Stored, stored = time.Unix(0, int64(v)), true
			default:
				e.Again = v != 0
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return e, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	if e.Subject == "" || !seq || !stored {
		return e, errors.New("no subject, sequence or time")
	}
	return e, nil
}

func decodeHeaderField(b []byte) (k, v string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return "", "", errors.New("bad header field")
		}
		b = b[n:]
		s, n := protowire.ConsumeString(b)
		if n < 0 {
			return "", "", protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case 1:
			k = s
		case 2:
			v = s
		}
	}
	return k, v, nil
}
