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

// FitDeadLetter cuts the body of dl so that dl fits in maxPayload, the
// largest message the server takes (nats.Conn.MaxPayload): the headers a
// dead letter adds would otherwise make a message as large as the server
// allows impossible to dead-letter, and it would be retried forever. A cut
// body keeps its start and HeaderBodySize says how large it was; the
// original stays in its stream (HeaderOriginalSeq).
func FitDeadLetter(dl *nats.Msg, maxPayload int64) {
	size := int64(len(dl.Data))
	for k, vs := range dl.Header {
		for _, v := range vs {
			size += int64(len(k) + len(v) + 4) // "k: v\r\n"
		}
	}
	// The header line, the blank line and HeaderBodySize itself.
	const slack = 256
	if size+slack <= maxPayload {
		return
	}
	keep := max(int64(len(dl.Data))-(size+slack-maxPayload), 0)
	dl.Header.Set(HeaderBodySize, strconv.Itoa(len(dl.Data)))
	dl.Data = dl.Data[:keep]
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
