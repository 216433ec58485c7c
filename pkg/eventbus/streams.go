package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names. They are shared by every replica of every service, so
// changing one is a migration.
const (
	StreamEvents      = "HUBHOOKS_EVENTS"
	StreamDeliveries  = "HUBHOOKS_DELIVERIES"
	StreamAttempts    = "HUBHOOKS_ATTEMPTS"
	StreamDeadLetters = "HUBHOOKS_DLQ"
)

// Subject prefixes of the internal streams; each ends with the hub id (the
// dead letters' with what they hold, see deadletters.go).
const (
	subjectDeliveries  = "hubhooks.deliveries."
	subjectAttempts    = "hubhooks.attempts."
	subjectDeadLetters = "hubhooks.dlq."
)

// DeliverySubject is the subject of delivery jobs for hubID.
func DeliverySubject(hubID string) string { return subjectDeliveries + hubID }

// AttemptSubject is the subject of attempt records for hubID.
func AttemptSubject(hubID string) string { return subjectAttempts + hubID }

// De-duplication windows of the internal streams. A job or fan-out is
// republished (same Nats-Msg-Id) when the expander, the deliverer or a retry
// claim dies before its ack wait or lease ends (30 s each by default, and
// each service refuses more than half this window), so one minute covers
// it. The server keeps every id of a window in memory, so the window is no
// longer than the redelivery paths need. Attempt records are idempotent in
// the logger, so their window only absorbs quick repeats.
const (
	DeliveriesDuplicateWindow = time.Minute
	AttemptsDuplicateWindow   = 20 * time.Second
)

// DefaultDuplicateWindow is the domain events' de-duplication window when
// Options leave it unset: JetStream's own default, well beyond the publisher
// SDK's retries of one publish.
const DefaultDuplicateWindow = 2 * time.Minute

// Defaults of Options.
const (
	DefaultEventsMaxAge     = 72 * time.Hour
	DefaultDeadLetterMaxAge = 14 * 24 * time.Hour
)

// Options tune the streams. The zero value is the production default.
type Options struct {
	// Replicas is the stream replica count (1 on a single server, 3 on a cluster).
	Replicas int
	// Storage is file by default.
	Storage jetstream.StorageType
	// DuplicateWindow is how long Nats-Msg-Id de-duplication of domain
	// events lasts (the publisher contract); default DefaultDuplicateWindow.
	// The internal streams use the shorter windows their redelivery paths
	// need (see DeliveriesDuplicateWindow, AttemptsDuplicateWindow): the
	// server keeps every id of the window in memory.
	DuplicateWindow time.Duration
	// EventsMaxAge is how long domain events are kept, expanded or not
	// (they stay for inspection and replay); default DefaultEventsMaxAge.
	EventsMaxAge time.Duration
	// EventsMaxBytes caps the domain events stream's size; the oldest
	// events go first. 0 (the default) is no cap: the stream then holds
	// rate x EventsMaxAge of events. JetStream drops the oldest events
	// whether or not the expander has taken them, so a cap smaller than a
	// backlog (the expander down, or behind) loses events: size it for the
	// longest outage to ride out.
	EventsMaxBytes int64
	// DeadLetterMaxAge is how long dead letters are kept; default
	// DefaultDeadLetterMaxAge.
	DeadLetterMaxAge time.Duration
}

func (o Options) withDefaults() Options {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.EventsMaxAge <= 0 {
		o.EventsMaxAge = DefaultEventsMaxAge
	}
	if o.DeadLetterMaxAge <= 0 {
		o.DeadLetterMaxAge = DefaultDeadLetterMaxAge
	}
	return o
}

// EventsStreamConfig is the domain event stream for the given subjects
// (e.g. "API.*", "BILLINGPLAN.*").
func EventsStreamConfig(subjects []string, o Options) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamEvents,
		Description: "hubhooks domain events published by the hub's domains",
		Subjects:    subjects,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      o.EventsMaxAge,
		MaxBytes:    max(o.EventsMaxBytes, 0),
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  o.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
}

// DeliveriesStreamConfig is the work queue of delivery jobs.
func DeliveriesStreamConfig(o Options) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamDeliveries,
		Description: "hubhooks delivery jobs: one per (webhook event, callback URL)",
		Subjects:    []string{subjectDeliveries + "*", OverflowDeliverySubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  min(o.DuplicateWindow, DeliveriesDuplicateWindow),
	}
}

// AttemptsStreamConfig is the work queue of attempt records for the logger.
func AttemptsStreamConfig(o Options) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamAttempts,
		Description: "hubhooks delivery attempts, persisted by the logger",
		Subjects:    []string{subjectAttempts + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  min(o.DuplicateWindow, AttemptsDuplicateWindow),
	}
}

// DeadLettersStreamConfig keeps malformed input for inspection.
func DeadLettersStreamConfig(o Options) jetstream.StreamConfig {
	o = o.withDefaults()
	return jetstream.StreamConfig{
		Name:        StreamDeadLetters,
		Description: "hubhooks dead letters: malformed domain events and delivery jobs, with the reason",
		Subjects:    []string{subjectDeadLetters + ">"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      o.DeadLetterMaxAge,
		Storage:     o.Storage,
		Replicas:    o.Replicas,
		Duplicates:  o.DuplicateWindow,
	}
}

// Ensure creates or updates the given streams. It retries while JetStream is
// not yet available (a server starting, a cluster electing a leader) until
// ctx ends. A stream that already has its config (by its digest, see
// configDigestKey) is not updated.
func Ensure(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		var digest string
		cfg.Metadata, digest = withDigest(cfg.Metadata, cfg)
		_, err := ensuring(ctx, func(ctx context.Context) (jetstream.Stream, error) {
			cur, err := js.Stream(ctx, cfg.Name)
			switch {
			case err == nil && cur.CachedInfo().Config.Metadata[configDigestKey] == digest:
				return cur, nil
			case err != nil && !errors.Is(err, jetstream.ErrStreamNotFound):
				return nil, err
			}
			st, err := js.CreateOrUpdateStream(ctx, cfg)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				// Another replica created it between the two calls.
				st, err = js.UpdateStream(ctx, cfg)
			}
			return st, err
		})
		if err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// StreamInfo returns a stream's info, nil when the stream does not exist,
// retrying like Ensure while JetStream is unavailable.
func StreamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	st, err := whileUnavailable(ctx, func() (jetstream.Stream, error) { return js.Stream(ctx, name) })
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read stream %s: %w", name, err)
	}
	return st.CachedInfo(), nil
}
