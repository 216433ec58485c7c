package eventbus

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/timestamppb"

	deliveryv1 "github.com/hubhooks/hubhooks/proto/hubhooks/delivery/v1"
)

// A hub's deletion travels on the attempts stream, to the logger: configsvc
// publishes it (DeleteHub) on AttemptSubject(hub), where the hub's records
// go, with Content-Type ContentTypeHubDeleted.

// NewHubDeletedMsg encodes the deletion of hubID at at, with Nats-Msg-Id
// "hub-deleted.<hub>.<at in ns>": the same deletion published twice is
// stored once.
func NewHubDeletedMsg(hubID string, at time.Time) (*nats.Msg, error) {
	data, err := (&deliveryv1.HubDeleted{HubId: hubID, DeletedAt: timestamppb.New(at)}).MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encode hub deletion: %w", err)
	}
	id := "hub-deleted." + hubID + "." + strconv.FormatInt(at.UnixNano(), 10)
	return newDedupMsg(AttemptSubject(hubID), ContentTypeHubDeleted, id, data), nil
}

// IsHubDeleted reports whether a message of the attempts stream with
// header h is a hub's deletion rather than attempt records.
func IsHubDeleted(h nats.Header) bool { return h.Get(HeaderContentType) == ContentTypeHubDeleted }

// DecodeHubDeleted decodes a hub's deletion; it must name a hub and a time.
func DecodeHubDeleted(data []byte) (*deliveryv1.HubDeleted, error) {
	d := &deliveryv1.HubDeleted{}
	if err := d.UnmarshalVT(data); err != nil {
		return nil, fmt.Errorf("decode hub deletion: %w", err)
	}
	if d.GetHubId() == "" || !d.GetDeletedAt().IsValid() || d.GetDeletedAt().AsTime().Unix() <= 0 {
		return nil, fmt.Errorf("decode hub deletion: hub_id %q, deleted_at %v: both are required", d.GetHubId(), d.GetDeletedAt())
	}
	return d, nil
}
