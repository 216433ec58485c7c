package webhook

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Event is the JSON body of a webhook.
type Event struct {
	// ID is the webhook event id: stable across retries, redeliveries and URLs.
	ID string `json:"id"`
	// Type is the webhook event type, e.g. BILLINGPLAN.CREATED.
	Type string `json:"type"`
	// HubID is the hub the event belongs to.
	HubID string `json:"hub_id"`
	// CreatedAt is when the webhook event was created from its domain event.
	CreatedAt time.Time `json:"created_at"`
	// Data is the payload: the entity the event is about.
	Data json.RawMessage `json:"data"`
	// DomainEvent names the domain event that caused this webhook event.
	DomainEvent DomainEventRef `json:"domain_event"`
	// Test is true for events sent with SendTestEvent.
	Test bool `json:"test,omitempty"`
	// ReplayOf is set on a replayed webhook event (ReplayDomainEvents): the
	// id of the webhook event it replays. A replay's own id starts with
	// ReplayIDPrefix.
	ReplayOf string `json:"replay_of,omitempty"`
}

// DomainEventRef identifies the causing domain event.
type DomainEventRef struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at,omitzero"`
	Actor      string    `json:"actor,omitempty"`
}

// Marshal encodes the event as the webhook body.
func (e *Event) Marshal() ([]byte, error) {
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("{}")
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("marshal webhook event %s: %w", e.ID, err)
	}
	return b, nil
}

// idEncoding is base32 in lower case without padding: ids are the prefix
// and 26 characters of [a-z2-7].
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// hashID is prefix + base32(sha256(part 0 NUL part 1 NUL ...)[:16]).
func hashID(prefix string, parts ...string) string {
	var buf [256]byte
	in := buf[:0]
	for _, p := range parts {
		in = append(in, p...)
		in = append(in, 0)
	}
	sum := sha256.Sum256(in)
	out := make([]byte, len(prefix)+idEncoding.EncodedLen(16))
	copy(out, prefix)
	idEncoding.Encode(out[len(prefix):], sum[:16])
	return string(out)
}

// EventID derives the webhook event id of the index-th webhook event expanded
// from a domain event. The same inputs always give the same id, so a domain
// event expanded twice (a crash before its ack) yields the same webhook ids.
func EventID(hubID, domainEventID string, index int) string {
	return hashID("msg_", hubID, domainEventID, strconv.Itoa(index))
}

// ReplayIDPrefix starts the id of every replayed webhook event, so that a
// receiver can tell a replay from the original ("msg_...").
const ReplayIDPrefix = "rpl_"

// ReplayEventID derives the id of the replay of the index-th webhook event
// of a domain event. Every replay of it has this id, so a delivery to a URL
// is replayed once however often its domain event is replayed.
func ReplayEventID(hubID, domainEventID string, index int) string {
	return hashID(ReplayIDPrefix, hubID, domainEventID, strconv.Itoa(index))
}

// OperationalEventID derives the webhook event id of an operational event
// delivered as a webhook ("ops_...").
func OperationalEventID(hubID, opsEventID string) string {
	return hashID("ops_", hubID, opsEventID)
}

// RecoveryID derives the id of the delivery that recovers (delivers again)
// the delivery deliveryID, so that it is recovered once however often a
// recovery runs.
func RecoveryID(deliveryID string) string {
	return hashID("dlv_", "recovery", deliveryID)
}

// DeliveryID derives the id of the delivery of a webhook event to one URL.
func DeliveryID(webhookEventID, urlID string) string {
	return hashID("dlv_", webhookEventID, urlID)
}

// RandomID returns prefix followed by 26 random base32 characters, for ids
// that must be new each time (test events, redeliveries, URL ids).
func RandomID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return prefix + idEncoding.EncodeToString(b[:])
}
