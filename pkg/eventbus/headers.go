package eventbus

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Header names used on internal messages and dead letters.
const (
	HeaderContentType     = "Content-Type"
	HeaderReason          = "Hubhooks-Reason"
	HeaderOriginalSubject = "Hubhooks-Original-Subject"
	HeaderOriginalStream  = "Hubhooks-Original-Stream"
	HeaderOriginalSeq     = "Hubhooks-Original-Sequence"
	// HeaderEventID and HeaderHubID on a dead letter of a domain event
	// are its id and hub, when the expander could read them.
	HeaderEventID = "Hubhooks-Event-Id"
	HeaderHubID   = "Hubhooks-Hub-Id"
	// HeaderBodySize on a dead letter is the original body's size when
	// the dead letter keeps only its start (FitDeadLetter).
	HeaderBodySize = "Hubhooks-Body-Size"
	// HeaderRecheck on a delivery message says its jobs may have been
	// published before on another message (a fan-out batch has no
	// Nats-Msg-Id to de-duplicate them): the deliverer asks the event log
	// which jobs are done, as for a message delivered again. Its value is
	// RecheckDone or RecheckInFlight.
	HeaderRecheck = "Hubhooks-Recheck"
)

// Values of HeaderRecheck.
const (
	// RecheckDone: jobs published before were attempted, if at all, some
	// time ago (a replay resumed, a message moved after a redelivery).
	RecheckDone = "1"
	// RecheckInFlight: the first copies of the jobs may be on their way
	// right now (the expander expands an event again after a failed
	// publish or a lost ack): the deliverer gives such an attempt time to
	// reach the event log before it makes its own.
	RecheckInFlight = "in-flight"
)

// Content types of the messages on the streams.
const (
	// ContentTypeProtobuf marks one protobuf message: a domain event, a
	// DeliveryJob or an AttemptRecorded, as the stream says.
	ContentTypeProtobuf = "application/protobuf"
	// ContentTypeJSON marks a domain event in protojson (the publisher SDK's
	// option; the internal streams carry protobuf only).
	ContentTypeJSON = "application/json"
	// ContentTypeDeliveryFanout marks a delivery message that is a
	// DeliveryFanout (one webhook event, several URLs) rather than one
	// DeliveryJob. See NewFanoutMsg.
	ContentTypeDeliveryFanout = "application/vnd.hubhooks.delivery-fanout+protobuf"
	// ContentTypeFanoutBatch marks a delivery message of several
	// DeliveryFanouts of one hub (the webhook events of domain events
	// expanded at the same time), framed (see frames.go). See
	// NewFanoutBatchMsg.
	ContentTypeFanoutBatch = "application/vnd.hubhooks.delivery-fanout-batch+protobuf"
	// ContentTypeAttemptBatch marks a message of several attempt records,
	// framed (see frames.go). A record may leave its job's body out
	// (body_shared): it is then the body of the nearest earlier record of
	// the batch with the same webhook event id. See NewAttemptBatchMsg.
	ContentTypeAttemptBatch = "application/vnd.hubhooks.attempt-batch+protobuf"
	// ContentTypeHubDeleted marks a HubDeleted on the attempts stream. See
	// NewHubDeletedMsg.
	ContentTypeHubDeleted = "application/vnd.hubhooks.hub-deleted+protobuf"
)

// newMsg is a message on subject with a Content-Type and no Nats-Msg-Id.
func newMsg(subject, contentType string, data []byte) *nats.Msg {
	return &nats.Msg{Subject: subject, Header: nats.Header{HeaderContentType: []string{contentType}}, Data: data}
}

// newDedupMsg is a message on subject with a Content-Type and the
// Nats-Msg-Id JetStream de-duplicates it by.
func newDedupMsg(subject, contentType, msgID string, data []byte) *nats.Msg {
	return &nats.Msg{
		Subject: subject,
		Header:  nats.Header{HeaderContentType: []string{contentType}, jetstream.MsgIDHeader: []string{msgID}},
		Data:    data,
	}
}
