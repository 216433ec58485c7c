package eventbus

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/hubhooks/hubhooks/pkg/routing"
	hubhooksv1 "github.com/hubhooks/hubhooks/proto/hubhooks/v1"
)

// Operational events (hubhooksv1.OperationalEvent, binary protobuf) travel
// on OpsSubject(hub) into the limits stream StreamOps: what happened to a
// hub's webhooks that its operators want to know. The stream is part of
// the public API: WatchOperationalEvents reads it, and so may any NATS
// client allowed to.
const (
	StreamOps   = "HUBHOOKS_OPS"
	subjectOps  = "hubhooks.ops."
	opsMaxAge   = 7 * 24 * time.Hour
	opsDupeWind = time.Hour
)

// OpsSubject is the subject of hubID's operational events.
func OpsSubject(hubID string) string { return subjectOps + hubID }

// OpsStreamConfig is the stream of operational events, kept 7 days.
func OpsStreamConfig(o Options) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamOps,
		Description: "hubhooks operational events: URLs disabled, circuits, dead deliveries, replays",
		Subjects:    []string{subjectOps + "*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      opsMaxAge,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  opsDupeWind,
		Discard:     jetstream.DiscardOld,
	}
}

// NewOpsMsg encodes an operational event with Nats-Msg-Id = its id: the
// same fact published twice is stored once.
func NewOpsMsg(ev *hubhooksv1.OperationalEvent) (*nats.Msg, error) {
	b, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode operational event: %w", err)
	}
	return newDedupMsg(OpsSubject(ev.GetHubId()), ContentTypeProtobuf, ev.GetId(), b), nil
}

// DecodeOpsMsg decodes an operational event.
func DecodeOpsMsg(data []byte) (*hubhooksv1.OperationalEvent, error) {
	ev := &hubhooksv1.OperationalEvent{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("decode operational event: %w", err)
	}
	return ev, nil
}

// OperationalWebhookType is the webhook event type an operational event is
// delivered as: "OPERATIONAL." and its type without the enum prefix, e.g.
// OPERATIONAL.URL_DISABLED.
func OperationalWebhookType(t hubhooksv1.OperationalEventType) string {
	name := t.String()
	const prefix = "OPERATIONAL_EVENT_TYPE_"
	if len(name) > len(prefix) {
		name = name[len(prefix):]
	}
	return routing.OperationalPrefix + name
}
