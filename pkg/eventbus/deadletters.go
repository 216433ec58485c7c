package eventbus

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Dead-letter subjects, on StreamDeadLetters: messages that can never be
// processed, kept with the reason for people to inspect.
const (
	// SubjectDeadLetterEvents receives malformed domain events.
	SubjectDeadLetterEvents = subjectDeadLetters + "events"
	// SubjectDeadLetterJobs receives undecodable or invalid delivery jobs.
	SubjectDeadLetterJobs = subjectDeadLetters + "jobs"
)

// DeadLetterOf wraps msg, consumed from stream and impossible to process,
// for the dead-letter stream on subject (SubjectDeadLetterEvents or
// SubjectDeadLetterJobs), with the reason. The original body and headers are
// kept; the stream and, when known, the message's sequence there are added,
// and the sequence makes Nats-Msg-Id = stream + "." + sequence, so a message
// dead-lettered again (redelivered before its ack) is stored once.
func DeadLetterOf(subject string, msg jetstream.Msg, stream, reason string) *nats.Msg {
	dl := newDeadLetter(subject, &nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()}, reason)
	dl.Header.Set(HeaderOriginalStream, stream)
	if md, err := msg.Metadata(); err == nil {
		seq := strconv.FormatUint(md.Sequence.Stream, 10)
		dl.Header.Set(HeaderOriginalSeq, seq)
		dl.Header.Set(jetstream.MsgIDHeader, stream+"."+seq)
	}
	return dl
}

// newDeadLetter is orig on subject, without its Nats-Msg-Id, with the reason
// and its original subject in headers.
func newDeadLetter(subject string, orig *nats.Msg, reason string) *nats.Msg {
	m := nats.NewMsg(subject)
	for k, vs := range orig.Header {
		if k == jetstream.MsgIDHeader {
			continue
		}
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	m.Header.Set(HeaderReason, reason)
	m.Header.Set(HeaderOriginalSubject, orig.Subject)
	m.Data = orig.Data
	return m
}

// SetDeadLetterIDs sets, on a dead letter of a domain event, the event's id
// and hub where known (empty ones are left out, and so are those headers
// as the publisher sent them).
func SetDeadLetterIDs(dl *nats.Msg, eventID, hubID string) {
	dl.Header.Del(HeaderEventID)
	dl.Header.Del(HeaderHubID)
	if eventID != "" {
		dl.Header.Set(HeaderEventID, eventID)
	}
	if hubID != "" {
		dl.Header.Set(HeaderHubID, hubID)
	}
}

// DeadLetterSubject is the dead-letter subject of kind ("events" or
// "jobs"), or the wildcard of both for ""; ok is false for another kind.
func DeadLetterSubject(kind string) (subject string, ok bool) {
	switch kind {
	case "":
		return subjectDeadLetters + ">", true
	case "events", "jobs":
		return subjectDeadLetters + kind, true
	}
	return "", false
}

// DeadLetterKind is the kind ("events", "jobs") of a dead-letter subject.
func DeadLetterKind(subject string) string {
	return strings.TrimPrefix(subject, subjectDeadLetters)
}
