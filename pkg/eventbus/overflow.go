package eventbus

import (
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Delivery messages travel on two kinds of subjects of HUBHOOKS_DELIVERIES:
//
//	live      hubhooks.deliveries.<hub>                   consumer "deliverer"
//	overflow  hubhooks.deliveries.overflow.<shard>.<hub>  consumer "deliverer-overflow-<shard>"
//
// Everything is published live. A deliverer that already holds its share of
// a hub's jobs moves that hub's further live messages to the hub's overflow
// shard (OverflowCopyOf), and takes overflow messages only with the room
// live traffic leaves, in turns across the shards: one hub's backlog waits
// in its shard instead of in front of every other hub's jobs. A hub's shard
// is fixed (OverflowShard); two hubs with a backlog at once share a shard
// one time in OverflowShards. See docs/delivery.md.

// OverflowShards is the number of overflow shards. Every deliverer replica must
// agree on it: changing it is a migration of the stream's subjects.
const OverflowShards = 16

const subjectOverflowDeliveries = subjectDeliveries + "overflow."

// OverflowDeliverySubjects matches every overflow subject (of any shard and
// hub), for the stream's subjects and permissions.
const OverflowDeliverySubjects = subjectOverflowDeliveries + "*.*"

// ConsumerDelivererOverflowPrefix starts the names of the overflow shards'
// durable consumers: "deliverer-overflow-0" to "deliverer-overflow-15".
const ConsumerDelivererOverflowPrefix = "deliverer-overflow-"

// OverflowShard is the overflow shard of hubID, in [0, OverflowShards).
func OverflowShard(hubID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(hubID))
	return int(h.Sum32() % OverflowShards)
}

// OverflowDeliverySubject is the overflow subject of delivery messages for hubID.
func OverflowDeliverySubject(hubID string) string {
	return subjectOverflowDeliveries + strconv.Itoa(OverflowShard(hubID)) + "." + hubID
}

// HubOfDeliverySubject returns the hub of a live or overflow delivery
// subject, and whether the subject is an overflow one. ok is false for any
// other subject.
func HubOfDeliverySubject(subject string) (hub string, overflow, ok bool) {
	rest, found := strings.CutPrefix(subject, subjectDeliveries)
	if !found || rest == "" {
		return "", false, false
	}
	if !strings.Contains(rest, ".") {
		return rest, false, true
	}
	shardHub, found := strings.CutPrefix(rest, "overflow.")
	if !found {
		return "", false, false
	}
	_, hub, found = strings.Cut(shardHub, ".")
	if !found || hub == "" || strings.Contains(hub, ".") {
		return "", false, false
	}
	return hub, true, true
}

// OverflowConsumerName is the durable consumer of overflow shard shard.
func OverflowConsumerName(shard int) string {
	return ConsumerDelivererOverflowPrefix + strconv.Itoa(shard)
}

// DelivererConsumers are the deliverer's consumers: the live one, then one
// per overflow shard.
func DelivererConsumers() []ConsumerRef {
	out := []ConsumerRef{{Stream: StreamDeliveries, Consumer: ConsumerDeliverer}}
	for s := range OverflowShards {
		out = append(out, ConsumerRef{Stream: StreamDeliveries, Consumer: OverflowConsumerName(s)})
	}
	return out
}

// LiveConsumerConfig is the deliverer's live consumer: every live subject.
func LiveConsumerConfig(ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	cfg := ConsumerConfig(ConsumerDeliverer, ackWait, maxAckPending)
	cfg.FilterSubject = subjectDeliveries + "*"
	return cfg
}

// OverflowConsumerConfig is the deliverer's consumer of overflow shard shard.
func OverflowConsumerConfig(shard int, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	cfg := ConsumerConfig(OverflowConsumerName(shard), ackWait, maxAckPending)
	cfg.FilterSubject = subjectOverflowDeliveries + strconv.Itoa(shard) + ".*"
	return cfg
}

// OverflowCopyOf is a live delivery message moved to its hub's overflow shard:
// the same body and Content-Type. The copy of a message with a
// Nats-Msg-Id gets "overflow." + that id, so moving it twice (the deliverer
// died between the copy and the ack) stores it once. The copy keeps the
// message's HeaderRecheck, or gets recheck when it has none and recheck is
// not empty (the deliverer found it may have been attempted already), so
// the deliverer checks its jobs against the event log before attempting
// them.
func OverflowCopyOf(hubID string, h nats.Header, data []byte, recheck string) *nats.Msg {
	m := &nats.Msg{Subject: OverflowDeliverySubject(hubID), Header: nats.Header{}, Data: data}
	if ct := h.Get(HeaderContentType); ct != "" {
		m.Header.Set(HeaderContentType, ct)
	}
	if id := h.Get(jetstream.MsgIDHeader); id != "" {
		m.Header.Set(jetstream.MsgIDHeader, "overflow."+id)
	}
	if v := h.Get(HeaderRecheck); v != "" {
		recheck = v
	}
	if recheck != "" {
		m.Header.Set(HeaderRecheck, recheck)
	}
	return m
}
